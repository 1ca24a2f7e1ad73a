// OpenAI and TEI client fidelity of the embedding gateway: the real binary, a Matryoshka
// provider (a real fake HTTP server), and the real npm clients (openai, @langchain/openai)
// driven by tests/js/openai_embeddings.test.mjs.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "common/base64.h"
#include "fake_provider.h"
#include "integration/node_tests.h"
#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr int kDim = 16;

class OpenAiCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.path() + "/config.json";
    std::ofstream(config) << R"({"embedding":{"batch":{"max_wait_us":500},"providers":{"fake":{
        "protocol":"openai","urls":[")"
                          << provider_.url() << R"("],"model":"m","dim":16,"matryoshka":true,
        "health_interval_ms":0}}}})";
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"--config", config});
    server_->Start();
    client_ = server_->Client();
  }
  std::pair<int, Json> Do(const std::string& method, const std::string& target, const std::string& body = "") {
    return Call(*client_, method, target, body);
  }
  std::vector<float> Floats(const Json& embedding) {
    std::vector<float> v;
    for (const Json& x : embedding.as_array()) v.push_back(static_cast<float>(x.as_double()));
    return v;
  }

  TempDir dir_;
  FakeProvider provider_{kDim};
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(OpenAiCompatTest, Base64IsTheFloat32BytesOfTheFloatAnswer) {
  auto [st, f] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":"hello world"})");
  ASSERT_EQ(st, 200) << f.Dump();
  auto [st2, b] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":"hello world","encoding_format":"base64"})");
  ASSERT_EQ(st2, 200) << b.Dump();
  const std::vector<float> want = Floats(*f.Find("data")->as_array()[0].Find("embedding"));
  std::string bytes;
  ASSERT_TRUE(DecodeBase64(b.Find("data")->as_array()[0].Find("embedding")->as_string(), &bytes));
  ASSERT_EQ(bytes.size(), want.size() * sizeof(float));
  std::vector<float> got(want.size());
  std::memcpy(got.data(), bytes.data(), bytes.size());
  EXPECT_EQ(got, want) << "shortest float text reads back exactly";
}

TEST_F(OpenAiCompatTest, DimensionsTruncatesAndRenormalisesOnlyMatryoshkaModels) {
  auto [st, r] = Do("POST", "/v1/embeddings", R"({"model":"provider:fake","input":"abc","dimensions":5})");
  ASSERT_EQ(st, 200) << r.Dump();
  const std::vector<float> got = Floats(*r.Find("data")->as_array()[0].Find("embedding"));
  ASSERT_EQ(got.size(), 5u);
  std::vector<float> want = FakeVector("abc", kDim);
  want.resize(5);
  double n = 0;
  for (float x : want) n += double(x) * x;
  for (size_t d = 0; d < 5; ++d) EXPECT_NEAR(got[d], want[d] / std::sqrt(n), 1e-5);

  auto [gs, g] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":"abc","dimensions":64})");
  EXPECT_EQ(gs, 400);
  EXPECT_EQ(g.Find("error")->Find("code")->as_string(), "unsupported_dimensions");
  EXPECT_NE(g.Find("error")->Find("message")->as_string().find("100 only"), std::string::npos);
  for (const char* bad : {"0", "17", "2.5", "\"8\""}) {
    auto [bs, b] = Do("POST", "/v1/embeddings",
                      std::string(R"({"model":"provider:fake","input":"abc","dimensions":)") + bad + "}");
    EXPECT_EQ(bs, 400) << bad;
    EXPECT_NE(b.Find("error")->Find("message")->as_string().find("from 1 to 16"), std::string::npos) << b.Dump();
  }
}

TEST_F(OpenAiCompatTest, TokenIdInputsDecodeAsCl100k) {
  // "hello world" is [15339, 1917] in cl100k_base.
  auto [st, ids] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":[[15339,1917],[15339]]})");
  ASSERT_EQ(st, 200) << ids.Dump();
  auto [st2, text] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":["hello world","hello"]})");
  ASSERT_EQ(st2, 200);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(Floats(*ids.Find("data")->as_array()[i].Find("embedding")),
              Floats(*text.Find("data")->as_array()[i].Find("embedding")));
  }
  EXPECT_EQ(ids.Find("usage")->Find("prompt_tokens")->as_int(), 3);
  auto [one, single] = Do("POST", "/v1/embeddings", R"({"model":"glove","input":[15339,1917]})");
  ASSERT_EQ(one, 200);
  EXPECT_EQ(single.Find("data")->as_array().size(), 1u);

  struct Case {
    const char* input;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{{"[15339,\"x\"]", "token id"},
                                         {"[-1]", "token id from 0"},
                                         {"[100000000]", "token id from 0"},
                                         {"[[15339],\"hello\"]", "one kind throughout"},
                                         {"[\"hello\",[15339]]", "one kind throughout"},
                                         {"[[]]", "empty list of tokens"},
                                         {"[[1.5]]", "token id"},
                                         {"[[220]]", "nothing to embed"}}) {
    auto [bs, b] = Do("POST", "/v1/embeddings", std::string(R"({"model":"glove","input":)") + c.input + "}");
    EXPECT_EQ(bs, 400) << c.input;
    EXPECT_NE(b.Find("error")->Find("message")->as_string().find(c.says), std::string::npos)
        << c.input << ": " << b.Dump();
  }
  auto [es, e] = Do("POST", "/v1/embeddings", R"({"input":"x","encoding_format":"float16"})");
  EXPECT_EQ(es, 400);
  EXPECT_NE(e.Find("error")->Find("message")->as_string().find("\"base64\""), std::string::npos);
  auto [us, u] = Do("POST", "/v1/embeddings", R"({"input":"x","user":7})");
  EXPECT_EQ(us, 400) << u.Dump();
}

