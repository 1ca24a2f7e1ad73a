// POST /v1/context: cited context for a prompt within a token budget (engine/context.h).
#include "engine/context.h"
#include "net/http_status.h"
#include "server/api.h"
#include "server/field_reader.h"
#include "server/request_codec.h"
#include "server/response_codec.h"

namespace contextd {

namespace {

Json PieceJson(ContextPiece p) {
  Json piece = Json::MakeObject();
  piece["text"] = std::move(p.text);
  piece["id"] = std::move(p.doc_id);
  Json chunks = Json::MakeArray();
  chunks.push_back(static_cast<int64_t>(p.first_chunk));
  chunks.push_back(static_cast<int64_t>(p.last_chunk));
  piece["chunks"] = std::move(chunks);
  piece["score"] = p.score;
  piece["wave"] = p.wave;
  piece["tokens"] = static_cast<int64_t>(p.tokens);
  return piece;
}

// Everything but the pieces: turns, token counts, retrieval, route.
void SummaryJson(ContextResult& result, const ContextRequest& request, Json* out) {
  Json& turn_list = (*out)["turns"];
  turn_list = Json::MakeArray();
  for (auto& t : result.turns) {
    Json turn = Json::MakeObject();
    turn["role"] = std::move(t.role);
    turn["content"] = std::move(t.content);
    turn["tokens"] = static_cast<int64_t>(t.tokens);
    turn_list.push_back(std::move(turn));
  }
  (*out)["tokens"] = static_cast<int64_t>(result.tokens);
  (*out)["max_tokens"] = static_cast<int64_t>(request.max_tokens);
  Json& retrieval = (*out)["retrieval"];
  const QueryResult& search = result.plan.result;
  retrieval["mode"] = std::string(QueryModeName(search.mode));
  retrieval["candidates"] = static_cast<int64_t>(result.candidates);
  retrieval["waves"] = result.waves;
  retrieval["stopped"] = result.stopped;
  retrieval["cache"] = search.cache;
  if (search.degraded) {
    retrieval["degraded"] = true;
    retrieval["degraded_reason"] = search.degraded_reason;
  }
  (*out)["route"] = PlanJson(result.plan);
}

// One server-sent event.
std::string Event(const char* name, const Json& data) {
  return std::string("event: ") + name + "\ndata: " + data.Dump() + "\n\n";
}

}  // namespace

StatusOr<Api::Reply> Api::Context(const Params&, const HttpRequest& req, RequestContext& ctx) {
  const int64_t start = clock_->NowNanos();
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_RETURN_IF_ERROR(AwaitConsistency(body, ctx));
  CTX_ASSIGN_OR_RETURN(FieldReader fields, FieldReader::Open(body, ""));
  std::string name;
  bool stream = false;
  CTX_RETURN_IF_ERROR(fields.Require("collection"));
  CTX_RETURN_IF_ERROR(fields.String("collection", &name));
  CTX_RETURN_IF_ERROR(fields.Bool("stream", &stream));
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, name));
  if (backends_.tokenizer == nullptr)
    return Unavailable("context budgets need the cl100k_base vocabulary in the models directory; run scripts/setup",
                       "tokenizer_missing");
  CTX_ASSIGN_OR_RETURN(ContextRequest request, ParseContextRequest(body, c->has_embedder()));
  ctx.usage_collection = name;
  ctx.usage_model = c->config().embedder;
  CTX_RETURN_IF_ERROR(CheckQueryLength(request.query));
  // Declared: the query (embedded) and the most the answer may return; settled against
  // what it does return.
  const int64_t query_tokens = ctx.limits_tokens() ? TokensOf(request.query) : 0;
  CTX_RETURN_IF_ERROR(ctx.ReserveTokens(query_tokens + static_cast<int64_t>(request.max_tokens), /*exact=*/false));
  SessionTurnList turns;
  if (!request.session_id.empty()) {
    CTX_ASSIGN_OR_RETURN(turns, backends_.sessions->SessionTurns(request.session_id, ctx));
  }
  Reply r;
  if (stream) {
    // Everything that can be refused was checked above: from here on the answer is 200 and
    // its body a stream of events, one per wave as it is decided, then "done" (or "error").
    r.content_type = "text/event-stream";
    r.channel = std::make_shared<HttpBodyChannel>();
    r.produce = [this, c, request, turns = std::move(turns), channel = r.channel, start, query_tokens, &ctx] {
      WaveCallback on_wave = [&](const char* wave, const std::vector<ContextPiece>& pieces) {
        Json data = Json::MakeObject();
        data["wave"] = wave;
        Json list = Json::MakeArray();
        for (const auto& p : pieces) list.push_back(PieceJson(p));
        data["pieces"] = std::move(list);
        channel->Write(Event("wave", data));
      };
      auto result = BuildContext(ctx, *c, *backends_.tokenizer, request, clock_, turns, &on_wave);
      ctx.tokens_used += query_tokens + (result.ok() ? static_cast<int64_t>(result->tokens) : 0);
      if (result.ok()) {
        CountPlan(result->plan);
        Json done = Json::MakeObject();
        SummaryJson(*result, request, &done);
        done["timings"]["total_ms"] = static_cast<double>(clock_->NowNanos() - start) / 1e6;
        done["usage"] = UsageJson(ctx.usage);
        channel->Write(Event("done", done));
      } else {
        Json error = Json::MakeObject();
        error["code"] = ErrorCode(result.status());
        error["message"] = result.status().message();
        channel->Write(Event("error", error));
      }
      channel->Close();
    };
    return r;
  }
  auto built = BuildContext(ctx, *c, *backends_.tokenizer, request, clock_, turns);
  ctx.tokens_used += query_tokens + (built.ok() ? static_cast<int64_t>(built->tokens) : 0);
  CTX_ASSIGN_OR_RETURN(ContextResult result, std::move(built));
  CountPlan(result.plan);
  Json& pieces = r.json["pieces"];
  pieces = Json::MakeArray();
  for (auto& p : result.pieces) pieces.push_back(PieceJson(std::move(p)));
  SummaryJson(result, request, &r.json);
  r.json["timings"]["total_ms"] = static_cast<double>(clock_->NowNanos() - start) / 1e6;
  r.json["usage"] = UsageJson(ctx.usage);
  return r;
}

