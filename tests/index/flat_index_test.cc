#include "index/flat_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(DistanceTest, NormalisingTwiceEqualsNormalisingOnce) {
  // Replicas depend on it: a shard split re-adds vectors a graph has normalised already.
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (size_t dim : {8, 100, 384}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> v(dim);
      for (auto& x : v) x = g(rng) * 3;
      NormalizeInPlace(v.data(), dim);
      std::vector<float> again = v;
      NormalizeInPlace(again.data(), dim);
      ASSERT_EQ(std::memcmp(v.data(), again.data(), dim * sizeof(float)), 0) << "dim " << dim;
      double n = 0;
      for (float x : v) n += static_cast<double>(x) * x;
      EXPECT_NEAR(n, 1.0, 1e-5);
    }
  }
}

TEST(FlatIndexTest, FindsExactNearestNeighbours) {
  const int dim = 16;
  std::mt19937 rng(1);
  std::normal_distribution<float> n;
  FlatIndex index(dim, Metric::kL2);
  std::vector<std::vector<float>> data(500, std::vector<float>(dim));
  for (uint32_t i = 0; i < data.size(); ++i) {
    for (auto& x : data[i]) x = n(rng);
    index.Set(i, data[i].data());
  }
  std::vector<float> q(dim);
  for (auto& x : q) x = n(rng);
  std::vector<std::pair<float, uint32_t>> truth;
  for (uint32_t i = 0; i < data.size(); ++i) truth.push_back({L2Squared(q.data(), data[i].data(), dim), i});
  std::sort(truth.begin(), truth.end());
  auto hits = index.Search(q.data(), 10, nullptr);
  ASSERT_EQ(hits.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(hits[i].slot, truth[i].second);
    EXPECT_NEAR(hits[i].score, -std::sqrt(truth[i].first), 1e-4);
  }
}

// Collections large enough to take the int8 candidate scan still get the exact answer.
TEST(FlatIndexTest, QuantizedScanMatchesBruteForce) {
  const int dim = 100;
  std::mt19937 rng(5);
  std::normal_distribution<float> n;
  for (Metric metric : {Metric::kCosine, Metric::kDot, Metric::kL2}) {
    FlatIndex index(dim, metric);
    std::vector<std::vector<float>> data(3000, std::vector<float>(dim));
    for (uint32_t i = 0; i < data.size(); ++i) {
      for (auto& x : data[i]) x = n(rng);
      index.Set(i, data[i].data());
    }
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> q(dim);
      for (auto& x : q) x = n(rng);
      std::vector<std::pair<float, uint32_t>> truth;
      for (uint32_t i = 0; i < data.size(); ++i) {
        float score;
        if (metric == Metric::kL2)
          score = -std::sqrt(L2Squared(q.data(), data[i].data(), dim));
        else if (metric == Metric::kDot)
          score = DotProduct(q.data(), data[i].data(), dim);
        else
          score = DotProduct(q.data(), data[i].data(), dim) /
                  std::sqrt(DotProduct(data[i].data(), data[i].data(), dim) * DotProduct(q.data(), q.data(), dim));
        truth.push_back({-score, i});
      }
      std::sort(truth.begin(), truth.end());
      auto hits = index.Search(q.data(), 10, [](uint32_t s) { return s % 3 != 0; });
      std::vector<uint32_t> expected;
      for (auto& t : truth) {
        if (t.second % 3 != 0 && expected.size() < 10) expected.push_back(t.second);
      }
      ASSERT_EQ(hits.size(), 10u);
      for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(hits[i].slot, expected[i]) << "metric " << static_cast<int>(metric) << " trial " << trial;
        EXPECT_NEAR(hits[i].score,
                    -truth[std::find_if(truth.begin(), truth.end(), [&](auto& t) { return t.second == expected[i]; }) -
                           truth.begin()]
                         .first,
                    1e-4);
      }
    }
  }
}

TEST(FlatIndexTest, CosineIgnoresMagnitude) {
  FlatIndex index(2, Metric::kCosine);
  float a[] = {10, 0}, b[] = {1, 1};
  index.Set(0, a);
  index.Set(1, b);
  float q[] = {0.001f, 0};
  auto hits = index.Search(q, 2, nullptr);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].slot, 0u);
  EXPECT_NEAR(hits[0].score, 1.0f, 1e-6);
  EXPECT_NEAR(hits[1].score, std::sqrt(0.5f), 1e-6);
}

TEST(FlatIndexTest, DotUsesMagnitude) {
  FlatIndex index(2, Metric::kDot);
  float a[] = {10, 0}, b[] = {1, 1};
  index.Set(0, a);
  index.Set(1, b);
  float q[] = {0, 1};
  auto hits = index.Search(q, 1, nullptr);
  EXPECT_EQ(hits[0].slot, 1u);
  EXPECT_FLOAT_EQ(hits[0].score, 1.0f);
}

TEST(FlatIndexTest, RemovedAndFilteredSlotsAreNeverReturned) {
  FlatIndex index(1, Metric::kDot);
  for (uint32_t i = 0; i < 10; ++i) {
    float v = static_cast<float>(i);
    index.Set(i, &v);
  }
  index.Remove(9);
  EXPECT_EQ(index.size(), 9u);
  float q = 1;
  auto hits = index.Search(&q, 3, [](uint32_t s) { return s % 2 == 0; });
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].slot, 8u);
  EXPECT_EQ(hits[1].slot, 6u);
  EXPECT_EQ(hits[2].slot, 4u);
  float v = 100;
  index.Set(9, &v);  // slot reuse
  EXPECT_EQ(index.Search(&q, 1, nullptr)[0].slot, 9u);
}

TEST(TopKTest, KeepsBestAndBreaksTiesBySlot) {
  TopK top(3);
  for (uint32_t s : {5u, 1u, 3u, 2u}) top.Push(1.0f, s);
  top.Push(0.5f, 0);
  top.Push(2.0f, 9);
  auto out = top.Take();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].slot, 9u);
  EXPECT_EQ(out[1].slot, 1u);
  EXPECT_EQ(out[2].slot, 2u);
}

}  // namespace
}  // namespace contextd
