// End-to-end tests of every endpoint against the real binary over loopback HTTP.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "net/content_encoding.h"
#include "test_util.h"

namespace contextd {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    server_->Start();
    client_ = server_->Client();
  }
  std::pair<int, Json> Do(const std::string& method, const std::string& target, const std::string& body = "") {
    return Call(*client_, method, target, body);
  }
  void Seed() {
    ASSERT_EQ(Do("PUT", "/v1/collections/docs", R"({"embedder":"glove"})").first, 201);
    auto [st, body] = Do("POST", "/v1/collections/docs/documents", R"({"documents":[
      {"id":"pets","text":"Kittens and puppies make wonderful pets for families.","metadata":{"year":2021,"tags":["home"]}},
      {"id":"stocks","text":"Stock markets fell as investors feared rising interest rates.","metadata":{"year":2019}},
      {"id":"a b/c","title":"Astronomy","text":"The telescope observed a distant galaxy.","metadata":{"year":2023}}]})");
    ASSERT_EQ(st, 200) << body.Dump();
    EXPECT_EQ(body.Find("upserted")->as_int(), 3);
    EXPECT_EQ(body.Find("chunks")->as_int(), 3);
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

// Clients shipping big batches compress them: gzip, deflate and zstd bodies decode on the
// handler's pool and behave exactly as plain ones. HEAD answers as GET without the body.
TEST_F(ApiTest, CompressedBodiesAndHead) {
  ASSERT_EQ(Do("PUT", "/v1/collections/docs", R"({"embedder":"glove"})").first, 201);
  const std::string docs = R"({"documents":[
      {"id":"pets","text":"Kittens and puppies make wonderful pets for families."},
      {"id":"stocks","text":"Stock markets fell as investors feared rising interest rates."}]})";
  auto r = client_->Request("POST", "/v1/collections/docs/documents", EncodeBody("gzip", docs),
                            {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(ParseJson(r->body)->Find("upserted")->as_int(), 2);
  r = client_->Request("POST", "/v1/collections/docs/query", EncodeBody("zstd", R"({"query":"puppies","k":1})"),
                       {{"Content-Encoding", "zstd"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(ParseJson(r->body)->Find("results")->as_array()[0].Find("id")->as_string(), "pets");
  r = client_->Request("POST", "/v1/embeddings", ZlibDeflate(R"({"input":"kittens","model":"glove"})", 15),
                       {{"Content-Encoding", "deflate"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  auto head = client_->Request("HEAD", "/v1/collections/docs");
  auto get = client_->Request("GET", "/v1/collections/docs");
  ASSERT_TRUE(head.ok() && get.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->Header("content-length"), std::to_string(get->body.size()));
}

// Replies of 1 KB or more are compressed for a client that asks (zstd first, then gzip);
// short ones and clients that do not ask get plain bodies.
TEST_F(ApiTest, RepliesAreCompressedForClientsThatAsk) {
  Seed();
  auto plain = client_->Request("GET", "/metrics");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->Header("content-encoding"), "");
  ASSERT_GE(plain->body.size(), 1024u);
  for (const char* accept : {"gzip", "gzip, zstd"}) {
    auto r = client_->Request("GET", "/metrics", "", {{"Accept-Encoding", accept}});
    ASSERT_TRUE(r.ok());
    const std::string coding = r->Header("content-encoding");
    EXPECT_EQ(coding, std::string(accept) == "gzip" ? "gzip" : "zstd");
    EXPECT_EQ(r->Header("vary"), "Accept-Encoding");
    EXPECT_LT(r->body.size(), plain->body.size() / 3);
    auto body = DecodeContentEncoding(coding, r->body, 1 << 24);
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    EXPECT_NE(body->find("contextd_http_requests_total"), std::string::npos);
  }
  auto small = client_->Request("GET", "/healthz", "", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->Header("content-encoding"), "");
  EXPECT_EQ(small->body, R"({"status":"ok"})");
}

TEST_F(ApiTest, HealthAndReadiness) {
  EXPECT_EQ(Do("GET", "/healthz").first, 200);
  auto [st, body] = Do("GET", "/readyz");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body.Find("status")->as_string(), "ready");
}

TEST_F(ApiTest, CollectionLifecycle) {
  auto [st, created] = Do("PUT", "/v1/collections/docs",
                          R"({"embedder":"glove","distance":"dot","chunking":{"max_tokens":100,"overlap":10}})");
  ASSERT_EQ(st, 201) << created.Dump();
  EXPECT_EQ(created.Find("model")->as_string(), "glove-6b-100d");
  EXPECT_EQ(created.Find("dim")->as_int(), 100);
  EXPECT_EQ(created.Find("distance")->as_string(), "dot");
  EXPECT_EQ(Do("PUT", "/v1/collections/other", R"({"embedder":"none","dim":4})").first, 201);

  auto [lst, list] = Do("GET", "/v1/collections");
  EXPECT_EQ(lst, 200);
  EXPECT_EQ(list.Find("collections")->as_array().size(), 2u);
  auto [gst, got] = Do("GET", "/v1/collections/docs");
  EXPECT_EQ(gst, 200);
  EXPECT_EQ(got.Find("documents")->as_int(), 0);
  EXPECT_EQ(got.Find("chunking")->Find("max_tokens")->as_int(), 100);

  EXPECT_EQ(Do("DELETE", "/v1/collections/docs").first, 200);
  EXPECT_EQ(Do("GET", "/v1/collections/docs").first, 404);
  EXPECT_EQ(Do("DELETE", "/v1/collections/docs").first, 404);
  EXPECT_EQ(Do("GET", "/v1/collections").second.Find("collections")->as_array().size(), 1u);
}

TEST_F(ApiTest, DocumentsCanBeReadReplacedAndDeleted) {
  Seed();
  auto [st, doc] = Do("GET", "/v1/collections/docs/documents/a%20b%2Fc");
  ASSERT_EQ(st, 200) << doc.Dump();
  EXPECT_EQ(doc.Find("id")->as_string(), "a b/c");
  EXPECT_EQ(doc.Find("title")->as_string(), "Astronomy");
  EXPECT_EQ(doc.Find("metadata")->Find("year")->as_int(), 2023);

  ASSERT_EQ(Do("POST", "/v1/collections/docs/documents",
               R"({"documents":[{"id":"pets","text":"Goldfish live in bowls.","metadata":{"year":2024}}]})")
                .first,
            200);
  EXPECT_EQ(Do("GET", "/v1/collections/docs/documents/pets").second.Find("text")->as_string(),
            "Goldfish live in bowls.");
  EXPECT_EQ(Do("GET", "/v1/collections/docs").second.Find("documents")->as_int(), 3);

  EXPECT_EQ(Do("DELETE", "/v1/collections/docs/documents/stocks").first, 200);
  EXPECT_EQ(Do("GET", "/v1/collections/docs/documents/stocks").first, 404);
  EXPECT_EQ(Do("DELETE", "/v1/collections/docs/documents/stocks").first, 404);
  EXPECT_EQ(Do("GET", "/v1/collections/docs").second.Find("documents")->as_int(), 2);
}

TEST_F(ApiTest, QueryModesFiltersAndResponseShape) {
  Seed();
  auto [st, res] = Do("POST", "/v1/collections/docs/query", R"({"query":"cats and dogs","k":2,"mode":"vector"})");
  ASSERT_EQ(st, 200) << res.Dump();
  const auto& results = res.Find("results")->as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].Find("id")->as_string(), "pets");
  EXPECT_EQ(results[0].Find("chunk")->as_int(), 0);
  EXPECT_EQ(results[0].Find("text")->as_string(), "Kittens and puppies make wonderful pets for families.");
  EXPECT_EQ(results[0].Find("metadata")->Find("year")->as_int(), 2021);
  EXPECT_GE(results[0].Find("score")->as_double(), results[1].Find("score")->as_double());
  EXPECT_TRUE(res.Find("timings")->Find("total_ms")->is_number());
  EXPECT_EQ(res.Find("mode")->as_string(), "vector");
  EXPECT_EQ(res.Find("cache")->as_string(), "miss");
  // The same query again comes from the collection's query cache, with the same results.
  auto repeat = Do("POST", "/v1/collections/docs/query", R"({"query":"cats and dogs","k":2,"mode":"vector"})").second;
  EXPECT_EQ(repeat.Find("cache")->as_string(), "exact");
  EXPECT_EQ(repeat.Find("results")->Dump(), res.Find("results")->Dump());
  auto bypass =
      Do("POST", "/v1/collections/docs/query", R"({"query":"cats and dogs","k":2,"mode":"vector","cache":"bypass"})")
          .second;
  EXPECT_EQ(bypass.Find("cache")->as_string(), "bypass");

  auto kw = Do("POST", "/v1/collections/docs/query", R"({"query":"interest rates","mode":"keyword"})").second;
  ASSERT_EQ(kw.Find("results")->as_array().size(), 1u);
  EXPECT_EQ(kw.Find("results")->as_array()[0].Find("id")->as_string(), "stocks");

  auto hy =
      Do("POST", "/v1/collections/docs/query",
         R"({"query":"galaxy telescope","mode":"hybrid","filter":{"$or":[{"year":{"$gte":2023}},{"tags":"home"}]}})")
          .second;
  const auto& hits = hy.Find("results")->as_array();
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].Find("id")->as_string(), "a b/c");
  EXPECT_EQ(hits[1].Find("id")->as_string(), "pets");
}

TEST_F(ApiTest, VectorCollectionsTakeCallerVectors) {
  ASSERT_EQ(Do("PUT", "/v1/collections/v", R"({"embedder":"none","dim":3,"distance":"cosine"})").first, 201);
  ASSERT_EQ(Do("POST", "/v1/collections/v/documents",
               R"({"documents":[{"id":"x","vector":[1,0,0]},{"id":"y","vector":[0,1,0],"text":"yes"}]})")
                .first,
            200);
  auto res = Do("POST", "/v1/collections/v/query", R"({"vector":[0.1,0.9,0],"k":1})").second;
  EXPECT_EQ(res.Find("results")->as_array()[0].Find("id")->as_string(), "y");
  EXPECT_NEAR(res.Find("results")->as_array()[0].Find("score")->as_double(), 0.9939, 1e-3);
}

TEST_F(ApiTest, MetricsCountRequestsAndDocuments) {
  Seed();
  Do("POST", "/v1/collections/docs/query", R"({"query":"pets"})");
  auto r = client_->Get("/metrics");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->Header("content-type").find("text/plain"), std::string::npos);
  const std::string& m = r->body;
  EXPECT_NE(m.find(R"(contextd_http_requests_total{route="/v1/collections/{name}/query",method="POST",code="2xx"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(contextd_http_request_duration_seconds_count{route="/v1/collections/{name}/documents",method="POST"} 1)"),
      std::string::npos);
  EXPECT_NE(m.find(R"(contextd_collection_documents{tenant="default",collection="docs"} 3)"), std::string::npos);
  EXPECT_NE(m.find(R"(contextd_collection_chunks{tenant="default",collection="docs"} 3)"), std::string::npos);
  EXPECT_NE(m.find("contextd_http_requests_in_flight 1"), std::string::npos);  // the scrape itself
  // Every family declares its type, and every "_total" is a counter (rate() needs one).
  size_t families = 0;
  for (size_t at = m.find("# TYPE "); at != std::string::npos; at = m.find("# TYPE ", at + 1)) {
    const size_t end = m.find('\n', at);
    const std::string line = m.substr(at + 7, end - at - 7);
    const std::string name = line.substr(0, line.find(' ')), type = line.substr(line.find(' ') + 1);
    ++families;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0) {
      EXPECT_EQ(type, "counter") << name;
    }
  }
  EXPECT_GT(families, 20u);
}

