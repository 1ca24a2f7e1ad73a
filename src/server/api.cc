#include "server/api.h"
#include "server/request_codec.h"
#include "server/response_codec.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fstream>
#include <map>

#include "common/names.h"
#include "engine/planner.h"
#include "net/content_encoding.h"
#include "net/http_status.h"
#include "text/chunker.h"

namespace contextd {

extern const char kOpenApiJson[];  // openapi_spec.cc, generated from openapi.json

// GET /docs: Swagger UI over /openapi.json, its script and style served from docs_dir.
constexpr char kDocsPage[] = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>contextd API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>
)html";
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    if (slash > pos) out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

double Millis(int64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

Json RouteJson(const QueryResult::Route& route) {
  Json j = Json::MakeObject();
  Json ids = Json::MakeArray();
  for (uint32_t id : route.shards) ids.push_back(static_cast<int64_t>(id));
  j["shards"] = std::move(ids);
  j["of"] = static_cast<int64_t>(route.shard_count);
  j["margin"] = route.margin;
  j["confident"] = route.confident;
  j["widened"] = route.widened;
  return j;
}

StatusOr<std::string> PercentDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || HexValue(s[i + 1]) < 0 || HexValue(s[i + 2]) < 0) {
      return InvalidArgument("bad percent-encoding in path segment '" + s + "'", "invalid_path");
    }
    out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
    i += 2;
  }
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQueryString(const std::string& query) {
  // "+" is a space in query strings, then %XX escapes.
  const auto decode = [](std::string v) {
    for (char& c : v) {
      if (c == '+') c = ' ';
    }
    return PercentDecode(v);
  };
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    CTX_ASSIGN_OR_RETURN(std::string key, decode(pair.substr(0, eq)));
    CTX_ASSIGN_OR_RETURN(std::string value, decode(eq == std::string::npos ? "" : pair.substr(eq + 1)));
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// Replies shorter than this go as they are: compressing them saves less than a packet.
constexpr size_t kCompressFromBytes = 1024;

StatusOr<Json> Api::ParseBody(const HttpRequest& req, bool allow_empty) const {
  const std::string encoding = req.Header("content-encoding");
  std::string decoded;
  const std::string* body = &req.body;
  if (!encoding.empty()) {
    CTX_ASSIGN_OR_RETURN(decoded, DecodeContentEncoding(encoding, req.body, max_body_bytes_));
    body = &decoded;
  }
  if (body->empty() && allow_empty) return Json();
  return ParseJson(*body);
}

ApiBackends ApiBackends::Of(Engine* engine, const EmbedderCatalog* embedders, const TiktokenEncoder* tokenizer) {
  ApiBackends b;
  b.collections = engine;
  b.sessions = engine;
  b.llm_cache = engine;
  b.embedders = embedders;
  b.governance = engine;
  b.replica = engine;
  b.snapshots = engine;
  b.tokenizer = tokenizer;
  return b;
}

Api::Api(const ApiBackends& backends, MetricsRegistry* metrics, const ApiOptions& options)
    : backends_(backends),
      metrics_(metrics),
      options_(options),
      clock_(SystemClock::Default()),
      max_body_bytes_(options.max_body_bytes),
      max_query_tokens_(options.max_query_tokens),
      embed_threads_(options.embed_threads),
      started_unix_s_(static_cast<int64_t>(std::time(nullptr))) {
  if (options.clock != nullptr) clock_ = options.clock;
  limiter_ = options.rate_limits;
  if (limiter_ == nullptr) {
    own_limiter_ = std::make_unique<RateLimiter>(clock_);
    limiter_ = own_limiter_.get();
  }
  in_flight_ = metrics_->GetGauge("contextd_http_requests_in_flight", "HTTP requests being handled.");
  unrouted_ = metrics_->GetCounter("contextd_http_unrouted_total", "Requests that matched no route.");
  budget_soft_ = metrics_->GetCounter("contextd_budget_soft_threshold_total",
                                      "Budgets whose spend passed their soft threshold (once per period).");
  budget_refused_ =
      metrics_->GetCounter("contextd_budget_refused_total", "Requests refused because a hard budget was spent (402).");
  memory_refused_ = metrics_->GetCounter("contextd_writes_refused_memory_total",
                                         "Writes refused above the memory high mark (503 memory_pressure).");
  for (const auto& [priority, name] :
       {std::pair{Priority::kInteractive, "interactive"}, std::pair{Priority::kDefault, "default"},
        std::pair{Priority::kBatch, "batch"}}) {
    shed_[static_cast<int>(priority)] = metrics_->GetCounter(
        "contextd_requests_shed_total",
        "Requests refused before any work because the node was overloaded (503 overloaded).", {{"priority", name}});
  }
  using namespace std::placeholders;
  auto ok = [](const char* body) {
    return [body](const Params&, const HttpRequest&, RequestContext&) -> StatusOr<Reply> {
      Reply r;
      r.raw = body;
      return r;
    };
  };
  AddRoute("GET", "/healthz", Pool::kInline, ok("{\"status\":\"ok\"}"));
  // Not ready once draining, so load balancers send new work elsewhere while the requests
  // already here finish.
  AddRoute("GET", "/readyz", Pool::kInline,
           [this](const Params&, const HttpRequest&, RequestContext&) -> StatusOr<Reply> {
             const bool draining = draining_.load();
             const bool log_down = options_.log_connected && !options_.log_connected();
             const std::string_view storage = backends_.replica->storage_state();
             Reply r;
             r.status = draining || log_down || storage != "ok" ? 503 : 200;
             // Not ready for writes; reads still work, which the status says.
             const std::string blocked = log_down && options_.log_blocked ? options_.log_blocked() : "";
             Json why = Json::MakeObject();
             why["status"] = "log_unavailable";
             if (!blocked.empty()) why["reason"] = blocked;
             const std::string dependency = options_.degraded_dependency ? options_.degraded_dependency() : "";
             r.raw = draining   ? "{\"status\":\"draining\"}"
                     : log_down ? why.Dump()
                     : storage != "ok"
                         ? "{\"status\":\"degraded\",\"storage\":\"" + std::string(storage) + "\",\"reads\":\"ok\"}"
                     : !dependency.empty() ? "{\"status\":\"degraded\",\"" + dependency +
                                                 "\":\"unreachable\",\"reads\":\"ok\",\"writes\":\"ok\"}"
                                           : "{\"status\":\"ready\"}";
             return r;
           });
  AddRoute("GET", "/metrics", Pool::kInline,
           [this](const Params&, const HttpRequest&, RequestContext&) -> StatusOr<Reply> {
             Reply r;
             r.content_type = "text/plain; version=0.0.4";
             r.raw = metrics_->RenderPrometheus();
             return r;
           });
  AddRoute("POST", "/v1/admin/tenants", Pool::kWrite, std::bind(&Api::AdminCreateTenant, this, _1, _2, _3));
  AddRoute("GET", "/v1/admin/tenants", Pool::kInline, std::bind(&Api::AdminListTenants, this, _1, _2, _3));
  AddRoute("GET", "/v1/admin/digest", Pool::kSearch, std::bind(&Api::AdminDigest, this, _1, _2, _3));
  // Streams at the reader's pace: on the embed pool, whose many threads may wait.
  AddRoute("GET", "/v1/admin/checkpoint", Pool::kEmbed, std::bind(&Api::AdminCheckpoint, this, _1, _2, _3));
  AddRoute("GET", "/v1/admin/tenants/{t}", Pool::kInline, std::bind(&Api::AdminGetTenant, this, _1, _2, _3));
  AddRoute("PATCH", "/v1/admin/tenants/{t}", Pool::kWrite, std::bind(&Api::AdminPatchTenant, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/admin/tenants/{t}", Pool::kWrite, std::bind(&Api::AdminDeleteTenant, this, _1, _2, _3));
  AddRoute("POST", "/v1/admin/tenants/{t}/keys", Pool::kWrite, std::bind(&Api::AdminCreateKey, this, _1, _2, _3));
  AddRoute("GET", "/v1/admin/tenants/{t}/keys", Pool::kInline, std::bind(&Api::AdminListKeys, this, _1, _2, _3));
  AddRoute("POST", "/v1/admin/tenants/{t}/keys/{id}/rotate", Pool::kWrite,
           std::bind(&Api::AdminRotateKey, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/admin/tenants/{t}/keys/{id}", Pool::kWrite,
           std::bind(&Api::AdminDeleteKey, this, _1, _2, _3));
  AddRoute("GET", "/v1/cluster", Pool::kInline,
           [this](const Params&, const HttpRequest&, RequestContext&) -> StatusOr<Reply> {
             Reply r;
             r.json = options_.cluster_status ? options_.cluster_status() : Json::MakeObject();
             if (!options_.cluster_status) r.json["mode"] = "single";
             r.json["applied_sequence"] = static_cast<int64_t>(backends_.replica->applied_sequence());
             return r;
           });
  AddRoute("GET", "/v1/collections", Pool::kInline, std::bind(&Api::ListCollections, this, _1, _2, _3));
  AddRoute("PUT", "/v1/collections/{name}", Pool::kWrite, std::bind(&Api::CreateCollection, this, _1, _2, _3));
  AddRoute("GET", "/v1/collections/{name}", Pool::kInline, std::bind(&Api::GetCollection, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/collections/{name}", Pool::kWrite, std::bind(&Api::DropCollection, this, _1, _2, _3));
  AddRoute("POST", "/v1/collections/{name}/documents", Pool::kWrite,
           std::bind(&Api::UpsertDocuments, this, _1, _2, _3));
  AddRoute("GET", "/v1/collections/{name}/documents", Pool::kSearch, std::bind(&Api::ListDocuments, this, _1, _2, _3));
  AddRoute("POST", "/v1/collections/{name}/documents/get", Pool::kSearch,
           std::bind(&Api::GetDocuments, this, _1, _2, _3));
  AddRoute("POST", "/v1/collections/{name}/snapshots", Pool::kWrite, std::bind(&Api::CreateSnapshot, this, _1, _2, _3));
  AddRoute("GET", "/v1/collections/{name}/snapshots", Pool::kSearch, std::bind(&Api::ListSnapshots, this, _1, _2, _3));
  AddRoute("POST", "/v1/collections/{name}/snapshots/restore", Pool::kWrite,
           std::bind(&Api::RestoreSnapshot, this, _1, _2, _3));
  // A download streams at the client's pace: on the embed pool, whose many threads wait
  // (a slow client must not hold one of the few search threads).
  AddRoute("GET", "/v1/collections/{name}/snapshots/{snapshot}", Pool::kEmbed,
           std::bind(&Api::DownloadSnapshot, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/collections/{name}/snapshots/{snapshot}", Pool::kWrite,
           std::bind(&Api::DeleteSnapshot, this, _1, _2, _3));
  AddRoute("GET", "/v1/collections/{name}/documents/{id}", Pool::kSearch,
           std::bind(&Api::GetDocument, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/collections/{name}/documents/{id}", Pool::kWrite,
           std::bind(&Api::DeleteDocument, this, _1, _2, _3));
  AddRoute("GET", "/v1/collections/{name}/shards", Pool::kSearch, std::bind(&Api::GetShards, this, _1, _2, _3));
  AddRoute("POST", "/v1/collections/{name}/query", Pool::kQuery, std::bind(&Api::Query, this, _1, _2, _3));
  // Context assembly searches and may embed through a provider: the embed pool.
  AddRoute("POST", "/v1/context", Pool::kEmbed, std::bind(&Api::Context, this, _1, _2, _3));
  AddRoute("POST", "/v1/sessions/{id}/turns", Pool::kWrite, std::bind(&Api::SessionAppend, this, _1, _2, _3));
  AddRoute("GET", "/v1/sessions/{id}", Pool::kInline, std::bind(&Api::SessionGet, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/sessions/{id}", Pool::kWrite, std::bind(&Api::SessionDelete, this, _1, _2, _3));
  AddRoute("PUT", "/v1/cache/{ns}", Pool::kWrite, std::bind(&Api::CacheConfigure, this, _1, _2, _3));
  AddRoute("GET", "/v1/cache/{ns}", Pool::kInline, std::bind(&Api::CacheDescribe, this, _1, _2, _3));
  // Store and lookup embed the prompt, which may wait on a provider: the embed pool.
  AddRoute("POST", "/v1/cache/{ns}/store", Pool::kEmbed, std::bind(&Api::CacheStore, this, _1, _2, _3));
  AddRoute("POST", "/v1/cache/{ns}/lookup", Pool::kEmbed, std::bind(&Api::CacheLookup, this, _1, _2, _3));
  AddRoute("POST", "/v1/cache/{ns}/feedback", Pool::kEmbed, std::bind(&Api::CacheFeedback, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/cache/{ns}/entries", Pool::kWrite, std::bind(&Api::CacheDeleteByScope, this, _1, _2, _3));
  AddRoute("DELETE", "/v1/cache/{ns}/entries/{id}", Pool::kWrite, std::bind(&Api::CacheDeleteEntry, this, _1, _2, _3));
  AddRoute("POST", "/v1/embeddings", Pool::kEmbed, std::bind(&Api::OpenAiEmbeddings, this, _1, _2, _3));
  AddRoute("GET", "/v1/models", Pool::kInline, std::bind(&Api::ListModels, this, _1, _2, _3));
  // Resolving a native model may load it: not on an I/O thread.
  AddRoute("GET", "/v1/models/{id}", Pool::kEmbed, std::bind(&Api::GetModel, this, _1, _2, _3));
  AddRoute("GET", "/v1/models/{org}/{name}", Pool::kEmbed, std::bind(&Api::GetModel, this, _1, _2, _3));
  AddRoute("POST", "/embed", Pool::kEmbed, std::bind(&Api::TeiEmbed, this, _1, _2, _3));
  AddRoute("POST", "/tokenize", Pool::kEmbed, std::bind(&Api::TeiTokenize, this, _1, _2, _3));
  AddRoute("GET", "/info", Pool::kInline, std::bind(&Api::TeiInfo, this, _1, _2, _3));
  AddRoute("GET", "/health", Pool::kInline, ok("{\"status\":\"ok\"}"));
  AddMcpRoutes();
  AddRoute("GET", "/v1/usage", Pool::kSearch, std::bind(&Api::GetUsage, this, _1, _2, _3));
  // The OpenAPI 3.1 document of every route (openapi.json, compiled in; a test holds it
  // to the routes).
  AddRoute("GET", "/openapi.json", Pool::kInline, [](const Params&, const HttpRequest&, RequestContext&) {
    Reply r;
    r.raw = kOpenApiJson;
    return StatusOr<Reply>(std::move(r));
  });
  AddRoute("GET", "/docs", Pool::kInline, [](const Params&, const HttpRequest&, RequestContext&) {
    Reply r;
    r.raw = kDocsPage;
    r.content_type = "text/html; charset=utf-8";
    return StatusOr<Reply>(std::move(r));
  });
  AddRoute("GET", "/docs/{file}", Pool::kSearch, std::bind(&Api::DocsAsset, this, _1, _2, _3));
  ThreadPool::Options computing;
  computing.quantum = options.cpu_quantum;
  search_pool_ = std::make_unique<ThreadPool>(options.search_threads, "ctx-search", computing);
  embed_pool_ = std::make_unique<ThreadPool>(options.embed_threads, "ctx-embed", computing);
  write_pool_ = std::make_unique<ThreadPool>(options.write_threads, "ctx-write");
  pools_collector_ = metrics_->AddCollector([this](std::string* out) {
    const std::pair<const char*, const ThreadPool*> pools[] = {
        {"search", search_pool_.get()}, {"embed", embed_pool_.get()}, {"write", write_pool_.get()}};
    *out += "# HELP contextd_pool_queue_depth Requests waiting for a worker, by pool.\n";
    *out += "# TYPE contextd_pool_queue_depth gauge\n";
    for (const auto& [name, pool] : pools) {
      *out +=
          std::string("contextd_pool_queue_depth{pool=\"") + name + "\"} " + std::to_string(pool->queue_depth()) + "\n";
    }
    *out += "# HELP contextd_pool_yields_total Times a worker gave up the CPU after a quantum of back-to-back tasks.\n";
    *out += "# TYPE contextd_pool_yields_total counter\n";
    for (const auto& [name, pool] : pools) {
      *out += std::string("contextd_pool_yields_total{pool=\"") + name + "\"} " + std::to_string(pool->yields()) + "\n";
    }
  });
}

Api::~Api() {
  metrics_->RemoveCollector(pools_collector_);
  search_pool_.reset();
  write_pool_.reset();
  embed_pool_.reset();
}

// Deadlines of requests that set none: generous, so that only stuck work is cut off. A
// write may wait on a provider for every chunk of a large batch.
constexpr int64_t kDefaultReadTimeoutMs = 30'000;
constexpr int64_t kDefaultWriteTimeoutMs = 300'000;
// The longest X-Request-Timeout-Ms accepted: an hour.
constexpr int64_t kMaxRequestTimeoutMs = 3'600'000;
// Stripe's limit; long enough for a UUID with a client prefix.
constexpr size_t kMaxIdempotencyKeyBytes = 255;

Api::Route* Api::FindRoute(std::string_view method, std::string_view pattern) const {
  for (const auto& r : routes_) {
    if (r->method == method && r->name == pattern) return r.get();
  }
  return nullptr;
}

std::vector<std::string> Api::RouteNames() const {
  std::vector<std::string> out;
  for (const auto& r : routes_) out.push_back(r->method + " " + r->name);
  return out;
}

namespace {

// The usage ledger's operation for a route; empty for what is not metered (health,
// metrics, docs, admin).
std::string UsageOperation(const std::string& method, const std::string& pattern) {
  static const std::map<std::string, std::string, std::less<>> kNames = {
      {"POST /v1/collections/{name}/query", "query"},
      {"POST /v1/context", "context"},
      {"POST /v1/embeddings", "embeddings"},
      {"POST /embed", "embeddings"},
      {"POST /tokenize", "tokenize"},
      {"POST /v1/collections/{name}/documents", "upsert"},
      {"GET /v1/collections/{name}/documents/{id}", "get"},
      {"DELETE /v1/collections/{name}/documents/{id}", "delete"},
      {"PUT /v1/collections/{name}", "create_collection"},
      {"DELETE /v1/collections/{name}", "drop_collection"},
      {"POST /v1/cache/{ns}/lookup", "cache_lookup"},
      {"POST /v1/cache/{ns}/store", "cache_store"},
      {"POST /v1/cache/{ns}/feedback", "cache_feedback"},
      {"POST /v1/sessions/{id}/turns", "session_turn"},
      {"POST /mcp", "mcp"},
  };
  auto it = kNames.find(method + " " + pattern);
  return it == kNames.end() ? "" : it->second;
}

}  // namespace

void Api::AddRoute(const std::string& method, const std::string& pattern, Pool pool, RouteFn fn) {
  auto r = std::make_unique<Route>();
  r->method = method;
  r->name = pattern;
  for (auto& seg : SplitPath(pattern)) r->pattern.push_back(seg.front() == '{' ? "{}" : seg);
  r->pool = pool;
  r->default_timeout_ms = pool == Pool::kInline  ? 0
                          : pool == Pool::kWrite ? kDefaultWriteTimeoutMs
                                                 : kDefaultReadTimeoutMs;
  r->fn = std::move(fn);
  // What the caller's key must allow: reads are GETs and the POSTs that only read
  // (searches, context, embeddings, cache lookups); admin paths are admin's.
  const std::vector<std::string>& seg = r->pattern;
  const std::string& last = seg.empty() ? pattern : seg.back();
  const bool reads = method == "GET" || last == "query" || last == "lookup" || last == "get" ||
                     pattern == "/v1/context" || pattern == "/v1/embeddings" || pattern == "/embed" ||
                     pattern == "/tokenize" || pattern == "/mcp";  // each tool checks its own route's access
  if (pattern == "/healthz" || pattern == "/readyz" || pattern == "/openapi.json" || pattern.starts_with("/docs"))
    r->access = Access::kOpen;
  else if (pattern.rfind("/v1/admin/tenants/{t}/keys", 0) == 0)
    r->access = Access::kTenantAdmin;
  else if (pattern.rfind("/v1/admin", 0) == 0)
    r->access = Access::kAdmin;
  else
    r->access = reads ? Access::kRead : Access::kWrite;
  r->collection_param = seg.size() >= 3 && seg[0] == "v1" && seg[1] == "collections" && seg[2] == "{}";
  r->adds_data = r->access == Access::kWrite && method != "DELETE";
  r->consistency_in_body = last == "query" || pattern == "/v1/context";
  r->json_rpc = pattern == "/mcp";
  r->operation = UsageOperation(method, pattern);
  r->latency = metrics_->GetHistogram("contextd_http_request_duration_seconds", "HTTP request latency by route.",
                                      {{"route", pattern}, {"method", method}});
  routes_.push_back(std::move(r));
}

void Api::Record(Route* route, int status, int64_t start_ns) {
  route->latency->Observe(static_cast<double>(clock_->NowNanos() - start_ns) / 1e9);
  size_t cls = static_cast<size_t>(std::clamp(status / 100, 1, 5));
  Counter* c = route->by_class[cls].load(std::memory_order_acquire);
  if (c == nullptr) {
    c = metrics_->GetCounter("contextd_http_requests_total", "HTTP requests by route, method and status class.",
                             {{"route", route->name}, {"method", route->method}, {"code", std::to_string(cls) + "xx"}});
    route->by_class[cls].store(c, std::memory_order_release);
  }
  c->Increment();
}

Json UsageJson(const Usage& usage) {
  Json u = Json::MakeObject();
  u["embedding_tokens"] = usage.embedding_tokens.load();
  u["chunks_scored"] = usage.chunks_scored.load();
  u["bytes_written"] = usage.bytes_written.load();
  u["documents_written"] = usage.documents_written.load();
  return u;
}

// No word is longer than this many bytes on average in real text: a longer query is
// refused without counting its words.
constexpr size_t kMaxBytesPerQueryWord = 64;

Status Api::CheckQueryLength(std::string_view text) const {
  const auto too_long = [&](const std::string& size) {
    return InvalidArgument("the query has " + size + "; at most " + std::to_string(max_query_tokens_) +
                               " words are searched for (the server's max_query_tokens)",
                           "query_too_long");
  };
  // A word takes at least a byte: a text no longer than the limit in bytes needs no count
  // (the common case, kept off the query path).
  if (text.size() <= max_query_tokens_) return Status::Ok();
  if (text.size() > max_query_tokens_ * kMaxBytesPerQueryWord) return too_long(std::to_string(text.size()) + " bytes");
  const size_t words = static_cast<size_t>(CountTokens(text));
  if (words > max_query_tokens_) return too_long(std::to_string(words) + " words");
  return Status::Ok();
}

namespace {

// The headers the request context gathered (rate-limit figures); an exact Retry-After
// among them replaces the generic one of an error reply.
void AddReplyHeaders(const RequestContext& ctx, HttpResponse* res) {
  for (const auto& h : ctx.reply_headers) {
    if (h.first == "Retry-After") std::erase_if(res->headers, [](const auto& x) { return x.first == "Retry-After"; });
    res->headers.push_back(h);
  }
}

}  // namespace

Status Api::AwaitConsistency(const RequestContext& ctx) const {
  uint64_t target = ctx.consistency == Consistency::kEventual ? 0 : ctx.read_after;
  if (ctx.consistency == Consistency::kStrong && options_.log_head) {
    CTX_ASSIGN_OR_RETURN(const uint64_t head, options_.log_head());
    target = std::max(target, head);
  }
  if (target == 0 || backends_.replica->applied_sequence() >= target) return Status::Ok();
  std::chrono::milliseconds wait = options_.write_token_wait;
  if (ctx.has_deadline()) wait = std::min(wait, std::chrono::milliseconds(ctx.RemainingMs()));
  if (backends_.replica->WaitForApplied(target, wait)) return Status::Ok();
  return DeadlineExceeded("this node has applied the update log up to " +
                              std::to_string(backends_.replica->applied_sequence()) + ", not yet " +
                              (target == ctx.read_after ? "write token " : "the log's head ") + std::to_string(target) +
                              "; retry, or ask another node",
                          "write_not_visible");
}

Status Api::AwaitConsistency(const Json& body, RequestContext& ctx) const {
  if (const Json* c = body.is_object() ? body.Find("consistency") : nullptr; c != nullptr) {
    if (!c->is_string() || !ParseConsistency(c->as_string(), &ctx.consistency)) {
      return InvalidArgument("\"consistency\" must be \"eventual\", \"session\" or \"strong\"", "invalid_value");
    }
  }
  return AwaitConsistency(ctx);
}

void Api::Shed(Route* route, const RequestContext& ctx, const std::vector<RateScope>* scopes, int64_t service_ns,
               const Status& why, int64_t start_ns, const Responder& respond) {
  // Shed before any work: the request costs its scopes nothing.
  if (scopes != nullptr && !scopes->empty()) limiter_->Refund(*scopes);
  shed_[static_cast<int>(ctx.priority)]->Increment();
  last_shed_service_ns_.store(service_ns, std::memory_order_relaxed);
  last_shed_ns_.store(clock_->NowNanos(), std::memory_order_relaxed);
  in_flight_->Add(-1);
  Refuse(route, ctx, why, start_ns, respond);
}

bool Api::Overloaded() const {
  const int64_t last = last_shed_ns_.load(std::memory_order_relaxed);
  return last != 0 && clock_->NowNanos() - last < std::chrono::nanoseconds(kOverloadWindow).count();
}

std::chrono::microseconds Api::CoalesceInterval(std::chrono::microseconds most) const {
  if (!Overloaded()) return std::chrono::microseconds(0);
  const auto service = std::chrono::microseconds(last_shed_service_ns_.load(std::memory_order_relaxed) / 1000);
  return std::min(service, most);
}

void Api::Refuse(Route* route, const RequestContext& ctx, const Status& why, int64_t start_ns,
                 const Responder& respond) {
  HttpResponse res = ErrorResponse(why);
  AddReplyHeaders(ctx, &res);
  if (res.status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  Record(route, res.status, start_ns);
  respond(std::move(res));
}

int64_t Api::BeginDrain(std::chrono::milliseconds grace) {
  draining_ = true;
  // A margin before the HTTP server cuts connections: a commit that starts just before the
  // cut-off needs time to finish and send its reply.
  const int64_t grace_ns = static_cast<int64_t>(grace.count()) * 1'000'000;
  const int64_t margin_ns = std::min<int64_t>(grace_ns / 4, 1'000'000'000);
  const int64_t cut_off = clock_->NowNanos() + grace_ns - margin_ns;
  shutdown_ns_ = cut_off;
  return cut_off;
}

Status Api::MakeContext(const Route& route, const HttpRequest& req, int64_t start_ns, RequestContext* ctx) const {
  ctx->tenant = kDefaultTenant;
  ctx->token_counter = backends_.tokenizer;
  ctx->shutdown_ns = &shutdown_ns_;
  const std::string traceparent = req.Header("traceparent");
  std::optional<TraceContext> caller = traceparent.empty() ? std::nullopt : TraceContext::Parse(traceparent);
  ctx->trace = caller ? TraceContext::Continue(*caller) : TraceContext::Start();
  int64_t timeout_ms = route.default_timeout_ms;
  const std::string header = req.Header("x-request-timeout-ms");
  if (!header.empty()) {
    char* end = nullptr;
    const long long v = std::strtoll(header.c_str(), &end, 10);
    if (end == header.c_str() || *end != '\0' || v < 1 || v > kMaxRequestTimeoutMs) {
      return InvalidArgument("X-Request-Timeout-Ms must be a whole number of milliseconds from 1 to " +
                                 std::to_string(kMaxRequestTimeoutMs) + ", got '" + header + "'",
                             "invalid_header");
    }
    timeout_ms = v;
  }
  // Counted from when the request arrived, so time spent queued for a worker counts.
  if (timeout_ms > 0) ctx->deadline_ns = start_ns + timeout_ms * 1'000'000;
  if (std::string key = req.Header("idempotency-key"); !key.empty()) {
    const bool printable = std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (key.size() > kMaxIdempotencyKeyBytes || !printable) {
      return InvalidArgument(
          "Idempotency-Key must be 1 to " + std::to_string(kMaxIdempotencyKeyBytes) + " printable ASCII characters",
          "invalid_header");
    }
    ctx->idempotency_key = std::move(key);
  }
  if (const std::string token = req.Header("x-contextd-write-token"); !token.empty()) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(token.c_str(), &end, 10);
    if (end == token.c_str() || *end != '\0' || token[0] == '-' || token.size() > 20) {
      return InvalidArgument("X-Contextd-Write-Token must be a write token from a write's reply, got '" + token + "'",
                             "invalid_header");
    }
    ctx->read_after = v;
  }
  if (const std::string level = req.Header("x-contextd-consistency"); !level.empty()) {
    if (!ParseConsistency(level, &ctx->consistency)) {
      return InvalidArgument("X-Contextd-Consistency must be eventual, session or strong, got '" + level + "'",
                             "invalid_header");
    }
  }
  return Status::Ok();
}

void Api::Run(Route* route, const Params& params, const HttpRequest& req, RequestContext& ctx, int64_t start_ns,
              const Responder& respond) {
  StatusOr<Reply> reply = Internal("unreachable");
  try {
    // A request that waited out its deadline in the queue is not started.
    Status late = ctx.CheckDeadline("a worker took the request");
    if (late.ok() && !route->consistency_in_body) late = AwaitConsistency(ctx);
    reply = late.ok() ? route->fn(params, req, ctx) : StatusOr<Reply>(late);
  } catch (const std::exception& e) {
    // Handlers do not throw by design; this keeps a bug (or bad_alloc) from taking the
    // whole server down with it.
    reply = Internal(std::string("unexpected exception: ") + e.what());
  }
  HttpResponse res;
  if (reply.ok()) {
    res.status = reply->status;
    res.content_type = reply->content_type;
    if (reply->channel != nullptr) {
      res.channel = reply->channel;
    } else {
      // A write's reply names its write token: a read elsewhere that carries it sees it.
      // (Not in a JSON-RPC envelope, whose members are fixed: the header carries it.)
      if (const uint64_t token = ctx.committed_sequence.load();
          token != 0 && reply->raw.empty() && reply->json.is_object() && !route->json_rpc) {
        reply->json["write_token"] = std::to_string(token);
      }
      // 202 and 204 carry no body (an MCP notification's acknowledgement).
      const bool bodiless = (reply->status == 202 || reply->status == 204) && reply->json.is_null();
      if (!bodiless) res.body = reply->raw.empty() ? reply->json.Dump() : std::move(reply->raw);
    }
  } else {
    res = ErrorResponse(reply.status());
    if (res.status >= 500) spdlog::error("{} {}: {}", req.method, req.path, reply.status().ToString());
  }
  if (res.body.size() >= kCompressFromBytes) {
    // A client that accepts zstd or gzip gets it, compressed here, on the request's pool.
    const std::string coding = ChooseResponseEncoding(req.Header("accept-encoding"));
    if (!coding.empty()) {
      res.body = EncodeBody(coding, res.body);
      res.headers.emplace_back("Content-Encoding", coding);
    }
    res.headers.emplace_back("Vary", "Accept-Encoding");
  }
  res.headers.emplace_back("traceparent", ctx.trace.Header());
  const bool metered = options_.usage != nullptr && reply.ok() && res.status < 300 && !route->operation.empty();
  if (metered && !reply->produce) {
    char cost[32];
    const auto [end, ec] =
        std::to_chars(cost, cost + sizeof(cost), ChargeUsage(*route, params, ctx), std::chars_format::fixed, 8);
    res.headers.emplace_back("x-contextd-cost-usd", std::string(cost, ec == std::errc() ? end : cost));
  }
  AddReplyHeaders(ctx, &res);
  if (const uint64_t token = ctx.committed_sequence.load(); token != 0) {
    res.headers.emplace_back("X-Contextd-Write-Token", std::to_string(token));
  }
  if (reply.ok() && reply->produce) {
    // Streamed: the head goes now, and the request is in flight until its body is done.
    const int status = res.status;
    respond(std::move(res));
    reply->produce();
    if (metered) ChargeUsage(*route, params, ctx);  // known once the stream is done: no header
    Record(route, status, start_ns);
    in_flight_->Add(-1);
    return;
  }
  // Counted before the reply leaves, so a client's next request sees this one finished.
  Record(route, res.status, start_ns);
  in_flight_->Add(-1);
  respond(std::move(res));
}

void Api::Handle(HttpRequest req, Responder respond) {
  const int64_t start = clock_->NowNanos();
  std::vector<std::string> segments = SplitPath(req.path);
  Route* match = nullptr;
  std::string allowed;
  Params params;
  // HEAD runs the GET route; the HTTP server sends only the head of its reply.
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  for (auto& r : routes_) {
    if (r->pattern.size() != segments.size()) continue;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) ok = r->pattern[i] == "{}" || r->pattern[i] == segments[i];
    if (!ok) continue;
    if (r->method != method) {
      allowed += (allowed.empty() ? "" : ", ") + r->method + (r->method == "GET" ? ", HEAD" : "");
      continue;
    }
    match = r.get();
    break;
  }
  if (match == nullptr) {
    unrouted_->Increment();
    if (!allowed.empty()) {
      HttpResponse res = ErrorResponse(InvalidArgument(
          req.method + " is not allowed on " + req.path + "; allowed: " + allowed, "method_not_allowed"));
      res.headers.emplace_back("Allow", allowed);
      return respond(std::move(res));
    }
    return respond(ErrorResponse(NotFound("no route for " + req.method + " " + req.path, "no_route")));
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    if (match->pattern[i] != "{}") continue;
    auto decoded = PercentDecode(segments[i]);
    if (!decoded.ok()) return respond(ErrorResponse(decoded.status()));
    params.push_back(std::move(decoded).value());
  }
  auto ctx = std::make_shared<RequestContext>(clock_);  // shared: pool tasks are copyable
  if (Status st = MakeContext(*match, req, start, ctx.get()); !st.ok()) return respond(ErrorResponse(st));
  // The rate-limit scopes the request is charged in, after the work too; none (and no
  // allocation) while auth is off.
  std::shared_ptr<std::vector<RateScope>> scopes;
  if (options_.auth_enabled) {
    scopes = std::make_shared<std::vector<RateScope>>();
    Status st = Authorize(*match, params, req, ctx.get(), scopes.get());
    if (st.ok() && !scopes->empty() && limiter_->may_block()) {
      // Shared limits: the limiter's thread decides (one Redis round trip, pipelined with
      // others) and goes on with the request; no I/O thread or worker waits for Redis.
      limiter_->AdmitAsync(*scopes, [this, match, params = std::move(params), req = std::move(req), ctx, start,
                                     respond = std::move(respond), scopes](const RateDecision& d) mutable {
        if (Status admitted = RateStatus(d, ctx.get()); !admitted.ok())
          return Refuse(match, *ctx, admitted, start, respond);
        ArmTokenReservation(scopes, ctx.get());
        Dispatch(match, std::move(params), std::move(req), std::move(ctx), start, std::move(respond),
                 std::move(scopes));
      });
      return;
    }
    if (st.ok()) st = AdmitRate(*scopes, ctx.get());
    if (!st.ok()) return Refuse(match, *ctx, st, start, respond);
    ArmTokenReservation(scopes, ctx.get());
  }
  Dispatch(match, std::move(params), std::move(req), std::move(ctx), start, std::move(respond), std::move(scopes));
}

void Api::ArmTokenReservation(const std::shared_ptr<std::vector<RateScope>>& scopes, RequestContext* ctx) {
  if (std::none_of(scopes->begin(), scopes->end(), [](const RateScope& r) { return r.tpm > 0; })) return;
  // A plain function over the scopes (alive until settled): no allocation per request.
  ctx->reserve_fn = [](void* self, void* arg, RequestContext& c, int64_t tokens) {
    return static_cast<Api*>(self)->ReserveTokens(*static_cast<std::vector<RateScope>*>(arg), tokens, &c);
  };
  ctx->reserve_self = this;
  ctx->reserve_arg = scopes.get();
}

void Api::Dispatch(Route* match, Params params, HttpRequest req, std::shared_ptr<RequestContext> ctx, int64_t start,
                   Responder respond, std::shared_ptr<std::vector<RateScope>> scopes) {
  in_flight_->Add(1);
  // An inline route that must wait for a write token waits on a search worker, never on
  // an I/O thread.
  // (read_after first: applied_sequence() takes a lock, and most requests carry no token.)
  const bool must_wait = ctx->read_after != 0 && ctx->read_after > backends_.replica->applied_sequence();
  // Tokens were charged as declared; settled against what the request used once it is done.
  const auto settle = [this, scopes, ctx] {
    if (scopes != nullptr && !scopes->empty())
      // What a metered embedder counted may exceed the declaration (chunk overlaps), and a
      // query declares nothing: its embedding, when metered, is charged here.
      limiter_->Settle(
          *scopes, std::max(ctx->tokens_used.load(), ctx->usage.embedding_tokens.load()) - ctx->tokens_reserved.load());
  };
  if (match->pool == Pool::kInline && !must_wait) {
    Run(match, params, req, *ctx, start, respond);
    return settle();
  }
  Pool which = match->pool == Pool::kInline ? Pool::kSearch : match->pool;
  if (which == Pool::kQuery) {
    auto c = backends_.collections->Find(ctx->tenant, params[0]);
    which = c.ok() && (*c)->embedder_waits() ? Pool::kEmbed : Pool::kSearch;
  }
  ThreadPool* pool = which == Pool::kWrite   ? write_pool_.get()
                     : which == Pool::kEmbed ? embed_pool_.get()
                                             : search_pool_.get();
  // Writes that add data also pass the memory watermarks (deletes free memory).
  int64_t pause_ms = 0;
  Status shed = Admission(which, *pool, *ctx);
  if (shed.ok() && match->adds_data) shed = AdmitWrite(&pause_ms);
  std::atomic<int64_t>* service = &service_ns_[static_cast<int>(which)];
  if (!shed.ok())
    return Shed(match, *ctx, scopes.get(), service->load(std::memory_order_relaxed), shed, start, respond);
  const int lane = static_cast<int>(ctx->priority);
  pool->Submit(
      [this, match, params = std::move(params), req = std::move(req), ctx = std::move(ctx), start,
       respond = std::move(respond), settle, service, pause_ms, which, scopes]() mutable {
        if (options_.max_queue_delay.count() > 0 && which != Pool::kWrite) {
          if (const int64_t waited_ns = clock_->NowNanos() - start;
              waited_ns > options_.max_queue_delay.count() * 1'000'000) {
            return Shed(match, *ctx, scopes.get(), service->load(std::memory_order_relaxed),
                        Unavailable("overloaded: the request waited " + std::to_string(waited_ns / 1'000'000) +
                                        " ms for a worker, past max_queue_delay; retry shortly or on another node",
                                    "overloaded"),
                        start, respond);
          }
        }
        // Memory is near its high mark: this writer waits a little, slowing the others.
        if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
        const int64_t began = clock_->NowNanos();
        Run(match, params, req, *ctx, start, respond);
        settle();
        // An average over the last ~16 tasks: a burst of slow ones shows within a few.
        const int64_t took = clock_->NowNanos() - began, before = service->load(std::memory_order_relaxed);
        service->store(before == 0 ? took : before + (took - before) / 16, std::memory_order_relaxed);
      },
      lane);
}

StatusOr<Api::Reply> Api::DocsAsset(const Params& p, const HttpRequest&, RequestContext&) {
  // Only these two files: the name never reaches the filesystem otherwise.
  const std::string& file = p[0];
  if (file != "swagger-ui-bundle.js" && file != "swagger-ui.css") {
    return NotFound("no documentation asset " + file, "not_found");
  }
  std::ifstream in(options_.docs_dir + "/" + file, std::ios::binary);
  if (options_.docs_dir.empty() || !in) {
    return Unavailable("Swagger UI is not installed in " + options_.docs_dir + "; run scripts/setup", "docs_missing");
  }
  Reply r;
  r.raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  r.content_type = file.ends_with(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
  return r;
}

StatusOr<Api::Reply> Api::CreateCollection(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(ValidateCollectionName(p[0]));
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, /*allow_empty=*/true));
  CTX_ASSIGN_OR_RETURN(CollectionConfig config, ParseCollectionRequest(body, *backends_.embedders));
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Create(ctx.tenant, p[0], config, ctx));
  Reply r;
  r.status = 201;
  r.json = CollectionInfoJson(c->Describe());
  return r;
}

StatusOr<Api::Reply> Api::ListCollections(const Params&, const HttpRequest&, RequestContext& ctx) {
  Reply r;
  r.json = Json::MakeObject();
  Json& list = r.json["collections"];
  list = Json::MakeArray();
  for (const auto& c : backends_.collections->List(ctx.tenant)) list.push_back(CollectionInfoJson(c->Describe()));
  return r;
}

StatusOr<Api::Reply> Api::GetCollection(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  Reply r;
  r.json = CollectionInfoJson(c->Describe());
  return r;
}

StatusOr<Api::Reply> Api::DropCollection(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(backends_.collections->Drop(ctx.tenant, p[0], ctx));
  Reply r;
  r.json["deleted"] = p[0];
  return r;
}

StatusOr<Api::Reply> Api::UpsertDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  std::vector<DocumentInput> docs;
  {
    // Scoped: the parsed body goes before the write, which would otherwise hold a large
    // body's text twice (the JSON's and the documents') through its peak.
    CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
    CTX_ASSIGN_OR_RETURN(docs, ParseUpsertRequest(body, c->config().dim, !c->has_embedder()));
  }
  ctx.usage_model = c->config().embedder;
  if (ctx.limits_tokens()) {
    // What will be embedded: each document's title and text (a caller's vector: nothing).
    int64_t tokens = 0;
    for (const DocumentInput& d : docs) {
      if (!d.vector) tokens += TokensOf(d.title) + TokensOf(d.text);
    }
    CTX_RETURN_IF_ERROR(ctx.ReserveTokens(tokens, /*exact=*/true));
  }
  UpsertResult result;
  CTX_RETURN_IF_ERROR(c->Upsert(ctx, std::move(docs), &result));
  Reply r;
  r.json["upserted"] = static_cast<int64_t>(result.upserted);
  r.json["chunks"] = static_cast<int64_t>(result.chunks);
  r.json["usage"] = UsageJson(ctx.usage);
  return r;
}

void Api::CountPlan(const PlannedSearch& plan) {
  metrics_
      ->GetCounter("contextd_plan_requests_total",
                   "Planned searches by the strategy chosen, the one whose results answered, and fallback.",
                   {{"strategy", std::string(StrategyName(plan.strategy))},
                    {"answered_by", std::string(StrategyName(plan.answered_by))},
                    {"fallback", plan.fallback ? "true" : "false"}})
      ->Increment();
}

StatusOr<Api::Reply> Api::GetShards(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  Reply r;
  r.json = ShardsReportJson(c->DescribeShards());
  return r;
}

StatusOr<Api::Reply> Api::Query(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  const int64_t start = clock_->NowNanos();
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_RETURN_IF_ERROR(AwaitConsistency(body, ctx));
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  CTX_ASSIGN_OR_RETURN(QueryRequest q, ParseQueryRequest(body, c->config().dim, c->has_embedder()));
  CTX_RETURN_IF_ERROR(CheckQueryLength(q.text));
  QueryResult result;
  Json plan;
  if (q.strategy.empty()) {
    CTX_ASSIGN_OR_RETURN(result, c->Query(ctx, q));
  } else {
    const QueryAnalysis analysis = AnalyzeQuery(q.text);
    std::optional<Strategy> forced;
    ParseStrategyChoice(q.strategy, &forced);  // validated by ParseQueryRequest
    const Strategy strategy = forced.value_or(analysis.strategy);
    CTX_ASSIGN_OR_RETURN(
        PlannedSearch planned,
        RunPlan(strategy, analysis, q, q.mode_given, c->has_embedder() || q.vector.has_value(), c->config().sharding,
                ctx.RemainingMs(), *clock_, [&](const QueryRequest& step) { return c->Query(ctx, step); }));
    CountPlan(planned);
    result = std::move(planned.result);
    planned.result = QueryResult();
    plan = PlanJson(planned);
  }
  Reply r;
  Json& results = r.json["results"];
  results = Json::MakeArray();
  for (auto& h : result.hits) {
    Json hit = Json::MakeObject();
    hit["id"] = std::move(h.doc_id);
    hit["chunk"] = static_cast<int64_t>(h.chunk);
    hit["text"] = std::move(h.text);
    hit["score"] = h.score;
    hit["metadata"] = std::move(h.metadata);
    if (!h.ref_of.empty()) hit["ref_of"] = std::move(h.ref_of);
    results.push_back(std::move(hit));
  }
  ctx.usage_operation = "query." + std::string(QueryModeName(result.mode));
  if (result.mode != QueryMode::kKeyword && !q.vector) ctx.usage_model = c->config().embedder;
  r.json["mode"] = std::string(QueryModeName(result.mode));
  r.json["cache"] = result.cache;
  if (result.cache == "semantic") r.json["cache_similarity"] = result.cache_similarity;
  if (!result.cache_tier.empty()) r.json["cache_tier"] = result.cache_tier;
  if (result.degraded) {
    r.json["degraded"] = true;
    r.json["degraded_reason"] = result.degraded_reason;
  }
  if (!plan.is_null()) {
    r.json["route"] = std::move(plan);
  } else if (result.route) {
    r.json["route"] = RouteJson(*result.route);
  }
  if (result.coverage) {
    // Cluster mode: answered < shards means part of the collection is not in the answer.
    Json& c = r.json["coverage"];
    c["shards"] = static_cast<int64_t>(result.coverage->shards);
    c["answered"] = static_cast<int64_t>(result.coverage->answered);
    c["nodes"] = static_cast<int64_t>(result.coverage->nodes);
  }
  Json& timings = r.json["timings"];
  timings["embed_ms"] = result.embed_ms;
  timings["search_ms"] = result.search_ms;
  timings["total_ms"] = Millis(clock_->NowNanos() - start);
  r.json["usage"] = UsageJson(ctx.usage);
  return r;
}

}  // namespace contextd
