#include "engine/shards.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace contextd {

void ScoreCentroids(Metric metric, const float* query, const float* centroids, size_t n, size_t dim, float* out) {
  if (metric == Metric::kL2) {
    L2SquaredBatch(query, centroids, n, dim, out);
    for (size_t i = 0; i < n; ++i) out[i] = -out[i];
    return;
  }
  DotProductBatch(query, centroids, n, dim, out);
  if (metric == Metric::kCosine) {
    const float norm = std::sqrt(DotProduct(query, query, dim));
    if (norm > 0)
      for (size_t i = 0; i < n; ++i) out[i] /= norm;
  }
}

RouteDecision RouteShards(const std::vector<float>& scores, const ShardingOptions& options) {
  RouteDecision d;
  const size_t n = scores.size();
  if (n == 0) return d;
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a < b; });
  if (n == 1) {
    d.shards = order;
    d.confident = true;
    return d;
  }
  // Margins are measured in units of the spread of the scores (best minus mean), so one
  // setting means the same for embedders whose similarities crowd together (GloVe's
  // centroids all score 0.8-0.95) and for those that spread out.
  const float best = scores[order[0]];
  double mean = 0;
  for (float s : scores) mean += s;
  mean /= static_cast<double>(n);
  const float spread = std::max(1e-6f, best - static_cast<float>(mean));
  d.margin = (best - scores[order[1]]) / spread;
  // Below four shards the spread says nothing about the winner (with two, the margin is
  // always exactly 2): no shortcut there.
  if (n >= 4 && d.margin >= options.clear_margin) {
    d.shards = {order[0]};
    d.confident = true;
    return d;
  }
  // An unclear choice always gets a second opinion where there is one.
  const size_t cap =
      std::max<size_t>(std::min<size_t>(n, 2), static_cast<size_t>(std::floor(n * options.max_probe_fraction)));
  const size_t floor_count = std::min(options.min_probe, cap);
  for (size_t i = 0; i < n && d.shards.size() < cap; ++i) {
    if (i >= floor_count && (best - scores[order[i]]) / spread > options.probe_margin) break;
    d.shards.push_back(order[i]);
  }
  return d;
}

std::vector<float> ClusterMeans(const float* vectors, size_t n, size_t dim, const uint32_t* assignment, size_t k,
                                Metric metric, std::vector<size_t>* counts) {
  std::vector<double> sums(k * dim, 0.0);
  std::vector<size_t> sizes(k, 0);
  for (size_t i = 0; i < n; ++i) {
    const float* v = vectors + i * dim;
    float scale = 1.0f;
    if (metric == Metric::kCosine) {
      const float norm = std::sqrt(DotProduct(v, v, dim));
      scale = norm > 0 ? 1.0f / norm : 0.0f;
    }
    double* sum = &sums[assignment[i] * dim];
    for (size_t j = 0; j < dim; ++j) sum[j] += v[j] * scale;
    ++sizes[assignment[i]];
  }
  std::vector<float> means(k * dim, 0.0f);
  for (size_t c = 0; c < k; ++c) {
    if (sizes[c] == 0) continue;
    for (size_t j = 0; j < dim; ++j) means[c * dim + j] = static_cast<float>(sums[c * dim + j] / sizes[c]);
    if (metric == Metric::kCosine) NormalizeInPlace(&means[c * dim], dim);
  }
  if (counts != nullptr) *counts = std::move(sizes);
  return means;
}

size_t InitialShardCount(size_t n, const ShardingOptions& options) {
  if (n <= options.max_shard_chunks || options.max_shard_chunks == 0) return 1;
  const double target = 0.75 * static_cast<double>(options.max_shard_chunks);
  return static_cast<size_t>(std::ceil(static_cast<double>(n) / target));
}

