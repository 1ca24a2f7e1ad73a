// Native models end to end: a collection with "embedder":"native:<dir>" (the tiny BERT
// fixture) ingests and answers vector queries through HTTP, the vectors equal the
// encoder's own (so the server really ran the model), it survives a restart (the model is
// loaded again from the collection's model id), and `contextd embed` prints ids and
// embeddings.
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "encoder/sentence_encoder.h"
#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

const std::string kTiny = std::string(CONTEXTD_FIXTURES_DIR) + "/tiny-bert";

TEST(NativeEmbedderTest, CollectionWithANativeModelSearchesAndSurvivesRestart) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  auto server = std::make_unique<ServerProcess>(data);
  server->Start();
  auto client = server->Client();
  auto [cs, created] = Call(*client, "PUT", "/v1/collections/docs", R"({"embedder":"native:)" + kTiny + R"("})");
  ASSERT_EQ(cs, 201) << created.Dump();
  EXPECT_EQ(created.Find("dim")->as_int(), 64);
  auto [us, up] = Call(*client, "POST", "/v1/collections/docs/documents", R"({"documents":[
      {"id":"fox","text":"the quick brown fox jumps over the lazy dog"},
      {"id":"num","text":"numbers like 42 and 7"},
      {"id":"hi","text":"Hello World"}]})");
  ASSERT_EQ(us, 200) << up.Dump();
  auto query = [&](HttpClient& c) {
    auto [qs, q] = Call(c, "POST", "/v1/collections/docs/query", R"({"query":"hello world","mode":"vector","k":3})");
    EXPECT_EQ(qs, 200) << q.Dump();
    return q;
  };
  Json q = query(*client);
  ASSERT_EQ(q.Find("results")->as_array().size(), 3u);
  EXPECT_EQ(q.Find("results")->as_array()[0].Find("id")->as_string(), "hi");
  // The score is the cosine of the two texts' embeddings as the encoder computes them.
  auto enc = SentenceEncoder::Load(kTiny, {});
  ASSERT_TRUE(enc.ok());
  std::vector<float> v(128);
  ASSERT_TRUE((*enc)->Encode({"hello world", "Hello World"}, false, v.data()).ok());
  double cos = 0;
  for (int c = 0; c < 64; ++c) cos += v[c] * v[64 + c];
  EXPECT_NEAR(q.Find("results")->as_array()[0].Find("score")->as_double(), cos, 1e-4);
  const double first_score = q.Find("results")->as_array()[0].Find("score")->as_double();

  server.reset();  // SIGKILL
  server = std::make_unique<ServerProcess>(data);
  server->Start();
  auto again = server->Client();
  Json q2 = query(*again);
  ASSERT_EQ(q2.Find("results")->as_array().size(), 3u);
  EXPECT_NEAR(q2.Find("results")->as_array()[0].Find("score")->as_double(), first_score, 1e-6);
}

TEST(NativeEmbedderTest, UnknownModelIsAClear400) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  auto client = server.Client();
  auto [st, body] = Call(*client, "PUT", "/v1/collections/x", R"({"embedder":"native:nobody/nothing"})");
  EXPECT_EQ(st, 400) << body.Dump();
  EXPECT_NE(body.Dump().find("contextd model pull nobody/nothing"), std::string::npos) << body.Dump();
  EXPECT_EQ(Call(*client, "GET", "/v1/collections/x").first, 404);
}

TEST(NativeEmbedderTest, EmbedCommandPrintsIdsAndUnitVectors) {
  const std::string cmd = std::string(CONTEXTD_BINARY) + " embed --model " + kTiny + " 'Hello World' short";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ASSERT_EQ(pclose(p), 0);
  std::vector<Json> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    auto j = ParseJson(out.substr(start, nl - start));
    ASSERT_TRUE(j.ok());
    lines.push_back(*j);
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].Find("text")->as_string(), "Hello World");
  EXPECT_EQ(lines[1].Find("ids")->Dump(), "[2,554,3]");
  for (const Json& l : lines) {
    double norm = 0;
    for (const Json& x : l.Find("embedding")->as_array()) norm += x.as_double() * x.as_double();
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_EQ(l.Find("embedding")->as_array().size(), 64u);
  }
}

}  // namespace
}  // namespace contextd
