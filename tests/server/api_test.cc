// The HTTP layer in process, over fakes of the engine (fakes.h): routing, body codecs,
// error mapping, headers and the request context each request gets. The integration tests
// run the same API over the real engine and real sockets.
#include "server/api.h"

#include <gtest/gtest.h>

#include "text/tiktoken.h"

#include <condition_variable>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "auth/shared_rate_limiter.h"
#include "fakes.h"
#include "manual_clock.h"
#include "redis_server.h"
#include "test_util.h"

namespace contextd {
namespace {

struct Reply {
  int status = 0;
  Json body;
  HttpHeaders headers;
  std::string Header(std::string_view name) const { return FindHeader(headers, name); }
  std::string reason() const {
    const Json* e = body.Find("error");
    return e != nullptr && e->Find("code") != nullptr ? e->Find("code")->as_string() : "";
  }
};

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() {
    ApiOptions o;
    o.clock = &clock_;
    api_ = std::make_unique<Api>(fakes_.Wire(), &metrics_, o);
  }
  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             HttpHeaders headers = {}) {
    HttpRequest req;
    req.method = method;
    const size_t q = path.find('?');
    req.path = path.substr(0, q);
    if (q != std::string::npos) req.query = path.substr(q + 1);
    req.body = body;
    req.headers = std::move(headers);
    std::promise<HttpResponse> done;
    api_->Handle(std::move(req), [&](HttpResponse res) { done.set_value(std::move(res)); });
    HttpResponse res = done.get_future().get();
    Reply r;
    r.status = res.status;
    r.headers = res.headers;
    if (!res.body.empty()) {
      auto j = ParseJson(res.body);
      EXPECT_TRUE(j.ok()) << res.body;
      if (j.ok()) r.body = std::move(*j);
    }
    return r;
  }
  std::shared_ptr<FakeCollection> MakeDocs() {
    EXPECT_EQ(Call("PUT", "/v1/collections/docs", R"({"embedder":"hash"})").status, 201);
    auto c = fakes_.collections.Get("default", "docs");
    EXPECT_NE(c, nullptr);
    EXPECT_EQ(Call("POST", "/v1/collections/docs/documents",
                   R"({"documents":[{"id":"a","text":"red apples"},{"id":"b","text":"green pears"}]})")
                  .status,
              200);
    return c;
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
  FakeBackends fakes_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, RoutesByMethodAndPath) {
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  Reply none = Call("GET", "/v1/nothing/here");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(none.reason(), "no_route");
  Reply wrong = Call("PATCH", "/v1/collections/docs");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.reason(), "method_not_allowed");
  EXPECT_NE(wrong.Header("Allow").find("PUT"), std::string::npos) << wrong.Header("Allow");
  // Path parameters are percent-decoded before the handler sees them.
  EXPECT_EQ(Call("PUT", "/v1/collections/my%2Ddocs", R"({"embedder":"hash"})").status, 201);
  EXPECT_NE(fakes_.collections.Get("default", "my-docs"), nullptr);
}

TEST_F(ApiTest, BodiesAreReadIntoTypedRequests) {
  ASSERT_EQ(
      Call("PUT", "/v1/collections/docs", R"({"embedder":"hash","chunking":{"max_tokens":64,"overlap":8}})").status,
      201);
  auto c = fakes_.collections.Get("default", "docs");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->config().embedder, "hash");
  EXPECT_EQ(c->config().dim, 256) << "the embedder's dimension, from the catalog";
  EXPECT_EQ(c->config().chunking.max_tokens, 64);
  ASSERT_EQ(Call("POST", "/v1/collections/docs/query", R"({"query":"apples","k":3,"mode":"keyword"})").status, 200);
  EXPECT_EQ(c->last_query.k, 3u);
  EXPECT_EQ(c->last_query.mode, QueryMode::kKeyword);
  EXPECT_EQ(c->last_query.text, "apples");
}

TEST_F(ApiTest, BadBodiesAreRejectedBeforeTheEngineSeesThem) {
  struct Case {
    const char* method;
    const char* path;
    const char* body;
    int status;
    const char* reason;
  } cases[] = {
      {"PUT", "/v1/collections/docs", "{not json", 400, "invalid_json"},
      {"PUT", "/v1/collections/docs", R"({"colour":"red"})", 400, "unknown_field"},
      {"PUT", "/v1/collections/docs", R"({"embedder":"bert"})", 400, "unknown_embedder"},
      {"PUT", "/v1/collections/bad%20name", "{}", 400, "invalid_name"},
      {"PUT", "/v1/cache/answers", R"({"threshold":2})", 400, "out_of_range"},
  };
  for (const auto& c : cases) {
    Reply r = Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body.Dump();
    EXPECT_EQ(r.reason(), c.reason) << c.body << " -> " << r.body.Dump();
  }
  EXPECT_TRUE(fakes_.collections.List("default").empty()) << "nothing was created";
  EXPECT_EQ(fakes_.llm_cache.CacheDescribe("answers", RequestContext::Background()).status().code(),
            StatusCode::kNotFound);
}

TEST_F(ApiTest, EngineErrorsMapToTheirStatus) {
  auto c = MakeDocs();
  const std::pair<Status, int> cases[] = {
      {Unavailable("provider down", "embedder_unavailable"), 503},
      {DeadlineExceeded("too slow"), 504},
      {NotFound("gone", "collection_not_found"), 404},
      {ResourceExhausted("queue full", "too_many_requests_in_flight"), 429},
      {Internal("boom", "storage_error"), 500},
  };
  for (const auto& [status, http] : cases) {
    c->fail_with = status;
    Reply r = Call("POST", "/v1/collections/docs/query", R"({"query":"apples"})");
    EXPECT_EQ(r.status, http) << status.ToString();
    EXPECT_EQ(r.reason(), status.reason());
    EXPECT_EQ(r.body.Find("error")->Find("message")->as_string(), status.message());
    if (http == 503 || http == 429) {
      EXPECT_FALSE(r.Header("Retry-After").empty()) << status.ToString();
    }
  }
  c->fail_with = Status::Ok();
  EXPECT_EQ(Call("GET", "/v1/collections/nope").reason(), "collection_not_found");
  EXPECT_EQ(Call("GET", "/v1/collections/docs/documents/zzz").status, 404);
}