// The quantum reaches the search workers from the config file, and the flag overrides it:
// at 1 us every query outlasts the quantum and is followed by a yield; at 0 none is (the
// default, 1 ms, would give none either way, hence 1 us in the file). Seen in /metrics.
TEST(CpuQuantumTest, SearchWorkersYieldAfterTheQuantumAndNotWhenOff) {
  TempDir dir;
  const std::string config = dir.path() + "/quantum.json";
  FILE* f = fopen(config.c_str(), "w");
  fprintf(f, R"({"cpu_quantum_us": 1})");
  fclose(f);
  // The search pool's yields after 20 queries; -1 if /metrics lacks them.
  auto yields_after_queries = [&](const std::string& quantum) -> int64_t {
    std::vector<std::string> args = {"--search-threads", "1", "--config", config};
    if (!quantum.empty()) args.insert(args.end(), {"--cpu-quantum-us", quantum});
    ServerProcess server(dir.path() + "/q" + quantum + "x", args);
    server.Start();
    auto client = server.Client();
    EXPECT_EQ(Call(*client, "PUT", "/v1/collections/c", R"({"embedder":"glove"})").first, 201);
    EXPECT_EQ(Call(*client, "POST", "/v1/collections/c/documents",
                   R"({"documents":[{"id":"a","text":"Kittens and puppies make wonderful pets."}]})")
                  .first,
              200);
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(Call(*client, "POST", "/v1/collections/c/query", R"({"query":"pets","cache":"bypass"})").first, 200);
    }
    const std::string key = "contextd_pool_yields_total{pool=\"search\"} ";
    int64_t yields = -1;
    // The worker yields after its task has sent the reply, so the last query's yield may
    // land just after the client sees the answer: read again until it shows (or 2 s pass).
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto m = client->Get("/metrics");
      if (!m.ok()) break;
      size_t at = m->body.find(key);
      if (at == std::string::npos) break;
      yields = std::stoll(m->body.substr(at + key.size()));
      if (!quantum.empty() || yields >= 20) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return yields;
  };
  EXPECT_EQ(yields_after_queries(""), 20);  // the file's 1 us: one after each query
  EXPECT_EQ(yields_after_queries("0"), 0);  // the flag's 0 wins over the file
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  auto [st, body] = Do("GET", "/v2/nothing");
  EXPECT_EQ(st, 404);
  EXPECT_EQ(body.Find("error")->Find("code")->as_string(), "no_route");
  auto r = client_->Request("PATCH", "/v1/collections/docs");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "PUT, GET, HEAD, DELETE");
}

