// Api: the contextd REST API over an Engine. Routes requests, runs CPU-heavy and blocking
// handlers on a worker pool (never on the I/O threads), maps Status to HTTP in one place
// (http_status.h), and records per-route request counts and latencies.
//
// Thread safety: Handle() is called concurrently from the I/O threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/rate_limiter.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/request_context.h"
#include "common/thread_pool.h"
#include "embed/embedder_catalog.h"
#include "engine/engine.h"
#include "engine/planner.h"
#include "engine/services.h"
#include "net/http.h"
#include "usage/usage_ledger.h"

namespace contextd {

// A vector search's routing as the API reports it: {"shards":[ids],"of":n,"margin":..,
// "confident":..,"widened":..}.
Json RouteJson(const QueryResult::Route& route);

struct ApiOptions {
  // Searches run on `search_threads` (about one per core: they only compute); writes,
  // which wait for fsync, run on `write_threads`, so queries never queue behind syncs and
  // enough writers are in flight to share each sync.
  size_t search_threads = 1;
  size_t write_threads = 16;
  // Embedding requests (/v1/embeddings, /embed) mostly wait on batches and providers, so
  // they get their own, larger pool.
  size_t embed_threads = 64;
  // The search and embed pools' ThreadPool::Options::quantum: their workers yield the CPU
  // between tasks after this much busy time, so the I/O threads never wait out a kernel
  // time slice behind them; zero turns it off. Seastar's task quota is 500 us; on the bench
  // box 1 ms kept the same p99 for 5-15% more throughput.
  std::chrono::microseconds cpu_quantum{1000};
  // The most a request body may hold once its Content-Encoding (gzip, deflate, zstd) is
  // undone; the HTTP server bounds it as sent.
  size_t max_body_bytes = 64 << 20;
  // The longest query text (/query, /v1/context), in the analyzer's words: longer ones are
  // refused (400 query_too_long) before any work, so a 10 MB "query" costs a parse, not
  // seconds of embedding and scoring.
  size_t max_query_tokens = 2048;
  // Cluster mode: GET /v1/cluster's report (the log, this node), and whether the log is
  // reachable (/readyz is 503 "log_unavailable" while it is not). Unset: a single node.
  std::function<Json()> cluster_status;
  std::function<bool()> log_connected;
  // Why this node cannot apply the log at all ("" when it can), for /readyz.
  std::function<std::string()> log_blocked;
  // Cluster mode: the usage of every node up (each ledger holds what its node served),
  // summed; *asked and *answered say how many nodes were asked and answered in time.
  std::function<std::vector<UsageRow>(const UsageQuery&, int* asked, int* answered)> cluster_usage;
  // How long a read carrying a write token this node has not applied yet waits for it
  // (within the request's deadline) before 504 write_not_visible.
  std::chrono::milliseconds write_token_wait{5000};
  // Cluster mode: the log's last committed sequence, asked of its leader, which a
  // "consistency":"strong" read waits for this node to apply. Unset: a single node, whose
  // writes are applied before they are acknowledged, so every read is strong.
  std::function<StatusOr<uint64_t>()> log_head;
  // The rate limits (not owned): shared through Redis in a cluster; null: this node's own.
  RateLimits* rate_limits = nullptr;
  // A shared dependency the node works without, degraded ("redis" while the shared rate
  // limits cannot reach Redis and each node enforces its share), or "": /readyz says so
  // and stays 200 (reads and writes go on).
  std::function<std::string()> degraded_dependency;
  // Admission: the most requests that may wait for a pool's workers. Past it a request is
  // shed at once (503 overloaded, Retry-After, its rate-limit charge given back); default
  // priority past 80% of it and batch past half, so batch is shed first. A request whose
  // deadline would pass while it waits (the queue ahead of it times the pool's recent
  // service time) is shed too.
  size_t max_queue = 1024;
  // Reads (the search and embed pools) that waited longer than this for a worker are shed
  // when a worker takes them (503 overloaded, their charge given back) instead of run:
  // under overload the queue's delay, not its length, bounds what admitted requests wait
  // (CoDel's idea). A read whose predicted wait (the queue ahead of it times the pool's
  // recent service time) is already past it is shed on arrival. 0: off.
  std::chrono::milliseconds max_queue_delay{0};
  // Memory watermarks for writes that add data (upserts, session turns, cache entries,
  // new collections; deletes and admin changes always pass): from 80% of
  // memory_high_bytes of resident memory such a write is slowed (a pause growing to 50 ms
  // before it starts), at 100% it is refused (503 memory_pressure, Retry-After) until
  // memory falls below 90%, while reads go on. 0: off.
  size_t memory_high_bytes = 0;
  // Resident bytes now; null: the process's (ResidentBytes). Tests inject their own.
  std::function<size_t()> resident_bytes;
  // Governance: with auth on, every route but /healthz and /readyz (and /metrics unless
  // metrics_need_key) needs an API key (Authorization: Bearer KEY, or api-key: KEY); the
  // admin key (CONTEXTD_ADMIN_KEY) manages every tenant. Off: everything is the default
  // tenant, as before.
  bool auth_enabled = false;
  std::string admin_key;
  bool metrics_need_key = false;
  const Clock* clock = nullptr;  // null: the system clock (rate limits, key expiry)
  // POST /mcp (config "mcp"): whether the contextd-store tool is offered (writes are off
  // by default: an agent should not fill a knowledge base unasked), the collection tools
  // use when a call names none, and the browser origins besides this machine's that may
  // call it.
  // Costs and usage: every successful request (with auth on or a price table) is priced
  // and recorded in the ledger (not owned; null: off), its cost sent in x-contextd-cost-usd;
  // tenant and key budgets are checked against the ledger's spend before any work.
  UsageLedger* usage = nullptr;
  PriceTable prices;
  // Where GET /docs finds Swagger UI (swagger-ui-bundle.js, swagger-ui.css; scripts/setup
  // puts them in the models directory); empty or missing: /docs answers 503 saying so.
  std::string docs_dir;
  struct Mcp {
    bool store_enabled = false;
    std::string default_collection;
    std::vector<std::string> allowed_origins;
  } mcp;
};

// What the API serves from: the engine's interfaces (engine/services.h), so the HTTP layer
// runs as well over fakes (tests/server) as over the Engine. None may be null but the
// tokenizer (token counts and /v1/context then answer 503 tokenizer_missing).
struct ApiBackends {
  CollectionCatalog* collections = nullptr;
  SessionService* sessions = nullptr;
  LlmCacheService* llm_cache = nullptr;
  const EmbedderCatalog* embedders = nullptr;
  GovernanceService* governance = nullptr;
  const ReplicaState* replica = nullptr;
  // Null: the snapshot routes answer 501 (a backend without files of its own).
  SnapshotService* snapshots = nullptr;
  const TiktokenEncoder* tokenizer = nullptr;
  // The engine's services, with the catalog and the tokenizer the composition root made
  // (engine/engine_parts.h) beside it.
  static ApiBackends Of(Engine* engine, const EmbedderCatalog* embedders, const TiktokenEncoder* tokenizer);
};

class Api {
 public:
  Api(const ApiBackends& backends, MetricsRegistry* metrics, const ApiOptions& options);
  ~Api();