namespace {

// Scores of every row against every centroid, centroid-major: out[c * n + i].
void ScoreAll(Metric metric, const float* vectors, const std::vector<float>& inv_norms, size_t n, size_t dim,
              const std::vector<float>& centroids, size_t k, std::vector<float>* out) {
  out->resize(k * n);
  for (size_t c = 0; c < k; ++c) {
    float* row = out->data() + c * n;
    if (metric == Metric::kL2) {
      L2SquaredBatch(&centroids[c * dim], vectors, n, dim, row);
      for (size_t i = 0; i < n; ++i) row[i] = -row[i];
    } else {
      DotProductBatch(&centroids[c * dim], vectors, n, dim, row);
      if (metric == Metric::kCosine)
        for (size_t i = 0; i < n; ++i) row[i] *= inv_norms[i];
    }
  }
}

// k-means++ seeding over a sample of rows: each next seed is drawn with probability
// proportional to its distance from the seeds so far.
std::vector<float> SeedCentroids(Metric metric, const float* vectors, const std::vector<float>& inv_norms, size_t n,
                                 size_t dim, size_t k, std::mt19937_64* rng) {
  std::vector<size_t> sample(n);
  std::iota(sample.begin(), sample.end(), size_t{0});
  const size_t m = std::min(n, std::max<size_t>(k * 256, 4096));
  for (size_t i = 0; i < m; ++i) std::swap(sample[i], sample[i + (*rng)() % (n - i)]);
  sample.resize(m);
  auto row = [&](size_t i, float* out) {
    const float scale = metric == Metric::kCosine ? inv_norms[i] : 1.0f;
    for (size_t j = 0; j < dim; ++j) out[j] = vectors[i * dim + j] * scale;
  };
  std::vector<float> centroids(k * dim);
  row(sample[(*rng)() % m], centroids.data());
  std::vector<float> nearest(m, INFINITY), d(1);
  for (size_t c = 1; c < k; ++c) {
    double total = 0;
    std::vector<float> tmp(dim);
    for (size_t s = 0; s < m; ++s) {
      row(sample[s], tmp.data());
      nearest[s] = std::min(nearest[s], L2Squared(tmp.data(), &centroids[(c - 1) * dim], dim));
      total += nearest[s];
    }
    double pick = std::uniform_real_distribution<double>(0, total)(*rng);
    size_t chosen = m - 1;
    for (size_t s = 0; s < m; ++s) {
      pick -= nearest[s];
      if (pick <= 0) {
        chosen = s;
        break;
      }
    }
    row(sample[chosen], &centroids[c * dim]);
  }
  return centroids;
}

// The balanced assignment: rows that clearly belong go first, each to its best cluster
// that still has room.
void AssignBalanced(const std::vector<float>& scores, size_t n, size_t k, size_t capacity,
                    std::vector<uint32_t>* assignment) {
  std::vector<float> margin(n);
  std::vector<uint32_t> best(n);
  for (size_t i = 0; i < n; ++i) {
    float b1 = -INFINITY, b2 = -INFINITY;
    uint32_t arg = 0;
    for (size_t c = 0; c < k; ++c) {
      const float s = scores[c * n + i];
      if (s > b1) {
        b2 = b1;
        b1 = s;
        arg = static_cast<uint32_t>(c);
      } else if (s > b2) {
        b2 = s;
      }
    }
    best[i] = arg;
    margin[i] = k > 1 ? b1 - b2 : 0;
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return margin[a] > margin[b]; });
  std::vector<size_t> fill(k, 0);
  assignment->assign(n, 0);
  for (uint32_t i : order) {
    uint32_t c = best[i];
    if (fill[c] >= capacity) {
      float top = -INFINITY;
      for (size_t o = 0; o < k; ++o) {
        if (fill[o] < capacity && scores[o * n + i] > top) {
          top = scores[o * n + i];
          c = static_cast<uint32_t>(o);
        }
      }
    }
    (*assignment)[i] = c;
    ++fill[c];
  }
}

}  // namespace

KMeansResult BalancedKMeans(const float* vectors, size_t n, size_t dim, size_t k, Metric metric, float slack,
                            int iterations, uint64_t seed) {
  KMeansResult r;
  k = std::max<size_t>(1, std::min(k, n));
  std::vector<float> inv_norms(n, 1.0f);
  if (metric == Metric::kCosine) {
    for (size_t i = 0; i < n; ++i) {
      const float norm = std::sqrt(DotProduct(vectors + i * dim, vectors + i * dim, dim));
      inv_norms[i] = norm > 0 ? 1.0f / norm : 0.0f;
    }
  }
  std::mt19937_64 rng(seed);
  r.centroids = SeedCentroids(metric, vectors, inv_norms, n, dim, k, &rng);
  const size_t capacity =
      std::max<size_t>(1, static_cast<size_t>(std::ceil(slack * n / static_cast<double>(k) - 1e-3)));
  std::vector<float> scores;
  for (int it = 0; it < iterations; ++it) {
    ScoreAll(metric, vectors, inv_norms, n, dim, r.centroids, k, &scores);
    std::vector<uint32_t> previous = std::move(r.assignment);
    AssignBalanced(scores, n, k, capacity, &r.assignment);
    std::vector<size_t> counts;
    std::vector<float> means = ClusterMeans(vectors, n, dim, r.assignment.data(), k, metric, &counts);
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] == 0) continue;  // keeps its old centroid
      std::copy(&means[c * dim], &means[(c + 1) * dim], &r.centroids[c * dim]);
    }
    if (previous == r.assignment) break;
  }
  return r;
}

}  // namespace contextd
