// POST /v1/context: cited context for a prompt within a token budget (engine/context.h).
#include "engine/context.h"
#include "server/api.h"

namespace contextd {

StatusOr<Api::Reply> Api::Context(const Params&, const HttpRequest& req) {
  const int64_t start = clock_->NowNanos();
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  const Json* name = body.Find("collection");
  if (name == nullptr || !name->is_string())
    return InvalidArgument("'collection' (a name) is required", "missing_field");
  CTX_ASSIGN_OR_RETURN(auto c, engine_->GetCollection(kDefaultTenant, name->as_string()));
  if (engine_->tokenizer() == nullptr)
    return Unavailable("context budgets need the cl100k_base vocabulary in the models directory; run scripts/setup",
                       "tokenizer_missing");
  CTX_ASSIGN_OR_RETURN(ContextRequest request, ContextRequest::FromJson(body, c->has_embedder()));
  CTX_ASSIGN_OR_RETURN(ContextResult result, BuildContext(*c, *engine_->tokenizer(), request, clock_));
  Reply r;
  Json& pieces = r.json["pieces"];
  pieces = Json::MakeArray();
  for (auto& p : result.pieces) {
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
    pieces.push_back(std::move(piece));
  }
  r.json["tokens"] = static_cast<int64_t>(result.tokens);
  r.json["max_tokens"] = static_cast<int64_t>(request.max_tokens);
  Json& retrieval = r.json["retrieval"];
  retrieval["mode"] = std::string(QueryModeName(result.search.mode));
  retrieval["candidates"] = static_cast<int64_t>(result.candidates);
  retrieval["waves"] = result.waves;
  retrieval["stopped"] = result.stopped;
  retrieval["cache"] = result.search.cache;
  if (result.search.degraded) {
    retrieval["degraded"] = true;
    retrieval["degraded_reason"] = result.search.degraded_reason;
  }
  r.json["timings"]["total_ms"] = static_cast<double>(clock_->NowNanos() - start) / 1e6;
  return r;
}

}  // namespace contextd