  void Handle(HttpRequest request, Responder respond);
  // From now on /readyz answers 503 "draining" (see HttpServer::Shutdown), and requests
  // still running when the grace is nearly over stop before their next step: a write not
  // committed by then is not committed at all (503 shutting_down), since its reply could
  // no longer be sent.
  // Returns that cut-off time (the clock's nanoseconds).
  int64_t BeginDrain(std::chrono::milliseconds grace);
  // True while the node is refusing work it cannot take: it shed a request (overloaded,
  // memory) within the last kOverloadWindow. Cheap: one clock read.
  bool Overloaded() const;
  static constexpr std::chrono::milliseconds kOverloadWindow{100};
  // How long the HTTP server's I/O threads should leave between wake-ups
  // (HttpServerOptions::coalesce): zero unless Overloaded(); then the recent service time
  // of the pool that shed last, at most `most`. One request's time: a wake-up is then paid
  // for about once per request served, and an admitted reply waits at most about as long
  // again as it took, so fast requests get short intervals.
  std::chrono::microseconds CoalesceInterval(std::chrono::microseconds most) const;

 private:
  struct Reply {
    int status = 200;
    Json json;
    std::string raw;  // used instead of json when content_type is not JSON
    std::string content_type = "application/json";
    // Streamed replies: the head goes out with `channel`, then `produce` runs on the same
    // worker thread and writes the body into it (closing it when done).
    std::shared_ptr<HttpBodyChannel> channel;
    std::function<void()> produce;
  };
  using Params = std::vector<std::string>;  // the decoded {placeholders}, in order
  using RouteFn = std::function<StatusOr<Reply>(const Params&, const HttpRequest&, RequestContext&)>;
  // kInline: cheap enough for the I/O thread. kQuery: the search pool, or the embed pool
  // when the collection's embedder waits on a provider (a 20 ms provider call must not hold
  // one of the few search threads).
  enum class Pool { kInline, kSearch, kWrite, kEmbed, kQuery };
  // What a route needs of the caller's key, derived from its method and path.
  enum class Access { kOpen, kRead, kWrite, kAdmin, kTenantAdmin };
  struct Route {
    std::string method;
    std::vector<std::string> pattern;  // path segments; "{}" matches any one segment
    std::string name;                  // the pattern as written, for metrics labels
    Pool pool = Pool::kSearch;
    Access access = Access::kRead;
    bool collection_param = false;  // params[0] names a collection (/v1/collections/{name}/..)
    // A write that adds data (not a delete, not an admin change): it passes the memory
    // watermarks, whichever pool runs it.
    bool adds_data = false;
    // The body may name the read's "consistency" (queries, /v1/context): the handler waits
    // for it once it has parsed the body, instead of Run before the handler.
    bool consistency_in_body = false;
    bool json_rpc = false;
    std::string operation;  // the usage ledger's name for it; empty: not recorded  // replies are JSON-RPC messages
                            // (/mcp): nothing is added to them
    // The deadline of requests that set none (X-Request-Timeout-Ms); 0: none.
    int64_t default_timeout_ms = 0;
    RouteFn fn;
    Histogram* latency = nullptr;
    std::array<std::atomic<Counter*>, 6> by_class{};  // requests by status class 1xx..5xx
  };

