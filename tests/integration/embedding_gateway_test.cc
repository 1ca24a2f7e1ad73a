// The embedding service end to end: the real binary with a provider pool of real fake HTTP
// providers (tests/fake_provider.h), the OpenAI and TEI endpoints, their bad input, the
// cache in /metrics, and the keyword fallback when every provider is down.
#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "fake_provider.h"
#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr int kDim = 16;

class EmbeddingGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.path() + "/config.json";
    std::ofstream(config) << R"({"embedding":{"batch":{"max_wait_us":1000},"providers":{"fake":{
        "protocol":"openai","urls":[")"
                          << a_.url() << "\",\"" << b_.url() << R"("],"model":"m","dim":16,
        "health_interval_ms":0,"max_attempts":3,"backoff_base_ms":1,"backoff_max_ms":2,
        "breaker":{"consecutive_failures":2,"cooldown_ms":60000}}}}})";
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"--config", config});
    server_->Start();
    client_ = server_->Client();
  }
  std::pair<int, Json> Do(const std::string& method, const std::string& target, const std::string& body = "") {
    return Call(*client_, method, target, body);
  }

  TempDir dir_;
  FakeProvider a_{kDim}, b_{kDim};
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(EmbeddingGatewayTest, OpenAiShapeWithCachingAcrossRequests) {
  auto [st, body] = Do("POST", "/v1/embeddings", R"({"model":"provider:fake","input":["hello world","second one"]})");
  ASSERT_EQ(st, 200) << body.Dump();
  const auto& data = body.Find("data")->as_array();
  ASSERT_EQ(data.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(data[i].Find("index")->as_int(), static_cast<int64_t>(i));
    const auto& emb = data[i].Find("embedding")->as_array();
    ASSERT_EQ(emb.size(), static_cast<size_t>(kDim));
    auto want = FakeUnitVector(i == 0 ? "hello world" : "second one", kDim);
    for (int d = 0; d < kDim; ++d) EXPECT_NEAR(emb[d].as_double(), want[d], 1e-5);
  }
  EXPECT_EQ(body.Find("model")->as_string(), "provider:fake/m");
  EXPECT_EQ(body.Find("usage")->Find("prompt_tokens")->as_int(), 4);
  const int calls = a_.texts() + b_.texts();
  EXPECT_EQ(calls, 2);
  // Same texts again (one with extra spaces), through TEI's endpoint: all from cache.
  auto [st2, tei] = Do("POST", "/embed", R"({"inputs":["second  one","hello world"]})");
  ASSERT_EQ(st2, 200) << tei.Dump();
  ASSERT_TRUE(tei.is_array());
  EXPECT_NEAR(tei.as_array()[1].as_array()[0].as_double(), data[0].Find("embedding")->as_array()[0].as_double(), 1e-6);
  EXPECT_EQ(a_.texts() + b_.texts(), calls) << "served from the cache";
  auto metrics = server_->Client()->Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(
      metrics->body.find("contextd_embed_cache_requests_total{model=\"provider:fake/m\",tier=\"l1\",result=\"hit\"} 2"),
      std::string::npos);
  EXPECT_NE(metrics->body.find("contextd_embed_provider_breaker_state"), std::string::npos);
  EXPECT_NE(metrics->body.find("contextd_embed_batch_size"), std::string::npos);
  // Counted in cl100k_base tokens (scripts/setup installs the vocabulary): "tiktoken is
  // great!" is 6 tokens (t|ik|token| is| great|!), though only 4 words.
  auto [us, usage] = Do("POST", "/v1/embeddings", R"({"model":"provider:fake","input":"tiktoken is great!"})");
  ASSERT_EQ(us, 200) << usage.Dump();
  EXPECT_EQ(usage.Find("usage")->Find("prompt_tokens")->as_int(), 6);
}

TEST_F(EmbeddingGatewayTest, BadInputGetsAClear400) {
  struct Case {
    const char* body;
    const char* says;
  } cases[] = {
      {R"({"input":[]})", "empty list"},
      {R"({"input":["ok",7]})", "input[1] must be a string"},
      {R"({"input":["ok",""]})", "input[1] must not be empty"},
      {R"({"model":"provider:fake"})", "'input' is required"},
      {R"({"input":"x","model":"nope"})", "unknown embedder 'nope'"},
      {R"({"input":"x","encoding_format":"binary"})", "encoding_format"},
      {R"({"input":{"a":1}})", "must be a string, an array of strings"},
      {R"([1,2])", "JSON object"},
  };
  for (const auto& c : cases) {
    auto [st, body] = Do("POST", "/v1/embeddings", c.body);
    EXPECT_EQ(st, 400) << c.body;
    EXPECT_NE(body.Dump().find(c.says), std::string::npos) << c.body << " -> " << body.Dump();
  }
  std::string many = R"({"input":[)";
  for (int i = 0; i < 2049; ++i) many += std::string(i ? "," : "") + "\"t\"";
  auto [st, body] = Do("POST", "/v1/embeddings", many + "]}");
  EXPECT_EQ(st, 400);
  EXPECT_NE(body.Dump().find("at most 2048"), std::string::npos) << body.Dump();
  EXPECT_EQ(Do("POST", "/embed", R"({"inputs":[]})").first, 400);
  EXPECT_EQ(a_.calls() + b_.calls(), 0) << "nothing reached the provider";
}

