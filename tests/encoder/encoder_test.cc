// The BERT forward pass against references computed in PyTorch from the BertModel
// equations (scripts/make_encoder_fixtures.py, a random 2-layer hidden-64 BERT stored as
// F16 safetensors with the "bert." prefix): token ids, then mean and CLS pooled embeddings
// within 1e-4 per component in float32, cosine >= 0.99 in int8. Also the loader's errors,
// and real all-MiniLM-L6-v2 weights when CONTEXTD_TEST_MODEL_DIR points at them. The
// element-wise kernels are tested on their own, on every SIMD path: tests/kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "common/json.h"
#include "encoder/encoder_reference.h"
#include "encoder/safetensors.h"
#include "encoder/sentence_encoder.h"

namespace contextd {
namespace {

const std::string kTiny = std::string(CONTEXTD_FIXTURES_DIR) + "/tiny-bert";

std::vector<float> Floats(const Json& j) {
  std::vector<float> out;
  for (const Json& v : j.as_array()) out.push_back(static_cast<float>(v.as_double()));
  return out;
}

TEST(SafetensorsTest, ReadsF16TensorsAndNamesBadShapes) {
  auto f = SafetensorsFile::Open(kTiny + "/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const auto* t = (*f)->Find("bert.embeddings.word_embeddings.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, "F16");
  auto bad = (*f)->ReadFloat("bert.embeddings.word_embeddings.weight", {10, 64});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("config.json implies [10,64]"), std::string::npos);
  EXPECT_FLOAT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_FLOAT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_FLOAT_EQ(HalfToFloat(0x0001), 5.9604645e-08f);  // smallest subnormal
  EXPECT_FLOAT_EQ(Bf16ToFloat(0x3F80), 1.0f);
}

class TinyBertTest : public ::testing::Test {
 protected:
  static void Check(bool int8) {
    SentenceEncoderOptions options;
    options.int8 = int8;
    auto enc = SentenceEncoder::Load(kTiny, options);
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    EXPECT_EQ((*enc)->dim(), 64);
    EXPECT_EQ((*enc)->max_seq_length(), 48u);
    const Json ref = LoadEncoderReference();
    const auto& cases = ref.Find("model")->as_array();
    std::vector<std::string_view> texts;
    for (const Json& c : cases) texts.push_back(c.Find("text")->as_string());
    std::vector<float> out(texts.size() * 64);
    std::vector<std::vector<int32_t>> ids;
    ASSERT_TRUE((*enc)->Encode(texts, /*query=*/false, out.data(), &ids).ok());
    for (size_t i = 0; i < cases.size(); ++i) {
      std::vector<int32_t> want_ids;
      for (const Json& v : cases[i].Find("ids")->as_array()) want_ids.push_back(static_cast<int32_t>(v.as_int()));
      EXPECT_EQ(ids[i], want_ids) << texts[i];
      const auto want = Floats(*cases[i].Find("mean"));
      double dot = 0;
      for (size_t c = 0; c < 64; ++c) {
        if (!int8) {
          EXPECT_NEAR(out[i * 64 + c], want[c], 1e-4) << texts[i] << " component " << c;
        }
        dot += out[i * 64 + c] * want[c];
      }
      EXPECT_GE(dot, int8 ? 0.99 : 0.99999) << texts[i];
    }
  }
};

TEST_F(TinyBertTest, Float32MatchesTheReferenceWithin1e4) { Check(false); }
TEST_F(TinyBertTest, Int8HasCosineAtLeast099ToTheReference) { Check(true); }

// tests/CMakeLists.txt runs this suite again with oneDNN capped to older instruction sets
// (each has its own float and int8 GEMM code); CONTEXTD_EXPECT_GEMM_ISA says what the cap
// must give, so a cap that silently stopped working would fail here.
TEST_F(TinyBertTest, GemmsRunOnTheInstructionSetAsked) {
  const std::string isa = BertEncoder::GemmIsa();
  EXPECT_EQ(isa.rfind("cpu_isa_", 0), 0u) << isa;
  if (const char* want = std::getenv("CONTEXTD_EXPECT_GEMM_ISA")) EXPECT_EQ(isa, want);
}

TEST_F(TinyBertTest, ClsPoolingAndBatchOrderIndependence) {
  const std::string dir = ::testing::TempDir() + "/tiny-cls-" + std::to_string(getpid());  // suites run in parallel
  std::filesystem::remove_all(dir);
  std::filesystem::copy(kTiny, dir, std::filesystem::copy_options::recursive);
  std::ofstream(dir + "/1_Pooling/config.json", std::ios::trunc) << R"({"pooling_mode_cls_token": true})";
  auto enc = SentenceEncoder::Load(dir, {});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ((*enc)->pooling(), Pooling::kCls);
  const Json ref = LoadEncoderReference();
  const auto& cases = ref.Find("model")->as_array();
  // One at a time and all together give the same vectors (packing is exact).
  std::vector<std::string_view> texts;
  for (const Json& c : cases) texts.push_back(c.Find("text")->as_string());
  std::vector<float> together(texts.size() * 64), alone(64);
  ASSERT_TRUE((*enc)->Encode(texts, false, together.data()).ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE((*enc)->Encode({texts[i]}, false, alone.data()).ok());
    const auto want = Floats(*cases[i].Find("cls"));
    for (size_t c = 0; c < 64; ++c) {
      EXPECT_NEAR(together[i * 64 + c], want[c], 1e-4);
      EXPECT_NEAR(alone[c], together[i * 64 + c], 1e-5);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_F(TinyBertTest, QueryAndPassagePrefixesChangeTheTokens) {
  auto enc = SentenceEncoder::Load(kTiny, SentenceEncoderOptions{.query_prefix = "query: ", .passage_prefix = "a "});
  ASSERT_TRUE(enc.ok());
  auto plain = (*enc)->tokenizer().Encode("fox", 48);
  auto q = (*enc)->Tokenize("fox", true);
  auto p = (*enc)->Tokenize("fox", false);
  EXPECT_GE(q.size(), plain.size() + 2);  // "query" (in pieces) ":"
  EXPECT_EQ(p.size(), plain.size() + 1);
  EXPECT_NE(q, p);
  EXPECT_TRUE(std::equal(plain.begin() + 1, plain.end(), q.end() - static_cast<std::ptrdiff_t>(plain.size() - 1)))
      << "the text's own tokens follow the prefix";
}

TEST_F(TinyBertTest, MissingOrInconsistentFilesAreNamed) {
  const std::string dir = ::testing::TempDir() + "/tiny-broken-" + std::to_string(getpid());
  auto fresh = [&] {
    std::filesystem::remove_all(dir);
    std::filesystem::copy(kTiny, dir, std::filesystem::copy_options::recursive);
  };
  auto error = [&] {
    auto enc = SentenceEncoder::Load(dir, {});
    EXPECT_FALSE(enc.ok());
    return enc.ok() ? std::string() : enc.status().message();
  };
  fresh();
  std::filesystem::remove(dir + "/model.safetensors");
  EXPECT_NE(error().find("model.safetensors"), std::string::npos);
  fresh();
  std::filesystem::remove(dir + "/config.json");
  EXPECT_NE(error().find("config.json"), std::string::npos);
  fresh();
  std::filesystem::remove(dir + "/1_Pooling/config.json");  // so the weights' shapes are what disagrees
  std::ofstream(dir + "/config.json", std::ios::trunc)
      << R"({"model_type":"bert","vocab_size":1000,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"max_position_embeddings":64})";
  const std::string wrong_hidden = error();
  EXPECT_NE(wrong_hidden.find("config.json implies [1000,32]"), std::string::npos) << wrong_hidden;
  fresh();
  std::ofstream(dir + "/1_Pooling/config.json", std::ios::trunc) << R"({"word_embedding_dimension": 128})";
  EXPECT_NE(error().find("1_Pooling/config.json"), std::string::npos);
  fresh();
  std::filesystem::remove(dir + "/vocab.txt");
  EXPECT_NE(error().find("vocab.txt"), std::string::npos);
  fresh();
  std::ofstream(dir + "/sentence_bert_config.json", std::ios::trunc) << R"({"max_seq_length": 4096})";
  EXPECT_NE(error().find("sentence_bert_config.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// The real model, when its weights are present: sentence-transformers' values for
// "Hello World".
TEST(MiniLmTest, HelloWorldMatchesSentenceTransformers) {
  const char* dir = std::getenv("CONTEXTD_TEST_MODEL_DIR");
  if (dir == nullptr) GTEST_SKIP() << "CONTEXTD_TEST_MODEL_DIR is not set (all-MiniLM-L6-v2 weights)";
  auto enc = SentenceEncoder::Load(dir, {});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  std::vector<float> out(384);
  ASSERT_TRUE((*enc)->Encode({"Hello World"}, false, out.data()).ok());
  const float want[] = {-0.034477f, 0.031023f, 0.0067349f, 0.026109f, -0.039362f};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(out[i], want[i], 1e-4);
}

}  // namespace
}  // namespace contextd
