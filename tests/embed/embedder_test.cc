#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "embed/embedder_registry.h"
#include "embed/glove_embedder.h"
#include "embed/hash_embedder.h"

namespace contextd {
namespace {

float Cos(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<float> EmbedOne(const Embedder& e, const std::string& text) {
  std::vector<float> v(e.dim());
  EXPECT_TRUE(e.Embed({text}, v.data()).ok());
  return v;
}

class GloveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = GloveEmbedder::Open(EmbedderRegistry::GlovePath(CONTEXTD_MODELS_DIR));
    ASSERT_TRUE(g.ok()) << "run scripts/setup to install the GloVe vectors: " << g.status().ToString();
    glove_ = std::move(g).value();
  }
  std::unique_ptr<GloveEmbedder> glove_;
};

TEST_F(GloveTest, LoadsTheWholeVocabulary) {
  EXPECT_EQ(glove_->dim(), 100);
  EXPECT_GT(glove_->vocab_size(), 300000u);
}

TEST_F(GloveTest, VectorsAreUnitLength) {
  auto v = EmbedOne(*glove_, "The quick brown fox");
  EXPECT_NEAR(Cos(v, v), 1.0f, 1e-4);
}

TEST_F(GloveTest, RelatedTextsAreCloserThanUnrelatedOnes) {
  auto cat = EmbedOne(*glove_, "a kitten sleeping on the sofa");
  auto dog = EmbedOne(*glove_, "a puppy napping on the couch");
  auto money = EmbedOne(*glove_, "quarterly earnings and stock market volatility");
  EXPECT_GT(Cos(cat, dog), Cos(cat, money) + 0.2f);
}

TEST_F(GloveTest, CaseDoesNotMatter) {
  EXPECT_NEAR(Cos(EmbedOne(*glove_, "Paris France"), EmbedOne(*glove_, "paris FRANCE")), 1.0f, 1e-5);
}

TEST_F(GloveTest, UnknownWordsGiveAZeroVector) {
  auto v = EmbedOne(*glove_, "qzxqzxqzx vvbnvvbn");
  for (float x : v) EXPECT_EQ(x, 0.0f);
}

TEST_F(GloveTest, BatchEqualsOneByOne) {
  std::vector<std::string_view> texts = {"alpha beta", "gamma delta", "epsilon"};
  std::vector<float> batch(3 * 100);
  ASSERT_TRUE(glove_->Embed(texts, batch.data()).ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto one = EmbedOne(*glove_, std::string(texts[i]));
    for (int j = 0; j < 100; ++j) EXPECT_EQ(batch[i * 100 + j], one[j]);
  }
}

TEST(GloveOpenTest, MissingOrCorruptFilesAreErrors) {
  EXPECT_EQ(GloveEmbedder::Open("/nonexistent/glove.bin").status().code(), StatusCode::kNotFound);
  std::string path = testing::TempDir() + "/bad_glove.bin";
  FILE* f = fopen(path.c_str(), "wb");
  std::string junk(200, 'x');
  fwrite(junk.data(), 1, junk.size(), f);
  fclose(f);
  EXPECT_EQ(GloveEmbedder::Open(path).status().code(), StatusCode::kFailedPrecondition);
}

TEST(HashEmbedderTest, SharedWordsMeanHigherSimilarity) {
  HashEmbedder h(256);
  auto a = EmbedOne(h, "solar panels on the roof");
  auto b = EmbedOne(h, "roof with solar panels");
  auto c = EmbedOne(h, "medieval poetry anthology");
  EXPECT_NEAR(Cos(a, a), 1.0f, 1e-5);
  EXPECT_GT(Cos(a, b), 0.5f);
  EXPECT_LT(std::fabs(Cos(a, c)), 0.3f);
}

TEST(EmbedderRegistryTest, FallsBackToHashingWithoutVectors) {
  EmbedderRegistry r("/nonexistent-models");
  auto g = r.Resolve("glove");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->model(), "hash-256");  // reported honestly
  EXPECT_EQ(r.ByModel("glove-6b-100d"), nullptr);
  EXPECT_FALSE(r.Resolve("bert").ok());
}

TEST(EmbedderRegistryTest, ResolvesGloveWhenInstalled) {
  EmbedderRegistry r(CONTEXTD_MODELS_DIR);
  auto g = r.Resolve("glove");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->model(), "glove-6b-100d");
  EXPECT_NE(r.ByModel("glove-6b-100d"), nullptr);
}

}  // namespace
}  // namespace contextd