TEST_F(EmbeddingGatewayTest, QueriesFallBackToKeywordsWhenEveryProviderIsDown) {
  ASSERT_EQ(Do("PUT", "/v1/collections/docs", R"({"embedder":"provider:fake"})").first, 201);
  auto [st, up] = Do("POST", "/v1/collections/docs/documents", R"({"documents":[
      {"id":"pets","text":"Kittens and puppies make wonderful pets."},
      {"id":"space","text":"The telescope observed a distant galaxy."}]})");
  ASSERT_EQ(st, 200) << up.Dump();
  auto [qs, q] = Do("POST", "/v1/collections/docs/query", R"({"query":"telescope galaxy","mode":"hybrid"})");
  ASSERT_EQ(qs, 200) << q.Dump();
  EXPECT_EQ(q.Find("degraded"), nullptr);

  a_.set_mode(FakeProvider::Mode::kFail);
  b_.set_mode(FakeProvider::Mode::kFail);
  auto [ds, d] = Do("POST", "/v1/collections/docs/query", R"({"query":"kittens puppies","mode":"vector"})");
  ASSERT_EQ(ds, 200) << d.Dump();
  ASSERT_NE(d.Find("degraded"), nullptr);
  EXPECT_TRUE(d.Find("degraded")->as_bool());
  EXPECT_EQ(d.Find("mode")->as_string(), "keyword");
  ASSERT_FALSE(d.Find("results")->as_array().empty());
  EXPECT_EQ(d.Find("results")->as_array()[0].Find("id")->as_string(), "pets");
  // Writes cannot fall back: a clear 503 with Retry-After, and nothing changes.
  auto res = client_->Post("/v1/collections/docs/documents", R"({"documents":[{"id":"new","text":"fresh text"}]})");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(res->Header("Retry-After"), "1");
  EXPECT_EQ(Do("GET", "/v1/collections/docs/documents/new").first, 404);
  // The gateway endpoint says so too.
  EXPECT_EQ(Do("POST", "/v1/embeddings", R"({"input":"never seen"})").first, 503);
}

