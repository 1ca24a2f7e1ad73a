// The replicated shard layout: splits, where a vector goes, the stored form, and the
// machine-independent nearest-centroid choice placement rests on.
#include "engine/shard_layout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/mutation.h"

namespace contextd {
namespace {

std::vector<float> RandomVectors(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n * dim);
  for (auto& x : v) x = g(rng);
  return v;
}

TEST(NearestCentroidExactTest, IsTheBestScoreComputedPlainly) {
  const size_t dim = 37, n = 9;
  const std::vector<float> centroids = RandomVectors(n, dim, 1), vectors = RandomVectors(500, dim, 2);
  for (Metric metric : {Metric::kDot, Metric::kL2, Metric::kCosine}) {
    for (size_t i = 0; i < 500; ++i) {
      const float* v = &vectors[i * dim];
      double best = -INFINITY;
      uint32_t want = 0;
      for (uint32_t c = 0; c < n; ++c) {
        double s = 0;
        for (size_t d = 0; d < dim; ++d) {
          const double a = v[d], b = centroids[c * dim + d];
          s += metric == Metric::kL2 ? -(a - b) * (a - b) : a * b;
        }
        if (s > best) best = s, want = c;
      }
      ASSERT_EQ(NearestCentroidExact(metric, v, centroids.data(), n, dim), want) << "row " << i;
    }
  }
}

TEST(NearestCentroidExactTest, TiesGoToTheFirstAndOneCentroidNeedsNoWork) {
  const std::vector<float> same = {1, 0, 1, 0, 0, 1};
  const float v[2] = {1, 0};
  EXPECT_EQ(NearestCentroidExact(Metric::kDot, v, same.data(), 3, 2), 0u);
  EXPECT_EQ(NearestCentroidExact(Metric::kL2, v, same.data() + 2, 2, 2), 0u);
  EXPECT_EQ(NearestCentroidExact(Metric::kCosine, v, same.data() + 4, 1, 2), 0u);
}

// A cosine chunk is placed from its raw vector when written and loaded, and from its
// graph's normalised copy when a split is built: both must land alike, bit for bit.
TEST(NearestCentroidExactTest, CosinePlacesARawVectorAndItsNormalisedCopyAlike) {
  const size_t dim = 64, n = 16;
  const std::vector<float> centroids = RandomVectors(n, dim, 3);
  std::vector<float> vectors = RandomVectors(2000, dim, 4);
  for (size_t i = 0; i < 2000; ++i) {
    float* v = &vectors[i * dim];
    for (size_t d = 0; d < dim; ++d) v[d] *= 1 + static_cast<float>(i % 50);  // all sorts of norms
    std::vector<float> unit(v, v + dim);
    NormalizeInPlace(unit.data(), dim);
    ASSERT_EQ(NearestCentroidExact(Metric::kCosine, v, centroids.data(), n, dim),
              NearestCentroidExact(Metric::kCosine, unit.data(), centroids.data(), n, dim))
        << "row " << i;
  }
}

TEST(ShardLayoutTest, SplitsNumberTheirChildrenInOrderAndOnlyLeavesSplit) {
  ShardLayout layout(Metric::kL2, 2);
  EXPECT_EQ(layout.leaves(), std::vector<uint32_t>{0});
  std::vector<uint32_t> ids;
  ASSERT_TRUE(*layout.Split(0, {-10, 0, 10, 0}, &ids));
  EXPECT_EQ(ids, (std::vector<uint32_t>{1, 2}));
  ASSERT_TRUE(*layout.Split(2, {10, -10, 10, 0, 10, 10}, &ids));
  EXPECT_EQ(ids, (std::vector<uint32_t>{3, 4, 5}));
  EXPECT_EQ(layout.leaves(), (std::vector<uint32_t>{1, 3, 4, 5}));
  EXPECT_EQ(layout.parent(4), 2u);
  EXPECT_EQ(layout.splits(), 2u);
  // The same split proposed again (by another node, say) changes nothing.
  auto again = layout.Split(2, {10, -10, 10, 10});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(layout.shard_count(), 6u);
  // Where points go: down the tree, nearest child at each step.
  const float west[2] = {-3, 50}, north_east[2] = {9, 8}, east[2] = {7, 1};
  EXPECT_EQ(layout.Leaf(west), 1u);
  EXPECT_EQ(layout.Leaf(north_east), 5u);
  EXPECT_EQ(layout.Leaf(east), 4u);
  EXPECT_EQ(layout.Step(0, east), 2u);
  EXPECT_EQ(layout.Step(1, east), 1u) << "a leaf is its own step";
}

TEST(ShardLayoutTest, BadSplitsAreRefusedAndChangeNothing) {
  ShardLayout layout(Metric::kCosine, 2);
  for (const std::vector<float>& bad : {std::vector<float>{1, 0}, std::vector<float>{1, 0, 1},
                                        std::vector<float>{1, 0, NAN, 1}, std::vector<float>{}}) {
    auto st = layout.Split(0, bad);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.status().reason(), "invalid_mutation");
  }
  EXPECT_FALSE(layout.Split(7, {1, 0, 0, 1}).ok()) << "no shard 7";
  std::vector<float> too_many(2 * (ShardLayout::kMaxSplitWays + 1), 1.0f);
  EXPECT_FALSE(layout.Split(0, too_many).ok());
  EXPECT_EQ(layout.shard_count(), 1u);
}