TEST_F(ApiTest, EachRequestGetsItsContext) {
  auto c = MakeDocs();
  // No headers: the default tenant, anonymous, a new trace, the route's default deadline.
  Reply plain = Call("POST", "/v1/collections/docs/query", R"({"query":"apples"})");
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(c->seen.tenant, "default");
  EXPECT_EQ(c->seen.principal, "anonymous");
  auto echoed = TraceContext::Parse(plain.Header("traceparent"));
  ASSERT_TRUE(echoed.has_value()) << plain.Header("traceparent");
  EXPECT_EQ(echoed->trace_id, c->seen.trace_id);
  // The caller's trace is continued; its deadline reaches the engine.
  const std::string trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  Reply traced = Call("POST", "/v1/collections/docs/query", R"({"query":"apples"})",
                      {{"traceparent", trace}, {"X-Request-Timeout-Ms", "250"}});
  ASSERT_EQ(traced.status, 200);
  EXPECT_EQ(c->seen.trace_id, "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(TraceContext::Parse(traced.Header("traceparent"))->trace_id, "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c->seen.deadline_ns, clock_.NowNanos() + 250'000'000) << "the manual clock stood still";
  Reply bad = Call("POST", "/v1/collections/docs/query", R"({"query":"apples"})", {{"X-Request-Timeout-Ms", "soon"}});
  EXPECT_EQ(bad.status, 400);
  // A write's idempotency key goes with it; usage comes back.
  Reply write = Call("POST", "/v1/collections/docs/documents", R"({"documents":[{"id":"c","text":"apples again"}]})",
                     {{"Idempotency-Key", "retry-7"}});
  ASSERT_EQ(write.status, 200);
  EXPECT_EQ(c->seen.idempotency_key, "retry-7");
  EXPECT_EQ(write.body.Find("usage")->Find("documents_written")->as_int(), 1);
  Reply query = Call("POST", "/v1/collections/docs/query", R"({"query":"apples"})");
  ASSERT_NE(query.body.Find("results"), nullptr) << query.body.Dump();
  EXPECT_EQ(query.body.Find("results")->as_array().size(), 2u);
  EXPECT_EQ(query.body.Find("usage")->Find("chunks_scored")->as_int(), 3);
}

TEST_F(ApiTest, ReadsWaitForWhatTheirConsistencyAsks) {
  std::atomic<uint64_t> head{7};
  std::atomic<bool> log_up{true};
  ApiOptions o;
  o.clock = &clock_;
  o.write_token_wait = std::chrono::milliseconds(0);
  o.log_head = [&]() -> StatusOr<uint64_t> {
    if (!log_up) return Unavailable("no leader", "log_unavailable");
    return head.load();
  };
  api_ = std::make_unique<Api>(fakes_.Wire(), &metrics_, o);
  MakeDocs();
  fakes_.replica.applied = 5;  // the log's leader holds 7
  auto query = [&](const std::string& level, HttpHeaders headers = {}) {
    const std::string field = level.empty() ? "" : R"(,"consistency":")" + level + "\"";
    return Call("POST", "/v1/collections/docs/query", R"({"query":"apples")" + field + "}", std::move(headers));
  };
  // session (the default) without a token, and eventual, read what the node has.
  EXPECT_EQ(query("").status, 200);
  EXPECT_EQ(query("eventual").status, 200);
  EXPECT_EQ(query("session").status, 200);
  // strong waits for the head the leader reported: this node is behind it.
  Reply behind = query("strong");
  EXPECT_EQ(behind.status, 504);
  EXPECT_EQ(behind.reason(), "write_not_visible");
  EXPECT_EQ(Call("GET", "/v1/collections/docs", "", {{"X-Contextd-Consistency", "strong"}}).status, 504);
  EXPECT_EQ(Call("POST", "/v1/context", R"({"collection":"docs","query":"apples","consistency":"strong"})").reason(),
            "write_not_visible");
  // A write token the node has not applied holds a session read, not an eventual one.
  EXPECT_EQ(query("", {{"X-Contextd-Write-Token", "6"}}).status, 504);
  EXPECT_EQ(query("eventual", {{"X-Contextd-Write-Token", "6"}}).status, 200);
  EXPECT_EQ(
      Call("GET", "/v1/collections/docs", "", {{"X-Contextd-Write-Token", "6"}, {"X-Contextd-Consistency", "eventual"}})
          .status,
      200);
  // Once applied, strong reads pass; a leader that cannot be asked is a 503, not a guess.
  fakes_.replica.applied = 7;
  EXPECT_EQ(query("strong").status, 200);
  log_up = false;
  Reply no_leader = query("strong");
  EXPECT_EQ(no_leader.status, 503);
  EXPECT_EQ(no_leader.reason(), "log_unavailable");
  // Bad levels are named.
  EXPECT_EQ(query("linearizable").reason(), "invalid_value");
  EXPECT_EQ(Call("POST", "/v1/collections/docs/query", R"({"query":"apples","consistency":3})").reason(),
            "invalid_value");
  EXPECT_EQ(Call("GET", "/v1/collections/docs", "", {{"X-Contextd-Consistency", "always"}}).reason(), "invalid_header");
}