StatusOr<Api::Reply> Api::SessionAppend(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(FieldReader fields, FieldReader::Open(body, ""));
  CTX_RETURN_IF_ERROR(fields.Known({"role", "content", "ttl_s"}));
  SessionTurn turn;
  int64_t ttl_s = 0;
  CTX_RETURN_IF_ERROR(fields.String("role", &turn.role));
  CTX_RETURN_IF_ERROR(fields.String("content", &turn.content));
  CTX_RETURN_IF_ERROR(fields.Int("ttl_s", 1, kMaxTtlSeconds, &ttl_s));
  CTX_ASSIGN_OR_RETURN(size_t n, backends_.sessions->AppendTurn(p[0], turn, ttl_s, ctx));
  Reply r;
  r.json["session"] = p[0];
  r.json["turns"] = static_cast<int64_t>(n);
  return r;
}

StatusOr<Api::Reply> Api::SessionGet(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto turns, backends_.sessions->SessionTurns(p[0], ctx));
  Reply r;
  r.json["session"] = p[0];
  Json& list = r.json["turns"];
  list = Json::MakeArray();
  for (auto& t : turns) {
    Json turn = Json::MakeObject();
    turn["role"] = t->role;
    turn["content"] = t->content;
    turn["at_ms"] = t->at_ms;
    list.push_back(std::move(turn));
  }
  return r;
}

StatusOr<Api::Reply> Api::SessionDelete(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(backends_.sessions->DeleteSession(p[0], ctx));
  Reply r;
  r.json["deleted"] = true;
  return r;
}

}  // namespace contextd
