// FlatIndex: exact vector search by scanning every live slot. The baseline every
// approximate index is measured against, and the right choice for small collections and
// very selective filters.
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
  FlatIndex(int dim, Metric metric) : dim_(dim), metric_(metric) {}

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
  size_t memory_bytes() const { return data_.capacity() * sizeof(float) + live_.capacity() / 8; }
  int dim() const { return dim_; }

 private:
  int dim_;
  Metric metric_;
  std::vector<float> data_;  // slot * dim
  std::vector<bool> live_;
  size_t live_count_ = 0;
};

}  // namespace contextd