// The OpenAPI document names every route and no route it does not have; each operation
// has a summary, its path parameters and the error shape.
TEST_F(ApiTest, TheOpenApiDocumentNamesEveryRouteAndNoOther) {
  Reply spec = Call("GET", "/openapi.json");
  ASSERT_EQ(spec.status, 200);
  std::set<std::string> documented;
  for (const auto& [path, methods] : spec.body.Find("paths")->as_object()) {
    for (const auto& [method, op] : methods.as_object()) {
      std::string upper = method;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.insert(upper + " " + path);
      EXPECT_NE(op.Find("summary"), nullptr) << upper << " " << path;
      EXPECT_NE(op.Find("responses")->Find("default"), nullptr) << upper << " " << path << " lacks the error shape";
      size_t params = 0;
      for (char ch : path) params += ch == '{' ? 1 : 0;
      size_t declared = 0;  // path parameters; query parameters come on top
      if (const Json* list = op.Find("parameters"); list != nullptr) {
        for (const Json& p : list->as_array()) declared += p.Find("in")->as_string() == "path" ? 1 : 0;
      }
      EXPECT_EQ(declared, params) << upper << " " << path;
    }
  }
  std::set<std::string> routes;
  for (const std::string& r : api_->RouteNames()) routes.insert(r);
  for (const std::string& r : routes) EXPECT_TRUE(documented.count(r)) << r << " has no entry in openapi.json";
  for (const std::string& d : documented) EXPECT_TRUE(routes.count(d)) << d << " is documented but not served";
}

TEST_F(ApiTest, CacheAndSessionRoutesUseTheirServices) {
  ASSERT_EQ(Call("PUT", "/v1/cache/answers", R"({"embedder":"hash","threshold":0.8})").status, 200);
  Reply stored = Call("POST", "/v1/cache/answers/store", R"({"prompt":"2+2?","response":{"text":"4"}})");
  ASSERT_EQ(stored.status, 200) << stored.body.Dump();
  Reply hit = Call("POST", "/v1/cache/answers/lookup", R"({"prompt":"2+2?"})");
  EXPECT_TRUE(hit.body.Find("hit")->as_bool());
  EXPECT_EQ(hit.body.Find("id")->as_string(), stored.body.Find("id")->as_string());
  Reply described = Call("GET", "/v1/cache/answers");
  EXPECT_EQ(described.body.Find("entries")->as_int(), 1);
  EXPECT_FLOAT_EQ(static_cast<float>(described.body.Find("threshold")->as_double()), 0.8f);
  // Feedback: a verdict or a fresh response, never both or neither.
  const std::string fb_prefix = R"({"id":")" + stored.body.Find("id")->as_string() + R"(","prompt":"2+2?")";
  Reply fb = Call("POST", "/v1/cache/answers/feedback", fb_prefix + R"(,"correct":false})");
  ASSERT_EQ(fb.status, 200) << fb.body.Dump();
  EXPECT_FALSE(fb.body.Find("correct")->as_bool());
  EXPECT_EQ(fb.body.Find("namespace")->Find("observations")->as_int(), 1);
  EXPECT_FLOAT_EQ(static_cast<float>(fb.body.Find("entry_min_confidence")->as_double()), 1.0f);
  EXPECT_EQ(Call("POST", "/v1/cache/answers/feedback", fb_prefix + "}").reason(), "missing_field");
  EXPECT_EQ(Call("POST", "/v1/cache/answers/feedback", fb_prefix + R"(,"correct":true,"response":"4"})").reason(),
            "invalid_value");
  EXPECT_EQ(Call("POST", "/v1/cache/answers/feedback", fb_prefix + R"(,"correct":"yes"})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/cache/answers/feedback", R"({"id":"nope","prompt":"x","correct":true})").reason(),
            "entry_not_found");
  // A scope filter reaches the service decoded; no filter at all is refused.
  EXPECT_EQ(Call("DELETE", "/v1/cache/answers/entries?scope.model=gpt%204").status, 200);
  EXPECT_EQ(fakes_.llm_cache.last_delete_scope.at("model"), "gpt 4");
  EXPECT_EQ(Call("DELETE", "/v1/cache/answers/entries").reason(), "missing_filter");

  Reply turn = Call("POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"hi","ttl_s":60})");
  ASSERT_EQ(turn.status, 200) << turn.body.Dump();
  EXPECT_EQ(turn.body.Find("turns")->as_int(), 1);
  EXPECT_EQ(fakes_.sessions.last_ttl_s, 60);
  Reply turns = Call("GET", "/v1/sessions/s1");
  ASSERT_EQ(turns.status, 200);
  EXPECT_EQ(turns.body.Find("turns")->as_array()[0].Find("content")->as_string(), "hi");
  EXPECT_EQ(Call("POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"x","ttl_s":0})").reason(),
            "out_of_range");
}

