#include "engine/shards.h"

#include <algorithm>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(RouteShardsTest, OneShardIsAlwaysConfident) {
  RouteDecision d = RouteShards({0.1f}, ShardingOptions{});
  EXPECT_EQ(d.shards, std::vector<uint32_t>({0}));
  EXPECT_TRUE(d.confident);
}

TEST(RouteShardsTest, ClearWinnerAloneAtTheMarginExactly) {
  ShardingOptions o;
  o.clear_margin = 0.5f;
  // Mean 0.5, so the spread is 0.5 and the margin (1 - 0.75) / 0.5 = 0.5 exactly.
  RouteDecision d = RouteShards({0.25f, 1.0f, 0.0f, 0.75f}, o);
  EXPECT_EQ(d.shards, std::vector<uint32_t>({1}));
  EXPECT_TRUE(d.confident);
  EXPECT_FLOAT_EQ(d.margin, 0.5f);
  // The same scores shifted and squeezed (a crowding embedder) route the same way.
  o.clear_margin = 0.45f;  // float rounding of the squeezed scores
  d = RouteShards({0.9025f, 0.94f, 0.89f, 0.9275f}, o);
  EXPECT_EQ(d.shards, std::vector<uint32_t>({1}));
  EXPECT_NEAR(d.margin, 0.5f, 1e-4);
}

TEST(RouteShardsTest, JustBelowTheMarginProbesTheCloseShards) {
  ShardingOptions o;
  o.clear_margin = 0.5f;
  o.probe_margin = 0.6f;
  o.min_probe = 1;
  o.max_probe_fraction = 0.5f;
  // Mean 0.31375, spread 0.48625: the margin is 0.494 spreads, under 0.5. 0.56 and 0.55
  // are 0.49 and 0.51 spreads from the best, 0.4 is 0.82.
  std::vector<float> scores = {0.4f, 0.56f, 0.8f, 0.55f, 0.1f, 0.0f, -0.2f, 0.3f};
  RouteDecision d = RouteShards(scores, o);
  EXPECT_FALSE(d.confident);
  EXPECT_EQ(d.shards, std::vector<uint32_t>({2, 1, 3}));
}

TEST(RouteShardsTest, ProbesAtLeastMinAndAtMostTheFraction) {
  ShardingOptions o;
  o.clear_margin = 10.0f;
  o.probe_margin = 0.0f;  // nobody else is close enough
  o.min_probe = 3;
  std::vector<float> scores = {0.9f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f, -0.1f};
  EXPECT_EQ(RouteShards(scores, o).shards, std::vector<uint32_t>({0, 1, 2}));
  o.probe_margin = 5.0f;  // everybody is close: capped at half of 8
  EXPECT_EQ(RouteShards(scores, o).shards.size(), 4u);
  // Two or three shards: the two best, never a shortcut, whatever the options say.
  o.clear_margin = 0.0f;
  o.max_probe_fraction = 0.1f;
  RouteDecision two = RouteShards({0.9f, 0.1f}, o);
  EXPECT_EQ(two.shards.size(), 2u);
  EXPECT_FALSE(two.confident);
  EXPECT_EQ(RouteShards({0.9f, 0.1f, 0.5f}, o).shards, std::vector<uint32_t>({0, 2}));
}

TEST(RouteShardsTest, TiesGoToTheLowerIndex) {
  ShardingOptions o;
  o.clear_margin = 0.1f;
  o.probe_margin = 0.0f;
  o.min_probe = 1;
  o.max_probe_fraction = 0.25f;
  RouteDecision d = RouteShards({0.3f, 0.7f, 0.7f, 0.1f}, o);
  EXPECT_FALSE(d.confident);  // a tie is never a clear winner
  EXPECT_EQ(d.shards, std::vector<uint32_t>({1, 2}));
}

TEST(RouteShardsTest, EqualScoresProbeTheMinimum) {
  ShardingOptions o;
  o.probe_margin = 0.6f;
  o.min_probe = 2;
  // No spread at all: every shard is equally close; the cap (half) applies.
  EXPECT_EQ(RouteShards(std::vector<float>(8, 0.5f), o).shards.size(), 4u);
}

// n points around each of `centers` (unit-ish), dim 16, in order of center.
std::vector<float> Clusters(const std::vector<size_t>& sizes, size_t dim, std::mt19937* rng) {
  std::normal_distribution<float> g;
  std::vector<float> out;
  for (size_t c = 0; c < sizes.size(); ++c) {
    std::vector<float> center(dim);
    for (auto& x : center) x = g(*rng);
    for (size_t i = 0; i < sizes[c]; ++i)
      for (size_t j = 0; j < dim; ++j) out.push_back(center[j] + 0.15f * g(*rng));
  }
  return out;
}

TEST(BalancedKMeansTest, RecoversSeparatedClusters) {
  std::mt19937 rng(3);
  const size_t dim = 16;
  std::vector<float> v = Clusters({100, 100, 100, 100}, dim, &rng);
  for (Metric m : {Metric::kCosine, Metric::kL2}) {
    KMeansResult r = BalancedKMeans(v.data(), 400, dim, 4, m);
    ASSERT_EQ(r.assignment.size(), 400u);
    ASSERT_EQ(r.centroids.size(), 4 * dim);
    std::set<uint32_t> labels;
    for (size_t c = 0; c < 4; ++c) {
      const uint32_t label = r.assignment[c * 100];
      labels.insert(label);
      for (size_t i = 0; i < 100; ++i) EXPECT_EQ(r.assignment[c * 100 + i], label) << "cluster " << c;
    }
    EXPECT_EQ(labels.size(), 4u);
  }
}

TEST(BalancedKMeansTest, NoClusterPassesItsShare) {
  std::mt19937 rng(4);
  const size_t dim = 16;
  // One dense blob of 300 and one of 100: a plain 2-means would give 300 / 100.
  std::vector<float> v = Clusters({300, 100}, dim, &rng);
  KMeansResult r = BalancedKMeans(v.data(), 400, dim, 2, Metric::kL2, /*slack=*/1.2f);
  size_t ones = std::count(r.assignment.begin(), r.assignment.end(), 1u);
  EXPECT_LE(std::max(ones, 400 - ones), 240u);
  EXPECT_GE(std::min(ones, 400 - ones), 160u);
}

TEST(ClusterMeansTest, CosineMeansAreUnitDirections) {
  // Two rows of different lengths pointing the same way average to that direction.
  std::vector<float> v = {2, 0, 0, 0.5f, 0, 0};
  std::vector<uint32_t> a = {0, 0};
  std::vector<size_t> counts;
  std::vector<float> m = ClusterMeans(v.data(), 2, 3, a.data(), 2, Metric::kCosine, &counts);
  EXPECT_FLOAT_EQ(m[0], 1.0f);
  EXPECT_EQ(counts, std::vector<size_t>({2, 0}));
  EXPECT_FLOAT_EQ(m[3], 0.0f);  // the empty cluster
}

TEST(InitialShardCountTest, GrowsWithTheCollection) {
  ShardingOptions o;
  o.max_shard_chunks = 1000;
  EXPECT_EQ(InitialShardCount(0, o), 1u);
  EXPECT_EQ(InitialShardCount(1000, o), 1u);
  EXPECT_EQ(InitialShardCount(1001, o), 2u);
  EXPECT_EQ(InitialShardCount(7500, o), 10u);
}

}  // namespace
}  // namespace contextd
