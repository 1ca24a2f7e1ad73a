// FlatIndex: vector search by scanning every live slot. The baseline every approximate
// index is measured against (the HNSW tests' ground truth). Collections no longer use it:
// they keep vectors once, in the graph, and scan those exactly when small or when a filter
// matches few (HnswIndex::ExactSearch); its int8 pre-scan is the model for doing that
// scan on codes, which is why it is kept rather than reduced to a test helper.
//
// A scan reads int8 codes (a quarter of the fp32 bytes: the scan is memory-bound) to pick
// a candidate pool of max(4k, 64), then rescores the pool with the fp32 vectors, so the
// returned scores are exact and the ranking is exact unless int8 error pushes a true top-k
// hit below 4k others (vanishingly rare: the error is ~1e-3 of the score).
//
// Slots are chosen by the caller (the collection's chunk numbers) and may be reused after
// Remove(). Cosine vectors are normalised on insert, so cosine search is a dot product.
//
// Thread safety: none; the owner serialises writers against readers (Collection holds a
// shared_mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/distance.h"
#include "index/search_types.h"

namespace contextd {

class FlatIndex {
 public:
  FlatIndex(int dim, Metric metric) : dim_(dim), stride_((dim + 15) / 16 * 16), metric_(metric) {}

  // vector: dim floats. Overwrites whatever the slot held.
  void Set(uint32_t slot, const float* vector);
  void Remove(uint32_t slot);
  bool Contains(uint32_t slot) const { return slot < live_.size() && live_[slot]; }

  // query: dim floats. Returns up to k hits, best first. Scores: cosine similarity, dot
  // product, or the negated L2 distance, so that higher is always better.
  std::vector<ScoredSlot> Search(const float* query, size_t k, const SlotFilter& filter) const;

  // The stored (for cosine: normalised) vector of a live slot.
  const float* Vector(uint32_t slot) const { return &data_[static_cast<size_t>(slot) * dim_]; }
  size_t size() const { return live_count_; }
  size_t memory_bytes() const {
    return data_.capacity() * sizeof(float) + codes_.capacity() + (scales_.capacity() + sqnorms_.capacity()) * 4 +
           live_.capacity() / 8;
  }
  int dim() const { return dim_; }

 private:
  // Scores every live slot exactly. query: dim floats, already normalised for cosine.
  std::vector<ScoredSlot> ExactSearch(const float* query, size_t k, const SlotFilter& filter) const;
  float ExactScore(const float* query, uint32_t slot) const;

  int dim_;
  size_t stride_;  // dim rounded up to 16: int8 rows are zero-padded for the kernels
  Metric metric_;
  std::vector<float> data_;     // slot * dim
  std::vector<int8_t> codes_;   // slot * stride_
  std::vector<float> scales_;   // by slot: data ~= codes * scale
  std::vector<float> sqnorms_;  // by slot: |v|^2, for L2 from dot products
  std::vector<bool> live_;
  size_t live_count_ = 0;
};

}  // namespace contextd
