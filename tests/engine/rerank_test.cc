// Fusion and diversity orderings, with scores worked out by hand.
#include <gtest/gtest.h>

#include "engine/rerank.h"

namespace contextd {
namespace {

std::vector<uint32_t> Slots(const std::vector<ScoredSlot>& v) {
  std::vector<uint32_t> out;
  for (const auto& s : v) out.push_back(s.slot);
  return out;
}

TEST(RerankTest, RrfSumsReciprocalRanks) {
  // Vector: 1 2 3; keyword: 3 4 1. RRF (k=60): 1 = 1/61 + 1/63, 3 = 1/63 + 1/61 (tie with
  // 1, broken by slot), 2 = 1/62, 4 = 1/62.
  auto fused = FuseRrf({{{0.9f, 1}, {0.8f, 2}, {0.7f, 3}}, {{9, 3}, {8, 4}, {7, 1}}}, 10);
  EXPECT_EQ(Slots(fused), (std::vector<uint32_t>{1, 3, 2, 4}));
  EXPECT_NEAR(fused[0].score, 1.0 / 61 + 1.0 / 63, 1e-7);
  EXPECT_NEAR(fused[2].score, 1.0 / 62, 1e-7);
  EXPECT_EQ(FuseRrf({{{1, 5}, {1, 6}}}, 1).size(), 1u);
}

TEST(RerankTest, WeightedFusionNormalisesEachList) {
  // Vector scores 0.9 / 0.8 / 0.5 normalise to 1 / 0.75 / 0; keyword 12 / 2 to 1 / 0.
  const std::vector<ScoredSlot> vec = {{0.9f, 1}, {0.8f, 2}, {0.5f, 3}};
  const std::vector<ScoredSlot> kw = {{12, 3}, {2, 2}};
  // alpha 0.5: 1 -> 0.5, 2 -> 0.375, 3 -> 0.5 (tie, slot order).
  auto half = FuseWeighted(vec, kw, 0.5f, 10);
  EXPECT_EQ(Slots(half), (std::vector<uint32_t>{1, 3, 2}));
  EXPECT_NEAR(half[2].score, 0.375, 1e-6);
  // alpha 0.2 favours keywords: 3 -> 0.8, 1 -> 0.2, 2 -> 0.15.
  EXPECT_EQ(Slots(FuseWeighted(vec, kw, 0.2f, 10)), (std::vector<uint32_t>{3, 1, 2}));
  // alpha 1: vector order only.
  EXPECT_EQ(Slots(FuseWeighted(vec, kw, 1.0f, 2)), (std::vector<uint32_t>{1, 2}));
}

// The default fusion weighs each list by how sure it is: a list whose scores barely differ
// has little say, whichever side it is on.
TEST(RerankTest, AutoFusionFollowsTheSharperList) {
  EXPECT_EQ(ListConfidence({}), 0.0f);
  EXPECT_EQ(ListConfidence({{3, 1}}), 0.0f);
  EXPECT_EQ(ListConfidence({{0.5f, 1}, {0.5f, 2}}), 0.0f);
  EXPECT_NEAR(ListConfidence({{3, 1}, {1, 2}}), 0.5, 1e-6);  // sd 1, mean 2
  // Flat vectors (GloVe-like cosines), sharp keywords: the keyword order, the vectors only
  // breaking ties and filling in below.
  const std::vector<ScoredSlot> flat_vec = {{0.88f, 1}, {0.87f, 2}, {0.86f, 3}};
  const std::vector<ScoredSlot> sharp_kw = {{12, 3}, {7, 2}, {1, 4}};
  float alpha = -1;
  auto fused = FuseAuto(flat_vec, sharp_kw, 10, &alpha);
  EXPECT_LT(alpha, 0.05f);
  EXPECT_EQ(Slots(fused), (std::vector<uint32_t>{3, 2, 4, 1}));
  // Sharp vectors, flat keywords: the vector order.
  const std::vector<ScoredSlot> sharp_vec = {{0.95f, 5}, {0.3f, 6}, {0.2f, 7}};
  const std::vector<ScoredSlot> flat_kw = {{2.1f, 6}, {2.0f, 7}, {2.0f, 8}};
  fused = FuseAuto(sharp_vec, flat_kw, 2, &alpha);
  EXPECT_GT(alpha, 0.9f);
  EXPECT_EQ(Slots(fused), (std::vector<uint32_t>{5, 6}));
  // One list empty: the other alone, in its order.
  EXPECT_EQ(Slots(FuseAuto({}, sharp_kw, 10, &alpha)), (std::vector<uint32_t>{3, 2, 4}));
  EXPECT_EQ(alpha, 0.0f);
  EXPECT_EQ(Slots(FuseAuto(sharp_vec, {}, 10, &alpha)), (std::vector<uint32_t>{5, 6, 7}));
  EXPECT_EQ(alpha, 1.0f);
}

TEST(RerankTest, MmrSkipsNearDuplicates) {
  // Slots 1 and 2 are the same direction (copies of one paragraph), 3 is orthogonal.
  const std::vector<ScoredSlot> candidates = {{1.0f, 1}, {0.95f, 2}, {0.6f, 3}};
  const float vecs[] = {1, 0, 1, 0, 0, 1};
  // lambda 1: relevance only.
  EXPECT_EQ(Slots(Mmr(candidates, vecs, 2, 1.0f, 3)), (std::vector<uint32_t>{1, 2, 3}));
  // lambda 0.7: after 1, slot 2 scores 0.7 * 0.875 - 0.3 * 1 = 0.3125, slot 3 scores
  // 0.7 * 0 - 0.3 * 0 = 0: still 2. At lambda 0.5: 0.4375 - 0.5 = -0.0625 < 0: 3 first.
  EXPECT_EQ(Slots(Mmr(candidates, vecs, 2, 0.7f, 2)), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Slots(Mmr(candidates, vecs, 2, 0.5f, 2)), (std::vector<uint32_t>{1, 3}));
  // Original scores are kept.
  EXPECT_FLOAT_EQ(Mmr(candidates, vecs, 2, 0.5f, 2)[1].score, 0.6f);
  EXPECT_TRUE(Mmr({}, vecs, 2, 0.5f, 2).empty());
}

}  // namespace
}  // namespace contextd
