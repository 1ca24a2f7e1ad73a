#include "index/bm25_index.h"

#include <cmath>

#include <gtest/gtest.h>

namespace contextd {
namespace {

// Lucene BM25 by hand: idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
// score = idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)).
double Expected(double tf, double df, double n, double dl, double avgdl) {
  double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
  return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl));
}

class Bm25Test : public ::testing::Test {
 protected:
  void SetUp() override {
    index_.Add(0, {"cat", "sat", "mat"});
    index_.Add(1, {"cat", "cat", "chase", "mouse", "garden", "tree"});
    index_.Add(2, {"dog", "bark"});
  }
  Bm25Index index_;
};

TEST_F(Bm25Test, ScoresMatchHandComputedValues) {
  const double avgdl = (3 + 6 + 2) / 3.0;
  auto hits = index_.Search({"cat"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 2u);
  double s0 = Expected(1, 2, 3, 3, avgdl), s1 = Expected(2, 2, 3, 6, avgdl);
  // doc 1 has cat twice but is twice as long
  EXPECT_EQ(hits[0].slot, s1 > s0 ? 1u : 0u);
  for (const auto& h : hits) EXPECT_NEAR(h.score, h.slot == 0 ? s0 : s1, 1e-5);
}

TEST_F(Bm25Test, MultiTermScoresAddUpAndRepeatsCountOnce) {
  const double avgdl = 11 / 3.0;
  auto hits = index_.Search({"dog", "bark", "dog"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 2u);
  EXPECT_NEAR(hits[0].score, 2 * Expected(1, 1, 3, 2, avgdl), 1e-5);
}

TEST_F(Bm25Test, RemoveUpdatesStatistics) {
  index_.Remove(1);
  EXPECT_EQ(index_.doc_count(), 2u);
  auto hits = index_.Search({"cat"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
  EXPECT_NEAR(hits[0].score, Expected(1, 1, 2, 3, 2.5), 1e-5);
  EXPECT_TRUE(index_.Search({"mouse"}, 10, nullptr).empty());
  index_.Add(1, {"mouse"});  // slot reuse
  EXPECT_EQ(index_.Search({"mouse"}, 10, nullptr)[0].slot, 1u);
}

TEST_F(Bm25Test, FilterAndUnknownTerms) {
  EXPECT_TRUE(index_.Search({"unicorn"}, 10, nullptr).empty());
  auto hits = index_.Search({"cat"}, 10, [](uint32_t s) { return s == 0; });
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
}

}  // namespace
}  // namespace contextd