// Queries on a provider collection wait on the provider from the embed pool, not from the
// search pool: with one search thread, a keyword query on another collection is answered
// while three provider queries are still waiting on a hung provider.
TEST_F(EmbeddingGatewayTest, QueriesWaitingOnAProviderDoNotHoldTheSearchThreads) {
  server_.reset();
  ServerProcess server(dir_.path() + "/data2", {"--config", dir_.path() + "/config.json", "--search-threads", "1"});
  server.Start();
  auto client = server.Client();
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/remote", R"({"embedder":"provider:fake"})").first, 201);
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/local", R"({"embedder":"none","dim":2})").first, 201);
  ASSERT_EQ(Call(*client, "POST", "/v1/collections/local/documents",
                 R"({"documents":[{"id":"a","text":"local words here","vector":[1,0]}]})")
                .first,
            200);
  a_.set_mode(FakeProvider::Mode::kHang);
  b_.set_mode(FakeProvider::Mode::kHang);
  std::atomic<int> remote_done{0};
  std::vector<std::thread> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.emplace_back([&, i] {
      auto c = server.Client();
      (void)Call(*c, "POST", "/v1/collections/remote/query",
                 R"({"mode":"vector","query":"question )" + std::to_string(i) + "\"}");
      ++remote_done;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let them reach the provider
  auto [st, local] = Call(*client, "POST", "/v1/collections/local/query", R"({"query":"words","mode":"keyword"})");
  const int done_when_answered = remote_done.load();
  for (auto& t : waiting) t.join();
  ASSERT_EQ(st, 200) << local.Dump();
  EXPECT_EQ(local.Find("results")->as_array().size(), 1u);
  EXPECT_EQ(done_when_answered, 0) << "the keyword query waited behind the provider queries";
}

// SIGTERM drains: /readyz turns 503 at once, a request already running (here, waiting on a
// provider that takes 600 ms) still gets its answer, and the process then exits cleanly.
TEST_F(EmbeddingGatewayTest, SigtermLetsARunningRequestFinish) {
  server_.reset();
  FakeProvider slow(kDim, /*per_call_us=*/600000);
  const std::string config = dir_.path() + "/slow.json";
  std::ofstream(config) << R"({"embedding":{"providers":{"slow":{"protocol":"openai","urls":[")" << slow.url()
                        << R"("],"model":"m","dim":16,"health_interval_ms":0}}}})";
  ServerProcess server(dir_.path() + "/data4", {"--config", config});
  server.Start();
  auto idle = server.Client();  // a kept-alive connection, idle when the signal comes
  ASSERT_EQ(Call(*idle, "GET", "/readyz").first, 200);
  std::pair<int, Json> answer;
  std::thread caller([&] {
    auto c = server.Client();
    answer = Call(*c, "POST", "/v1/embeddings", R"({"model":"provider:slow","input":"a slow one"})");
  });
  while (slow.calls() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto ready = idle->Request("GET", "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, R"({"status":"draining"})");
  EXPECT_EQ(ready->Header("connection"), "close");
  caller.join();
  ASSERT_EQ(answer.first, 200) << answer.second.Dump();
  EXPECT_EQ(answer.second.Find("data")->as_array().size(), 1u);
  server.Wait();
  ASSERT_TRUE(WIFEXITED(server.exit_status()));
  EXPECT_EQ(WEXITSTATUS(server.exit_status()), 0);
}

// The grace period is a hard bound: a write still waiting on a (very slow) provider when
// SIGTERM's grace runs out gets no success, is not committed, and does not hold the
// process up: it exits long before the provider would have answered.
TEST_F(EmbeddingGatewayTest, ShutdownGraceIsAHardBoundAndALateWriteCommitsNothing) {
  server_.reset();
  constexpr int64_t kProviderMs = 20000;
  FakeProvider stuck(kDim, /*per_call_us=*/kProviderMs * 1000);
  const std::string config = dir_.path() + "/stuck.json";
  std::ofstream(config) << R"({"embedding":{"providers":{"stuck":{"protocol":"openai","urls":[")" << stuck.url()
                        << R"("],"model":"m","dim":16,"health_interval_ms":0,"max_attempts":1,
                          "attempt_timeout_ms":60000,"request_timeout_ms":60000}}}})";
  auto server = std::make_unique<ServerProcess>(
      dir_.path() + "/data5", std::vector<std::string>{"--config", config, "--shutdown-grace-ms", "300"});
  server->Start();
  auto c = server->Client();
  ASSERT_EQ(Call(*c, "PUT", "/v1/collections/docs", R"({"embedder":"provider:stuck"})").first, 201);
  std::atomic<int> status{-1};
  std::thread writer([&] {
    auto w = server->Client();
    w->set_timeout_ms(60000);
    auto r = w->Request("POST", "/v1/collections/docs/documents", R"({"documents":[{"id":"late","text":"stuck"}]})");
    status = r.ok() ? r->status : 0;
  });
  while (stuck.calls() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto signalled = std::chrono::steady_clock::now();
  server->Signal(SIGTERM);
  server->Wait();
  const auto exited_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - signalled).count();
  EXPECT_LT(exited_after, kProviderMs / 2) << "the process waited for the provider";
  ASSERT_TRUE(WIFEXITED(server->exit_status()));
  EXPECT_EQ(WEXITSTATUS(server->exit_status()), 0);
  writer.join();
  EXPECT_NE(status.load(), 200) << "a write the server could not finish must not look acknowledged";
  // Started again (without the stuck provider's help): the write was not committed.
  server = std::make_unique<ServerProcess>(dir_.path() + "/data5", std::vector<std::string>{"--config", config});
  server->Start();
  c = server->Client();
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/docs/documents/late").first, 404);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/docs").second.Find("documents")->as_int(), 0);
}

// A full embedding queue pushes back through HTTP: 429 with Retry-After and a message
// naming the queue, while the calls it admitted still complete.
TEST_F(EmbeddingGatewayTest, AFullQueueAnswers429WithRetryAfter) {
  server_.reset();
  FakeProvider slow(kDim, /*per_call_us=*/400000);
  const std::string config = dir_.path() + "/small_queue.json";
  std::ofstream(config) << R"({"embedding":{"batch":{"max_wait_us":0,"max_queue":2,"workers":1},
      "providers":{"slow":{"protocol":"openai","urls":[")"
                        << slow.url() << R"("],"model":"m","dim":16,"health_interval_ms":0}}}})";
  ServerProcess server(dir_.path() + "/data3", {"--config", config});
  server.Start();
  std::vector<int> status(4);
  std::vector<std::string> retry_after(4), body(4);
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * i));  // arrive in order
      auto res = server.Client()->Post("/v1/embeddings", R"({"model":"provider:slow","input":["t)" + std::to_string(i) +
                                                             R"(a","t)" + std::to_string(i) + R"(b"]})");
      ASSERT_TRUE(res.ok());
      status[i] = res->status;
      retry_after[i] = res->Header("Retry-After");
      body[i] = res->body;
    });
  }
  for (auto& t : callers) t.join();
  // One worker busy with call 0 for 400 ms, call 1 waits in the queue (2 texts = full):
  // calls 2 and 3 are turned away.
  EXPECT_EQ(status[0], 200) << body[0];
  int rejected = 0;
  for (int i = 1; i < 4; ++i) {
    if (status[i] == 200) continue;
    ++rejected;
    EXPECT_EQ(status[i], 429) << body[i];
    EXPECT_EQ(retry_after[i], "1");
    EXPECT_NE(body[i].find("queue"), std::string::npos) << body[i];
  }
  EXPECT_GE(rejected, 1);
  EXPECT_EQ(slow.texts(), 2 * (4 - rejected)) << "every admitted call was embedded, no rejected one was";
}

}  // namespace
}  // namespace contextd