TEST(FallbackTest, ServerStartsAndSaysSoWithoutGloveVectors) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"--models", dir.path() + "/no-models"});
  server.Start();
  auto client = server.Client();
  auto [st, body] = Call(*client, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})");
  ASSERT_EQ(st, 201);
  EXPECT_EQ(body.Find("model")->as_string(), "hash-256");  // the embedder actually in use
  ASSERT_EQ(Call(*client, "POST", "/v1/collections/docs/documents",
                 R"({"documents":[{"id":"a","text":"solar panels on roofs"},{"id":"b","text":"medieval poetry"}]})")
                .first,
            200);
  auto res = Call(*client, "POST", "/v1/collections/docs/query", R"({"query":"roof solar","mode":"vector"})").second;
  EXPECT_EQ(res.Find("results")->as_array()[0].Find("id")->as_string(), "a");
}

TEST(ConfigTest, ConfigFileSetsLimitsAndFlagsOverrideIt) {
  TempDir dir;
  std::string config = dir.path() + "/contextd.json";
  FILE* f = fopen(config.c_str(), "w");
  fprintf(f, R"({"max_body_bytes": 2000, "port": 1, "write_threads": 2})");
  fclose(f);
  ServerProcess server(dir.path() + "/data", {"--config", config});  // --port 0 beats "port": 1
  server.Start();
  auto client = server.Client();
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/docs", "").first, 201);
  std::string big = R"({"documents":[{"id":"a","text":")" + std::string(3000, 'x') + R"("}]})";
  auto [st, body] = Call(*client, "POST", "/v1/collections/docs/documents", big);
  EXPECT_EQ(st, 413);
}

}  // namespace
}  // namespace contextd
