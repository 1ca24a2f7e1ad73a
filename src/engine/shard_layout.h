// ShardLayout: which topic shard every chunk of a collection belongs to, as replicated
// state.
//
// A layout is the history of a collection's shard splits: shard 0 holds everything at
// first, and each split turns one leaf into k children, each with a centroid, numbered in
// order (the first split of shard 0 into two makes shards 1 and 2). A chunk's shard is
// found by descending from shard 0, at each split taking the child whose centroid is
// nearest its vector (NearestCentroidExact), until a leaf. So a chunk's shard is a pure
// function of its vector and the layout: every node that applied the same splits (they are
// logged mutations) puts every chunk in the same shard, whatever order its writes and
// splits were applied in, and a restart finds each chunk's shard without storing it.
//
// The layout is logical. ShardSet keeps physical shards, one graph each, that may still be
// an ancestor of some leaves while their split is being built; descending from shard 0
// stops at the first physical one.
//
// Thread safety: a value; the owner synchronises.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "index/distance.h"

namespace contextd {

// The centroid nearest `vector`, the first on a tie: dot products or, for l2, squared
// distances, summed in double in index order. For cosine the vector is first normalised
// as the graphs store it (NormalizeInPlace, on a copy; idempotent), so a chunk's raw
// vector and its graph's copy place alike. No SIMD and no reassociation: the answer is
// bit-identical on every machine, which placement needs (replicas must agree even when one
// runs AVX-512 and another AVX2). Products of floats are exact in double, so a fused
// multiply-add cannot change a sum either. centroids: n * dim floats, n >= 1.
uint32_t NearestCentroidExact(Metric metric, const float* vector, const float* centroids, size_t n, size_t dim);

class ShardLayout {
 public:
  static constexpr uint32_t kRoot = 0;
  // Most children one split may make.
  static constexpr uint32_t kMaxSplitWays = 256;

  // One shard (0), holding everything.
  ShardLayout(Metric metric, uint32_t dim);

  // Splits leaf `shard` into centroids.size() / dim children (at least 2, at most
  // kMaxSplitWays). Returns false and changes nothing when `shard` is not a leaf (already
  // split: a second proposal of the same split, from another node); InvalidArgument for
  // an unknown shard or centroids of the wrong size or not finite. child_ids: the new
  // shards' ids, in centroid order.
  StatusOr<bool> Split(uint32_t shard, const std::vector<float>& centroids, std::vector<uint32_t>* child_ids = nullptr);

  // The child of `shard` nearest `vector`, or `shard` itself when it is a leaf.
  uint32_t Step(uint32_t shard, const float* vector) const;
  // The leaf `vector` belongs to.
  uint32_t Leaf(const float* vector) const;

  size_t shard_count() const { return nodes_.size(); }  // every shard ever, split ones too
  bool contains(uint32_t shard) const { return shard < nodes_.size(); }
  bool is_leaf(uint32_t shard) const { return nodes_[shard].children.empty(); }
  const std::vector<uint32_t>& children(uint32_t shard) const { return nodes_[shard].children; }
  uint32_t parent(uint32_t shard) const { return nodes_[shard].parent; }
  // dim floats; zeros for shard 0.
  const float* centroid(uint32_t shard) const { return nodes_[shard].centroid.data(); }
  std::vector<uint32_t> leaves() const;  // ascending
  size_t splits() const { return splits_.size(); }
  Metric metric() const { return metric_; }
  uint32_t dim() const { return dim_; }

  // The wire and storage form: the splits in order. Decode never trusts its input.
  std::string Encode() const;
  static StatusOr<ShardLayout> Decode(std::string_view bytes, Metric metric, uint32_t dim);

 private:
  struct Node {
    uint32_t parent = UINT32_MAX;
    std::vector<float> centroid;
    std::vector<uint32_t> children;
    std::vector<float> child_centroids;  // children.size() * dim, for Step
  };
  struct SplitRecord {
    uint32_t shard;
    std::vector<float> centroids;
  };
  Metric metric_;
  uint32_t dim_;
  std::vector<Node> nodes_;
  std::vector<SplitRecord> splits_;
};

}  // namespace contextd
