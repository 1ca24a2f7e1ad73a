// Semantic shards: how a collection's chunks are partitioned into topic shards (balanced
// k-means over their embeddings) and how a query picks the shards worth searching.
//
// These are the pure algorithms; Collection owns the shards themselves (a centroid and a
// vector index each) and splits one in the background when it outgrows its limit.
//
// Thread safety: free functions and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/distance.h"

namespace contextd {

struct ShardingOptions {
  // A shard past this many chunks is split by balanced k-means into InitialShardCount()
  // children (two for a shard that just passed it), as a logged split (shard_layout.h).
  size_t max_shard_chunks = 100000;
  // Routing, with score differences measured in units of the spread of the centroid scores
  // (best minus mean): the same setting then fits embedders whose similarities crowd
  // together (GloVe's centroids all score 0.8-0.95 for a query) and those that spread out;
  // absolute margins tuned for one missed recall or probed too much on the other
  // (BENCHMARKS.md). The best shard alone is searched when it beats the second by at least
  // clear_margin spreads (and there are four shards or more); otherwise every shard within
  // probe_margin spreads of the best, at least min_probe and at most max_probe_fraction
  // of them (but two when there are two or three). Defaults measured on SciFact and 1M-chunk
  // topical sets (bench/shard_bench).
  float clear_margin = 0.5f;
  float probe_margin = 0.6f;
  size_t min_probe = 2;
  float max_probe_fraction = 0.5f;
};

// Similarity of a query to each centroid, higher is closer: the dot product for cosine
// (both unit length) and dot collections, minus the squared distance for l2.
// centroids: n * dim floats; out: n floats.
void ScoreCentroids(Metric metric, const float* query, const float* centroids, size_t n, size_t dim, float* out);

struct RouteDecision {
  std::vector<uint32_t> shards;  // indexes into the centroids, best first
  float margin = 0;              // best minus second, in spreads (0 with one shard)
  bool confident = false;        // only the best shard was needed
};

// Picks the shards to search from the centroid scores.
RouteDecision RouteShards(const std::vector<float>& scores, const ShardingOptions& options);

struct KMeansResult {
  std::vector<float> centroids;      // k * dim; unit length for cosine
  std::vector<uint32_t> assignment;  // by input row, in [0, k)
};

// Balanced k-means: k-means++ seeding on a sample, then Lloyd iterations whose assignment
// step fills clusters in order of how clearly each point belongs (best minus second-best
// score), so no cluster takes more than `slack` times its even share: shards stay about
// the same size, which bounds the cost of searching any one of them. Cosine clusters on
// directions (spherical k-means). vectors: n * dim floats. REQUIRES: 1 <= k <= n.
KMeansResult BalancedKMeans(const float* vectors, size_t n, size_t dim, size_t k, Metric metric, float slack = 1.25f,
                            int iterations = 12, uint64_t seed = 1);

// The mean of each cluster's rows (of their directions for cosine, then unit length).
// counts (optional) receives each cluster's size; an empty cluster's mean is zeros.
// vectors: n * dim floats; assignment: n entries in [0, k); returns k * dim floats.
std::vector<float> ClusterMeans(const float* vectors, size_t n, size_t dim, const uint32_t* assignment, size_t k,
                                Metric metric, std::vector<size_t>* counts = nullptr);

// How many shards n chunks are split into: about n / (0.75 * max), 1 when n fits.
size_t InitialShardCount(size_t n, const ShardingOptions& options);

}  // namespace contextd