TEST(ShardLayoutTest, RoundTripsThroughItsStoredFormAndRefusesCorruption) {
  const size_t dim = 8;
  ShardLayout layout(Metric::kCosine, dim);
  ASSERT_TRUE(*layout.Split(0, RandomVectors(3, dim, 5)));
  ASSERT_TRUE(*layout.Split(2, RandomVectors(2, dim, 6)));
  ASSERT_TRUE(*layout.Split(4, RandomVectors(4, dim, 7)));
  const std::string bytes = layout.Encode();
  auto back = ShardLayout::Decode(bytes, Metric::kCosine, dim);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Encode(), bytes);
  EXPECT_EQ(back->leaves(), layout.leaves());
  const std::vector<float> points = RandomVectors(300, dim, 8);
  for (size_t i = 0; i < 300; ++i) EXPECT_EQ(back->Leaf(&points[i * dim]), layout.Leaf(&points[i * dim]));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto cut = ShardLayout::Decode(bytes.substr(0, n), Metric::kCosine, dim);
    ASSERT_FALSE(cut.ok()) << "a prefix of " << n << " bytes decoded";
  }
  EXPECT_FALSE(ShardLayout::Decode(bytes + "x", Metric::kCosine, dim).ok());
  EXPECT_FALSE(ShardLayout::Decode(bytes, Metric::kCosine, dim + 1).ok()) << "another dimension";
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    (void)ShardLayout::Decode(flipped, Metric::kCosine, dim);  // never crashes
  }
}

// A chunk's shard depends only on its vector and the splits, not on when it was written:
// a chunk written before a split and carried down by it lands where one written after lands.
TEST(ShardLayoutTest, AChunksShardDependsOnlyOnItsVectorAndTheSplits) {
  const size_t dim = 6;
  ShardLayout layout(Metric::kL2, dim);
  const std::vector<float> points = RandomVectors(400, dim, 9);
  std::vector<uint32_t> before(400);
  for (size_t i = 0; i < 400; ++i) before[i] = layout.Leaf(&points[i * dim]);
  ASSERT_TRUE(*layout.Split(0, RandomVectors(2, dim, 10)));
  // Carried down one step, as a split's build moves its members.
  for (size_t i = 0; i < 400; ++i) before[i] = layout.Step(before[i], &points[i * dim]);
  ASSERT_TRUE(*layout.Split(1, RandomVectors(3, dim, 11)));
  for (size_t i = 0; i < 400; ++i) before[i] = layout.Step(before[i], &points[i * dim]);
  for (size_t i = 0; i < 400; ++i) EXPECT_EQ(before[i], layout.Leaf(&points[i * dim])) << "row " << i;
}

TEST(ShardLayoutTest, ASplitMutationRoundTripsThroughTheLogsWireForm) {
  Mutation m = NewMutation(MutationKind::kSplitShard, "acme");
  m.collection = "docs";
  m.collection_id = 9;
  m.shard = 4;
  m.dim = 3;
  m.vectors = {1, 2, 3, 4, 5, 6};
  const std::string bytes = EncodeMutation(m);
  auto back = DecodeMutation(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kind, MutationKind::kSplitShard);
  EXPECT_EQ(back->shard, 4u);
  EXPECT_EQ(back->dim, 3u);
  EXPECT_EQ(back->vectors, m.vectors);
  EXPECT_EQ(MutationKindName(back->kind), "split_shard");
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeMutation(bytes.substr(0, n)).ok()) << n;
  m.vectors.push_back(7);  // not whole vectors
  EXPECT_FALSE(DecodeMutation(EncodeMutation(m)).ok());
}

TEST(ShardLayoutTest, AnUnsplittableMarkRoundTripsThroughTheLogsWireForm) {
  Mutation m = NewMutation(MutationKind::kShardUnsplittable, "acme");
  m.collection = "docs";
  m.collection_id = 9;
  m.shard = 300;
  const std::string bytes = EncodeMutation(m);
  auto back = DecodeMutation(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kind, MutationKind::kShardUnsplittable);
  EXPECT_EQ(back->shard, 300u);
  EXPECT_EQ(back->collection_id, 9u);
  EXPECT_EQ(MutationKindName(back->kind), "shard_unsplittable");
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeMutation(bytes.substr(0, n)).ok()) << n;
  EXPECT_FALSE(DecodeMutation(bytes + "x").ok()) << "trailing bytes";
  std::string unknown = bytes;
  unknown[2] = static_cast<char>(17);  // a kind after it
  EXPECT_FALSE(DecodeMutation(unknown).ok());
}

}  // namespace
}  // namespace contextd