TEST_F(ApiTest, ReadinessFollowsTheStorage) {
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  fakes_.replica.storage = "disk_full";
  Reply degraded = Call("GET", "/readyz");
  EXPECT_EQ(degraded.status, 503);
  EXPECT_EQ(degraded.body.Find("storage")->as_string(), "disk_full");
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

// With auth on: each user of a tenant has the tenant's user_limits, whether the user comes
// from the key's user_id or from an X-User-Id header the key may set.
class ApiAuthTest : public ::testing::Test {
 protected:
  ApiAuthTest() {
    ApiOptions o;
    o.clock = &clock_;
    o.auth_enabled = true;
    o.admin_key = "admin-key-0123456789";
    api_ = std::make_unique<Api>(fakes_.Wire(), &metrics_, o);
    TenantRecord t;
    t.id = "acme";
    t.user_limits.rpm = 2;
    EXPECT_TRUE(fakes_.governance.PutTenant(t, RequestContext::Background()).ok());
    gateway_ = NewKey("", true);
    alice_ = NewKey("alice", false);
    CollectionConfig c;
    c.embedder = "hash";
    c.dim = 256;
    EXPECT_TRUE(fakes_.collections.Create("acme", "docs", c, RequestContext::Background()).ok());
  }
  std::string NewKey(const std::string& user, bool user_header) {
    KeyRecord k;
    k.tenant = "acme";
    k.role = Role::kWriter;
    k.user_id = user;
    k.user_header = user_header;
    const std::string key = MakeKey(&k);
    EXPECT_TRUE(fakes_.governance.PutKey(k, RequestContext::Background()).ok());
    return key;
  }
  int Get(const std::string& key, const std::string& user = "") {
    HttpRequest req;
    req.method = "GET";
    req.path = "/v1/collections/docs";
    req.headers = {{"Authorization", "Bearer " + key}};
    if (!user.empty()) req.headers.emplace_back("X-User-Id", user);
    std::promise<HttpResponse> done;
    api_->Handle(std::move(req), [&](HttpResponse res) { done.set_value(std::move(res)); });
    HttpResponse res = done.get_future().get();
    last_body_ = res.body;
    return res.status;
  }

  HttpResponse Post(const std::string& key, const std::string& path, const std::string& body) {
    HttpRequest req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    req.headers = {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
    std::promise<HttpResponse> done;
    api_->Handle(std::move(req), [&](HttpResponse res) { done.set_value(std::move(res)); });
    return done.get_future().get();
  }

  ManualClock clock_;
  MetricsRegistry metrics_, context_metrics_;
  FakeBackends fakes_;
  std::unique_ptr<Api> api_;
  std::string gateway_, alice_, last_body_;
};

std::string HeaderOf(const HttpResponse& res, const std::string& name) {
  std::string value;
  for (const auto& [k, v] : res.headers) {
    if (k == name) value = v;
  }
  return value;
}

// Tokens are charged from what a request declares, before the work: all scopes or none,
// 429 with the exact wait when a bucket is short, 400 when no wait would ever do.
TEST_F(ApiAuthTest, TokensAreChargedAsDeclaredBeforeTheWork) {
  KeyRecord k;
  k.tenant = "acme";
  k.role = Role::kWriter;
  k.limits.tpm = 100;
  const std::string key = MakeKey(&k);
  ASSERT_TRUE(fakes_.governance.PutKey(k, RequestContext::Background()).ok());
  // Without the cl100k vocabulary (the fakes have none) a token is a pre-tokenizer word.
  const auto embed = [&](int words) {
    std::string input;
    for (int i = 0; i < words; ++i) input += "word ";
    return Post(key, "/v1/embeddings", R"({"model":"hash","input":")" + input + R"("})");
  };
  HttpResponse res = embed(150);
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("request_exceeds_limit"), std::string::npos) << res.body;
  EXPECT_EQ(HeaderOf(res, "Retry-After"), "") << "retrying cannot help";

  res = embed(60);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(HeaderOf(res, "x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(HeaderOf(res, "x-ratelimit-remaining-tokens"), "40");
  EXPECT_NE(res.body.find(R"("prompt_tokens":60)"), std::string::npos) << res.body;

  res = embed(60);
  EXPECT_EQ(res.status, 429) << res.body;
  EXPECT_NE(res.body.find("key:" + k.id), std::string::npos) << res.body;
  EXPECT_EQ(HeaderOf(res, "Retry-After"), "12") << "20 tokens short at 100 a minute";
  // The refusal charged nothing: 40 are still there for a smaller request.
  res = embed(40);
  EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(HeaderOf(res, "x-ratelimit-remaining-tokens"), "0");
  clock_.AdvanceMs(36000);
  EXPECT_EQ(embed(60).status, 200) << "60 tokens refilled in 36 s";

  // /v1/context (which needs the cl100k vocabulary) declares its max_tokens: more than the
  // bucket holds is refused up front, and costs nothing.
  auto tokenizer = TiktokenEncoder::Load(std::string(CONTEXTD_SHARED_DIR) + "/data/tiktoken/cl100k_base.tiktoken");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  ApiBackends with_tokenizer = fakes_.Wire();
  with_tokenizer.tokenizer = tokenizer->get();
  ApiOptions o;
  o.clock = &clock_;
  o.auth_enabled = true;
  api_ = std::make_unique<Api>(with_tokenizer, &context_metrics_, o);
  res = Post(key, "/v1/context", R"({"collection":"docs","query":"word","max_tokens":500})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("request_exceeds_limit"), std::string::npos) << res.body;
  // An upsert declares the tokens it embeds.
  res = Post(key, "/v1/collections/docs/documents",
             R"({"documents":[{"id":"a","text":"one two three four five six seven eight nine ten"}]})");
  EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(HeaderOf(res, "x-ratelimit-remaining-tokens"),
            std::to_string(100 - (*tokenizer)->Count("one two three four five six seven eight nine ten")));
}

// Two nodes (two Apis) with limits shared through a real Redis: a user's two requests a
// minute are two across both; with Redis gone each node allows its share and says so.
TEST_F(ApiAuthTest, LimitsSharedThroughRedisHoldAcrossNodesAndDegradeToEachNodesShare) {
  RedisServer redis;
  ASSERT_TRUE(redis.running());
  SharedRateLimitOptions so;
  so.redis = RedisEndpoint{"127.0.0.1", redis.port(), 200};
  SharedRateLimiter limits1(
      so, &clock_, [] { return 2; }, &context_metrics_);
  SharedRateLimiter limits2(
      so, &clock_, [] { return 2; }, nullptr);
  ApiOptions o;
  o.clock = &clock_;
  o.auth_enabled = true;
  o.rate_limits = &limits1;
  auto node1 = std::make_unique<Api>(fakes_.Wire(), &metrics_, o);
  o.rate_limits = &limits2;
  auto node2 = std::make_unique<Api>(fakes_.Wire(), &context_metrics_, o);
  const auto get = [&](Api* node) {
    HttpRequest req;
    req.method = "GET";
    req.path = "/v1/collections/docs";
    req.headers = {{"Authorization", "Bearer " + alice_}};
    std::promise<HttpResponse> done;
    node->Handle(std::move(req), [&](HttpResponse res) { done.set_value(std::move(res)); });
    return done.get_future().get();
  };
  EXPECT_EQ(get(node1.get()).status, 200);
  HttpResponse second = get(node2.get());
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(HeaderOf(second, "x-ratelimit-remaining-requests"), "0");
  HttpResponse third = get(node1.get());
  EXPECT_EQ(third.status, 429) << "alice's two a minute are spent across both nodes";
  EXPECT_EQ(HeaderOf(third, "Retry-After"), "30");
  EXPECT_EQ(HeaderOf(third, "x-contextd-limits-degraded"), "");
  // Redis down: each node enforces half of the user's limit by itself, and says so.
  redis.Stop();
  HttpResponse alone = get(node2.get());
  EXPECT_EQ(alone.status, 200) << alone.body;
  EXPECT_EQ(HeaderOf(alone, "x-contextd-limits-degraded"), "1");
  EXPECT_EQ(HeaderOf(alone, "x-ratelimit-limit-requests"), "1");
  EXPECT_EQ(get(node2.get()).status, 429);
}

// Costs: each successful request is priced (x-contextd-cost-usd) and recorded in the
// ledger; a hard budget, once spent, refuses requests (402) until its period turns, and the
// soft threshold is counted once per period. /v1/usage shows what was recorded.
TEST_F(ApiAuthTest, RequestsArePricedRecordedAndStoppedByAHardBudget) {
  TempDir dir;
  auto ledger = UsageLedger::Open(dir.path() + "/usage.jsonl", &clock_);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  ApiOptions o;
  o.clock = &clock_;
  o.auth_enabled = true;
  o.admin_key = "admin-key-0123456789";
  o.usage = ledger->get();
  o.prices = *PriceTable::FromJson(*ParseJson(R"({"requests":{"upsert":0.0004}})"));
  api_ = std::make_unique<Api>(fakes_.Wire(), &context_metrics_, o);
  TenantRecord t = *fakes_.governance.auth().Tenant("acme");
  t.budget.limit_usd = 0.001;
  t.budget.monthly = false;
  t.budget.soft_pct = 50;
  ASSERT_TRUE(fakes_.governance.PutTenant(t, RequestContext::Background()).ok());
  const std::string doc = R"({"documents":[{"id":"a","text":"apples"}]})";
  for (int i = 0; i < 3; ++i) {
    HttpResponse res = Post(gateway_, "/v1/collections/docs/documents", doc);
    ASSERT_EQ(res.status, 200) << i << " " << res.body;
    EXPECT_EQ(HeaderOf(res, "x-contextd-cost-usd"), "0.00040000");
  }
  HttpResponse spent = Post(gateway_, "/v1/collections/docs/documents", doc);
  EXPECT_EQ(spent.status, 402) << spent.body;
  EXPECT_NE(spent.body.find("budget_exceeded"), std::string::npos);
  EXPECT_NE(spent.body.find("tenant acme has spent $0.0012 of its $0.001 day budget"), std::string::npos) << spent.body;
  EXPECT_EQ(Get(gateway_), 200) << "what is never metered (describing a collection) goes on: " << last_body_;
  const std::string metrics = context_metrics_.RenderPrometheus();
  EXPECT_NE(metrics.find("contextd_budget_soft_threshold_total 1"), std::string::npos) << "once per period";
  EXPECT_NE(metrics.find("contextd_budget_refused_total 1"), std::string::npos);

  // The admin sees every tenant's usage; a writer key its own.
  HttpRequest req;
  req.method = "GET";
  req.path = "/v1/usage";
  req.query = "group_by=tenant,operation&granularity=day";
  req.headers = {{"Authorization", "Bearer admin-key-0123456789"}};
  std::promise<HttpResponse> done;
  api_->Handle(req, [&](HttpResponse res) { done.set_value(std::move(res)); });
  HttpResponse usage = done.get_future().get();
  ASSERT_EQ(usage.status, 200) << usage.body;
  Json u = *ParseJson(usage.body);
  ASSERT_EQ(u.Find("rows")->as_array().size(), 1u) << usage.body;
  const Json& row = u.Find("rows")->as_array()[0];
  EXPECT_EQ(row.Find("requests")->as_int(), 3) << "refused requests cost nothing";
  EXPECT_NEAR(row.Find("cost_usd")->as_double(), 0.0012, 1e-12);
  EXPECT_EQ(row.Find("group")->Find("operation")->as_string(), "upsert");
  req.headers = {{"Authorization", "Bearer " + alice_}};
  req.query = "";
  std::promise<HttpResponse> mine;
  api_->Handle(req, [&](HttpResponse res) { mine.set_value(std::move(res)); });
  HttpResponse alice_usage = mine.get_future().get();
  ASSERT_EQ(alice_usage.status, 200) << alice_usage.body;
  EXPECT_EQ(ParseJson(alice_usage.body)->Find("rows")->as_array().size(), 0u) << "alice sees only her own";

  // The next day the budget is whole again.
  clock_.AdvanceMs(24 * 3600'000LL);
  EXPECT_EQ(Post(gateway_, "/v1/collections/docs/documents", doc).status, 200);
  // A key's own budget binds the key alone.
  KeyRecord k;
  k.tenant = "acme";
  k.role = Role::kWriter;
  k.budget.limit_usd = 0.0004;
  const std::string capped = MakeKey(&k);
  ASSERT_TRUE(fakes_.governance.PutKey(k, RequestContext::Background()).ok());
  EXPECT_EQ(Post(capped, "/v1/collections/docs/documents", doc).status, 200);
  HttpResponse key_spent = Post(capped, "/v1/collections/docs/documents", doc);
  EXPECT_EQ(key_spent.status, 402);
  EXPECT_NE(key_spent.body.find("key " + k.id), std::string::npos) << key_spent.body;
  EXPECT_EQ(Post(gateway_, "/v1/collections/docs/documents", doc).status, 200);
}

TEST_F(ApiAuthTest, EachUserHasTheTenantsUserLimits) {
  // Two requests a minute per user: u1's third is refused, u2 and alice are not charged.
  EXPECT_EQ(Get(gateway_, "u1"), 200) << last_body_;
  EXPECT_EQ(Get(gateway_, "u1"), 200);
  EXPECT_EQ(Get(gateway_, "u1"), 429);
  EXPECT_NE(last_body_.find("user:acme/u1"), std::string::npos) << last_body_;
  EXPECT_EQ(Get(gateway_, "u2"), 200);
  EXPECT_EQ(Get(alice_), 200);
  EXPECT_EQ(Get(alice_), 200);
  EXPECT_EQ(Get(alice_), 429) << "alice's own key is alice's";
  // A key without user_header may not speak for someone else, and may name itself.
  EXPECT_EQ(Get(alice_, "mallory"), 403);
  EXPECT_NE(last_body_.find("permission_denied"), std::string::npos);
  // A key with no user and no header is limited by the tenant and key only.
  EXPECT_EQ(Get(gateway_), 200);
  EXPECT_EQ(Get(gateway_), 200);
  EXPECT_EQ(Get(gateway_), 200);
  EXPECT_EQ(Get(gateway_, "bad user!"), 400);
  // A minute later u1 may go on.
  clock_.AdvanceMs(61000);
  EXPECT_EQ(Get(gateway_, "u1"), 200);
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

// Queue-delay shedding. One search worker, which a query for "hold" keeps busy until
// Release(); a query for "slow" takes 10 ms of the manual clock. Replies are kept by query
// text.
class ApiQueueDelayTest : public ::testing::Test {
 protected:
  void Start(std::chrono::milliseconds max_queue_delay) {
    ApiOptions o;
    o.clock = &clock_;
    o.search_threads = 1;
    o.max_queue_delay = max_queue_delay;
    api_ = std::make_unique<Api>(fakes_.Wire(), &metrics_, o);
    CollectionConfig c;
    c.embedder = "hash";
    c.dim = 256;
    auto created = fakes_.collections.Create("default", "docs", c, RequestContext::Background());
    ASSERT_TRUE(created.ok());
    dynamic_cast<FakeCollection*>(created->get())->on_query = [this](const QueryRequest& q) {
      if (q.text == "slow") clock_.AdvanceMs(10);  // teaches the pool a 10 ms service time
      if (q.text != "hold") return;
      entered_.set_value();
      gate_.wait();
    };
  }
  void TearDown() override { Release(); }  // never leave the worker held: the pool joins it

  void Query(const std::string& text) {
    HttpRequest req;
    req.method = "POST";
    req.path = "/v1/collections/docs/query";
    req.body = R"({"query":")" + text + R"(","mode":"keyword"})";
    api_->Handle(std::move(req), [this, text](HttpResponse res) {
      std::lock_guard<std::mutex> lock(mu_);
      replies_[text] = std::move(res);
      replied_.notify_all();
    });
  }
  void Hold() {
    Query("hold");
    entered_.get_future().wait();
  }
  void Release() {
    if (!released_) release_.set_value();
    released_ = true;
  }
  // Whether `n` replies came within 10 s.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return replied_.wait_for(lock, std::chrono::seconds(10), [&] { return replies_.size() == n; });
  }
  HttpResponse Reply(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    return replies_[text];
  }

  FakeBackends fakes_;
  MetricsRegistry metrics_;
  ManualClock clock_;
  std::unique_ptr<Api> api_;
  std::promise<void> entered_, release_;
  std::shared_future<void> gate_ = release_.get_future().share();
  bool released_ = false;
  std::mutex mu_;
  std::condition_variable replied_;
  std::map<std::string, HttpResponse> replies_;
};

// A read that waited past max_queue_delay for a worker is shed when the worker takes it,
// not run: overload bounds what admitted requests wait.
TEST_F(ApiQueueDelayTest, ReadsThatWaitedPastTheQueueDelayAreShedWhenTaken) {
  Start(std::chrono::milliseconds(20));
  Hold();
  Query("late");         // queued behind the held one
  clock_.AdvanceMs(30);  // ... for 30 ms
  Release();
  ASSERT_TRUE(WaitFor(2));
  EXPECT_EQ(Reply("hold").status, 200);
  EXPECT_EQ(Reply("late").status, 503) << "waited 30 ms, past the 20 ms delay";
  Query("fresh");
  ASSERT_TRUE(WaitFor(3));
  EXPECT_EQ(Reply("fresh").status, 200);
  EXPECT_NE(metrics_.RenderPrometheus().find("contextd_requests_shed_total{priority=\"default\"} 1"),
            std::string::npos);
}

// A shed marks the node overloaded for Api::kOverloadWindow, and the HTTP server's I/O
// threads are told to coalesce their wake-ups meanwhile; nothing shed, or the window
// past, and it is not.
TEST_F(ApiQueueDelayTest, AShedMarksTheNodeOverloadedForAWindow) {
  Start(std::chrono::milliseconds(20));
  EXPECT_FALSE(api_->Overloaded()) << "nothing shed yet";
  Hold();
  Query("late");
  clock_.AdvanceMs(30);
  EXPECT_FALSE(api_->Overloaded()) << "queued, not shed yet";
  Release();
  ASSERT_TRUE(WaitFor(2));
  ASSERT_EQ(Reply("late").status, 503);
  EXPECT_TRUE(api_->Overloaded());
  // The I/O threads' interval: the shedding pool's service time ("hold" took 30 ms of the
  // clock), at most what the caller allows.
  using std::chrono::microseconds;
  EXPECT_EQ(api_->CoalesceInterval(microseconds(100000)), microseconds(30000));
  EXPECT_EQ(api_->CoalesceInterval(microseconds(5000)), microseconds(5000));
  clock_.AdvanceMs(Api::kOverloadWindow.count() - 1);
  EXPECT_TRUE(api_->Overloaded());
  clock_.AdvanceMs(1);
  EXPECT_FALSE(api_->Overloaded()) << "the window has passed";
  EXPECT_EQ(api_->CoalesceInterval(microseconds(5000)), microseconds(0));
  Query("fresh");
  ASSERT_TRUE(WaitFor(3));
  EXPECT_EQ(Reply("fresh").status, 200);
  EXPECT_FALSE(api_->Overloaded()) << "an admitted request does not mark it";
}

// A read whose predicted wait (the queue ahead times the recent service time) is past
// max_queue_delay is shed on arrival, without waiting for a worker to take it.
TEST_F(ApiQueueDelayTest, ReadsPredictedToWaitPastTheQueueDelayAreShedOnArrival) {
  Start(std::chrono::milliseconds(5));
  Query("slow");
  ASSERT_TRUE(WaitFor(1));
  Hold();
  Query("first");                                                    // nothing queued ahead: admitted, waits
  Query("second");                                                   // one ahead at 10 ms: past the 5 ms delay
  ASSERT_TRUE(WaitFor(2)) << "shed while the worker is still held";  // "slow", then "second"
  EXPECT_EQ(Reply("second").status, 503);
  EXPECT_NE(Reply("second").body.find("past max_queue_delay"), std::string::npos) << Reply("second").body;
  EXPECT_NE(Reply("second").body.find("overloaded"), std::string::npos);
  Release();
  ASSERT_TRUE(WaitFor(4));
  EXPECT_EQ(Reply("hold").status, 200);
  EXPECT_EQ(Reply("first").status, 200) << "it waited no manual-clock time";
}

// Admission: with the only search worker held busy, requests wait in lanes by priority up
// to their share of the queue and are shed at once past it (503 overloaded), batch first;
// a shed request's rate-limit charge is given back; one whose deadline would pass in the
// queue is shed too; and the queue drains interactive first, then default, then batch.
TEST(ApiAdmissionTest, RequestsWaitByPriorityAndAreShedPastTheirShareOfTheQueue) {
  FakeBackends fakes;
  MetricsRegistry metrics;
  ApiOptions o;
  o.search_threads = 1;
  o.max_queue = 4;
  o.auth_enabled = true;
  Api api(fakes.Wire(), &metrics, o);
  TenantRecord t;
  t.id = "acme";
  ASSERT_TRUE(fakes.governance.PutTenant(t, RequestContext::Background()).ok());
  const auto key = [&](const std::string& priority, int64_t rpm) {
    KeyRecord k;
    k.tenant = "acme";
    k.role = Role::kWriter;
    k.priority = priority;
    k.limits.rpm = rpm;
    const std::string secret = MakeKey(&k);
    EXPECT_TRUE(fakes.governance.PutKey(k, RequestContext::Background()).ok());
    return secret;
  };
  const std::string interactive = key("interactive", 0), normal = key("", 0), batch = key("batch", 3);
  CollectionConfig c;
  c.embedder = "hash";
  c.dim = 256;
  auto created = fakes.collections.Create("acme", "docs", c, RequestContext::Background());
  ASSERT_TRUE(created.ok());
  auto* docs = dynamic_cast<FakeCollection*>(created->get());
  std::promise<void> entered, release;
  std::shared_future<void> gate = release.get_future().share();
  std::mutex order_mu;
  std::vector<std::string> order;
  docs->on_query = [&](const QueryRequest& q) {
    if (q.text == "hold") {
      entered.set_value();
      gate.wait();
      return;
    }
    std::lock_guard<std::mutex> lock(order_mu);
    order.push_back(q.text);
  };
  std::mutex replies_mu;
  std::vector<std::pair<std::string, int>> replies;  // (text, status) as they come
  const auto query = [&](const std::string& k, const std::string& text, const std::string& timeout_ms = "") {
    HttpRequest req;
    req.method = "POST";
    req.path = "/v1/collections/docs/query";
    req.body = R"({"query":")" + text + R"(","mode":"keyword"})";
    req.headers = {{"Authorization", "Bearer " + k}, {"Content-Type", "application/json"}};
    if (!timeout_ms.empty()) req.headers.emplace_back("X-Request-Timeout-Ms", timeout_ms);
    api.Handle(std::move(req), [&, text](HttpResponse res) {
      std::lock_guard<std::mutex> lock(replies_mu);
      replies.emplace_back(text, res.status);
    });
  };
  const auto wait_for_replies = [&](size_t n) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard<std::mutex> lock(replies_mu);
        if (replies.size() >= n) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  const auto status_of = [&](const std::string& text) {
    std::lock_guard<std::mutex> lock(replies_mu);
    for (const auto& [t, s] : replies) {
      if (t == text) return s;
    }
    return 0;  // no reply yet: it waits in the queue
  };
  query(normal, "hold");
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the held query did not reach the collection: " << (replies.empty() ? 0 : replies[0].second);
  // Batch may have 2 waiting (half of 4), default 3.2, interactive 4; each counts the
  // requests of its own priority and above.
  query(batch, "b1");
  query(batch, "b2");
  query(batch, "b3");
  EXPECT_EQ(status_of("b3"), 503) << "batch past half the queue is shed at once";
  for (const char* text : {"d1", "d2", "d3", "d4", "d5"}) query(normal, text);
  EXPECT_EQ(status_of("d4"), 0) << "3 default ahead of it: under 80% of 4";
  EXPECT_EQ(status_of("d5"), 503);
  for (const char* text : {"i1", "i2", "i3", "i4", "i5"}) query(interactive, text);
  EXPECT_EQ(status_of("i4"), 0);
  EXPECT_EQ(status_of("i5"), 503);
  // Let the held request take long enough to make the pool's service time a few ms.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  release.set_value();
  wait_for_replies(14);
  {
    std::lock_guard<std::mutex> lock(order_mu);
    EXPECT_EQ(order, (std::vector<std::string>{"i1", "i2", "i3", "i4", "d1", "d2", "d3", "d4", "b1", "b2"}))
        << "interactive first, then default, then batch";
  }
  for (const char* text : {"hold", "b1", "b2", "d1", "d4", "i1", "i4"}) EXPECT_EQ(status_of(text), 200) << text;
  // The batch key (3 a minute) sent three: the shed one was given back, so a third passes.
  query(batch, "b6");
  wait_for_replies(15);
  EXPECT_EQ(status_of("b6"), 200) << "the shed request cost its key nothing";
  query(batch, "b7");
  EXPECT_EQ(status_of("b7"), 429);

  // A deadline the queue would outlast is shed at once: hold the worker, queue one ahead.
  std::promise<void> entered2, release2;
  std::shared_future<void> gate2 = release2.get_future().share();
  docs->on_query = [&](const QueryRequest& q) {
    if (q.text == "hold2") {
      entered2.set_value();
      gate2.wait();
    }
  };
  query(normal, "hold2");
  entered2.get_future().wait();
  query(normal, "ahead");
  query(normal, "hurried", "1");
  EXPECT_EQ(status_of("hurried"), 503) << "one request ahead takes longer than its 1 ms";
  release2.set_value();
  wait_for_replies(19);  // every reply in before the API goes
  const std::string rendered = metrics.RenderPrometheus();
  EXPECT_NE(rendered.find("contextd_requests_shed_total{priority=\"batch\"} 1"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("contextd_requests_shed_total{priority=\"default\"} 2"), std::string::npos);
  EXPECT_NE(rendered.find("contextd_requests_shed_total{priority=\"interactive\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

// Memory watermarks: writes that add data stop at the high mark and resume only under 90%
// of it, while reads and deletes go on.
TEST(ApiMemoryTest, WritesThatAddDataStopAtTheHighMarkUntilMemoryFallsUnderNinetyPercent) {
  FakeBackends fakes;
  MetricsRegistry metrics;
  ManualClock clock;
  std::atomic<size_t> rss{500};
  ApiOptions o;
  o.clock = &clock;
  o.memory_high_bytes = 1000;
  o.resident_bytes = [&] { return rss.load(); };
  Api api(fakes.Wire(), &metrics, o);
  CollectionConfig c;
  c.embedder = "hash";
  c.dim = 256;
  ASSERT_TRUE(fakes.collections.Create(kDefaultTenant, "docs", c, RequestContext::Background()).ok());
  std::string body;
  const auto call = [&](const std::string& method, const std::string& path, const std::string& json) {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.body = json;
    req.headers = {{"Content-Type", "application/json"}};
    std::promise<HttpResponse> done;
    api.Handle(std::move(req), [&](HttpResponse res) { done.set_value(std::move(res)); });
    HttpResponse res = done.get_future().get();
    body = res.body;
    return res.status;
  };
  const auto upsert = [&](const std::string& id) {
    return call("POST", "/v1/collections/docs/documents", R"({"documents":[{"id":")" + id + R"(","text":"x"}]})");
  };
  const auto at = [&](size_t bytes) {
    rss = bytes;
    clock.AdvanceMs(20);  // past the 10 ms the reading is kept
  };
  EXPECT_EQ(upsert("a"), 200) << body;
  at(1000);
  EXPECT_EQ(upsert("b"), 503);
  EXPECT_NE(body.find("memory_pressure"), std::string::npos) << body;
  EXPECT_EQ(call("POST", "/v1/collections/docs/query", R"({"query":"x"})"), 200) << "reads go on: " << body;
  EXPECT_EQ(call("DELETE", "/v1/collections/docs/documents/a", ""), 200) << "deletes free memory: " << body;
  EXPECT_EQ(call("POST", "/v1/cache/faq/store", R"({"prompt":"p","response":"r"})"), 503)
      << "a cache entry adds data too, though it runs on the embedding pool";
  at(950);
  EXPECT_EQ(upsert("c"), 503) << "not under 90% yet";
  at(850);
  EXPECT_EQ(upsert("d"), 200) << "under 90%: writes resume (slowed above 80%)";
  EXPECT_NE(call("POST", "/v1/cache/faq/store", R"({"prompt":"p","response":"r"})"), 503) << body;
  at(100);
  EXPECT_EQ(upsert("e"), 200);
  EXPECT_NE(metrics.RenderPrometheus().find("contextd_writes_refused_memory_total 3"), std::string::npos);
}

}  // namespace
}  // namespace contextd