  void AddRoute(const std::string& method, const std::string& pattern, Pool pool, RouteFn fn);
  // The route added with exactly this method and pattern; null when none.
  Route* FindRoute(std::string_view method, std::string_view pattern) const;

 public:
  // "METHOD /pattern" of every route, as added (the OpenAPI test holds the document to it).
  std::vector<std::string> RouteNames() const;

 private:
  // The body as JSON, its Content-Encoding undone first (on the handler's pool, not an I/O
  // thread: inflating megabytes is CPU work). An empty body is null when `allow_empty`.
  StatusOr<Json> ParseBody(const HttpRequest& req, bool allow_empty) const;
  void Run(Route* route, const Params& params, const HttpRequest& req, RequestContext& ctx, int64_t start_ns,
           const Responder& respond);
  // The request's context: W3C trace from `traceparent` (a new trace when absent or
  // malformed), deadline from X-Request-Timeout-Ms or the route's default. A malformed
  // timeout header is a 400.
  Status MakeContext(const Route& route, const HttpRequest& req, int64_t start_ns, RequestContext* ctx) const;
  void Record(Route* route, int status, int64_t start_ns);
  // Answers a request refused before its handler ran (auth, rate limits, shedding): the
  // error with the rate-limit headers gathered so far.
  void Refuse(Route* route, const RequestContext& ctx, const Status& why, int64_t start_ns, const Responder& respond);
  // Refuses a dispatched request that was shed before it ran (overloaded, memory): its
  // rate-limit charge given back, counted by priority, no longer in flight. `service_ns`:
  // the recent service time of the pool that shed it (see CoalesceInterval).
  void Shed(Route* route, const RequestContext& ctx, const std::vector<RateScope>* scopes, int64_t service_ns,
            const Status& why, int64_t start_ns, const Responder& respond);