TEST_F(OpenAiCompatTest, ModelsListAndRetrieve) {
  auto [st, list] = Do("GET", "/v1/models");
  ASSERT_EQ(st, 200) << list.Dump();
  EXPECT_EQ(list.Find("object")->as_string(), "list");
  std::vector<std::string> ids;
  for (const Json& m : list.Find("data")->as_array()) {
    EXPECT_EQ(m.Find("object")->as_string(), "model");
    ids.push_back(m.Find("id")->as_string());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"glove", "hash", "provider:fake"}));
  auto [gs, fake] = Do("GET", "/v1/models/provider:fake");
  ASSERT_EQ(gs, 200) << fake.Dump();
  EXPECT_EQ(fake.Find("dimensions")->as_int(), kDim);
  EXPECT_TRUE(fake.Find("truncatable")->as_bool());
  EXPECT_EQ(fake.Find("model")->as_string(), "provider:fake/m");
  auto [ns, missing] = Do("GET", "/v1/models/nope");
  EXPECT_EQ(ns, 404);
  EXPECT_EQ(missing.Find("error")->Find("code")->as_string(), "model_not_found");
}

TEST_F(OpenAiCompatTest, TeiInfoHealthAndTokenize) {
  auto [hs, health] = Do("GET", "/health");
  EXPECT_EQ(hs, 200);
  auto [is, info] = Do("GET", "/info");
  ASSERT_EQ(is, 200) << info.Dump();
  EXPECT_EQ(info.Find("model_id")->as_string(), "provider:fake/m") << "the first provider is the default";
  EXPECT_EQ(info.Find("max_client_batch_size")->as_int(), 2048);

  const std::string text = "Héllo, wörld 42!";
  auto [ts, tok] = Do("POST", "/tokenize", R"({"inputs":["Héllo, wörld 42!","tea"],"add_special_tokens":true})");
  ASSERT_EQ(ts, 200) << tok.Dump();
  ASSERT_EQ(tok.as_array().size(), 2u);
  // The offsets tile the input, and the ids are cl100k's ("tea" is one token: 79739).
  size_t at = 0;
  std::string joined;
  for (const Json& t : tok.as_array()[0].as_array()) {
    EXPECT_EQ(t.Find("start")->as_int(), static_cast<int64_t>(at));
    at = static_cast<size_t>(t.Find("stop")->as_int());
    EXPECT_FALSE(t.Find("special")->as_bool());
  }
  EXPECT_EQ(at, text.size());
  ASSERT_EQ(tok.as_array()[1].as_array().size(), 1u);
  EXPECT_EQ(tok.as_array()[1].as_array()[0].Find("text")->as_string(), "tea");

  auto [es, e] =
      Do("POST", "/embed", R"({"inputs":"tea","truncate":true,"normalize":true,"truncation_direction":"Right"})");
  EXPECT_EQ(es, 200) << e.Dump();
  auto [bs, b] = Do("POST", "/embed", R"({"inputs":"tea","truncation_direction":"Up"})");
  EXPECT_EQ(bs, 400) << b.Dump();
}

// The real npm clients (installed by scripts/setup into tests/js/node_modules) against this
// server; every case is a node:test test, and any failure fails this one with its report.
TEST_F(OpenAiCompatTest, RealOpenAiAndLangChainClients) {
  ExpectNodeTestsPass("openai_embeddings.test.mjs", "CONTEXTD_URL=http://127.0.0.1:" + std::to_string(server_->port()),
                      8, "openai");
}

// contextd's own JS client and its LangChain.js VectorStore and retriever
// (tests/js/contextd_client.test.mjs), with the real @langchain/core.
TEST_F(OpenAiCompatTest, OwnJsClientAndLangChainVectorStore) {
  // --preserve-symlinks: the client is linked in (a file: dependency) and resolves
  // @langchain/core from tests/js.
  ExpectNodeTestsPass("contextd_client.test.mjs", "CONTEXTD_URL=http://127.0.0.1:" + std::to_string(server_->port()), 3,
                      "contextd", "--preserve-symlinks");
}

}  // namespace
}  // namespace contextd