  StatusOr<Reply> CreateCollection(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> ListCollections(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> GetCollection(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> DropCollection(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> UpsertDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> GetDocument(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> GetDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> ListDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CreateSnapshot(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> ListSnapshots(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> DownloadSnapshot(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> DeleteSnapshot(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> RestoreSnapshot(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<SnapshotService*> Snapshots() const;
  StatusOr<Reply> DeleteDocument(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> Query(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> GetShards(const Params& p, const HttpRequest& req, RequestContext& ctx);
  // contextd_plan_requests_total{strategy, answered_by, fallback}.
  void CountPlan(const PlannedSearch& plan);
  // embeddings_api.cc: the OpenAI and TEI embedding endpoints.
  // POST /v1/context (context_api.cc).
  StatusOr<Reply> Context(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> SessionAppend(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> SessionGet(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> SessionDelete(const Params& p, const HttpRequest& req, RequestContext& ctx);

  // The LLM response cache (cache_api.cc).
  StatusOr<Reply> CacheConfigure(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheDescribe(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheStore(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheLookup(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheFeedback(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheDeleteByScope(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> CacheDeleteEntry(const Params& p, const HttpRequest& req, RequestContext& ctx);

  StatusOr<Reply> OpenAiEmbeddings(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> ListModels(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> GetModel(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> TeiEmbed(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> TeiTokenize(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> TeiInfo(const Params& p, const HttpRequest& req, RequestContext& ctx);
  // GET /docs/{file}: Swagger UI's script and style from options_.docs_dir.
  StatusOr<Reply> DocsAsset(const Params& p, const HttpRequest& req, RequestContext& ctx);
  // The MCP endpoint (mcp_api.cc) and its sessions: id -> last used (ns).
  struct McpState {
    Mutex mu;
    std::unordered_map<std::string, int64_t> sessions GUARDED_BY(mu);
  };
  void AddMcpRoutes();
  StatusOr<Reply> McpPost(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> McpDelete(const Params& p, const HttpRequest& req, RequestContext& ctx);
  Json McpTools() const;
  // Runs a tool as its route's handler; NotFound no_route for an unknown tool.
  StatusOr<Json> McpCallTool(const std::string& name, const Json& args, const HttpRequest& outer, RequestContext& ctx);
  StatusOr<std::shared_ptr<const Embedder>> EmbedderFor(const Json* model) const;
  // Embeds `texts` with the request's "model" into *vecs; returns the embedder used.
  StatusOr<std::shared_ptr<const Embedder>> EmbedForRequest(const RequestContext& ctx, const Json& body,
                                                            const std::vector<std::string_view>& texts,
                                                            std::vector<float>* vecs) const;

  const ApiBackends backends_;
  MetricsRegistry* metrics_;
  const ApiOptions options_;
  const Clock* clock_;
  std::vector<std::unique_ptr<Route>> routes_;
  Gauge* in_flight_;
  Counter* unrouted_;
  // Last: drained before the routes go away.
  std::unique_ptr<McpState> mcp_;
  // Budget warnings given, by scope and period start (one each).
  mutable Mutex budget_mu_;
  mutable std::set<std::string> budget_warned_ GUARDED_BY(budget_mu_);
  Counter* budget_soft_ = nullptr;
  Counter* budget_refused_ = nullptr;
  std::unique_ptr<ThreadPool> search_pool_;
  std::unique_ptr<ThreadPool> write_pool_;
  std::unique_ptr<ThreadPool> embed_pool_;
  // Each pool's recent time per task (an exponential average), for the wait a new request
  // faces; by Pool (kSearch, kWrite, kEmbed).
  mutable std::atomic<int64_t> service_ns_[5] = {};
  Counter* shed_[ThreadPool::kLanes] = {};        // requests shed, by priority
  std::atomic<int64_t> last_shed_ns_{0};          // the clock's time of the latest shed; 0: none yet
  std::atomic<int64_t> last_shed_service_ns_{0};  // the shedding pool's service time then
  // Memory watermarks: the last reading (refreshed at most every 10 ms) and whether writes
  // are being refused (until memory falls below the low mark).
  mutable std::atomic<int64_t> rss_read_ns_{0};
  mutable std::atomic<size_t> rss_bytes_{0};
  mutable std::atomic<bool> refusing_writes_{false};
  Counter* memory_refused_ = nullptr;
  int pools_collector_ = -1;  // renders the pools' queue depths and quantum yields
  size_t max_body_bytes_;
  size_t max_query_tokens_;
  // With auth on: who is calling (ctx's tenant and principal) and whether they may; fills
  // the rate-limit scopes the request is charged in.
  Status Authorize(const Route& route, const Params& params, const HttpRequest& req, RequestContext* ctx,
                   std::vector<RateScope>* scopes) const;
  // Admits the request under its scopes' limits, or says when to retry.
  Status AdmitRate(const std::vector<RateScope>& scopes, RequestContext* ctx);
  // 402 budget_exceeded when the tenant's or the key's hard budget is spent; warns once a
  // period when spend passes a budget's soft threshold.
  Status CheckBudget(const std::string& scope, const std::string& tenant, const std::string& key,
                     const Budget& budget) const;
  // Prices a finished request, records it in the ledger, and returns its cost.
  double ChargeUsage(const Route& route, const Params& params, const RequestContext& ctx) const;
  StatusOr<Reply> GetUsage(const Params& p, const HttpRequest& req, RequestContext& ctx);
  // A rate decision as the request's status (429 naming the scope) and headers.
  Status RateStatus(const RateDecision& d, RequestContext* ctx);
  // Lets the handler reserve declared tokens in the scopes (when any has a token limit).
  void ArmTokenReservation(const std::shared_ptr<std::vector<RateScope>>& scopes, RequestContext* ctx);
  // The request, authorised and admitted by its rate limits: shed or queued for its pool
  // (or run at once when inline), then settled.
  void Dispatch(Route* match, Params params, HttpRequest req, std::shared_ptr<RequestContext> ctx, int64_t start,
                Responder respond, std::shared_ptr<std::vector<RateScope>> scopes);
  // The request's declared tokens (RequestContext::ReserveTokens), charged in every scope
  // or refused: 429 with the wait, or 400 request_exceeds_limit when no wait would do.
  Status ReserveTokens(const std::vector<RateScope>& scopes, int64_t tokens, RequestContext* ctx);
  // OK when a request of ctx's priority may wait in `pool` (of kind `which`), else the
  // reason it is shed.
  Status Admission(Pool which, const ThreadPool& pool, const RequestContext& ctx) const;
  // OK when a write that adds data may go now; *pause_ms: how long it waits first (memory
  // above the slow-down mark). See ApiOptions::memory_high_bytes.
  Status AdmitWrite(int64_t* pause_ms) const;
  // cl100k_base tokens of a text (pre-tokenizer words without the vocabulary).
  int64_t TokensOf(std::string_view text) const;
  StatusOr<Reply> AdminCreateTenant(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminListTenants(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminDigest(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminCheckpoint(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminGetTenant(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminPatchTenant(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminDeleteTenant(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminCreateKey(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminListKeys(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminRotateKey(const Params& p, const HttpRequest& req, RequestContext& ctx);
  StatusOr<Reply> AdminDeleteKey(const Params& p, const HttpRequest& req, RequestContext& ctx);
  std::unique_ptr<RateLimits> own_limiter_;  // when the options give none
  RateLimits* limiter_ = nullptr;
  // Waits (bounded) until this node has applied the request's write token, if it has one.
  // Waits until this node has applied what the request's consistency asks for: nothing
  // (eventual), its write token (session), or the log's head when it began (strong).
  Status AwaitConsistency(const RequestContext& ctx) const;
  // Reads the body's optional "consistency" into ctx, then waits for it.
  Status AwaitConsistency(const Json& body, RequestContext& ctx) const;
  // 400 query_too_long when `text` has more than max_query_tokens_ words.
  Status CheckQueryLength(std::string_view text) const;
  size_t embed_threads_;
  int64_t started_unix_s_;  // "created" of the models /v1/models lists
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> shutdown_ns_{0};  // RequestContext::shutdown_ns of every request
};

// Shared by the route handlers of this module.
StatusOr<std::string> PercentDecode(const std::string& s);
// "a=1&b=x+y%21" -> {("a","1"), ("b","x y!")}, in order; a malformed escape is a 400.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQueryString(const std::string& query);
// "usage" of the engine's responses: {"embedding_tokens","chunks_scored","bytes_written",
// "documents_written"}.
Json UsageJson(const Usage& usage);

}  // namespace contextd
