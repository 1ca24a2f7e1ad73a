#include "index/flat_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace contextd {

void TopK::Push(float score, uint32_t slot) {
  auto worse = [](const ScoredSlot& a, const ScoredSlot& b) {
    return a.score > b.score || (a.score == b.score && a.slot < b.slot);
  };
  if (k_ == 0) return;
  if (heap_.size() < k_) {
    heap_.push_back({score, slot});
    std::push_heap(heap_.begin(), heap_.end(), worse);
    return;
  }
  const ScoredSlot& min = heap_.front();
  if (score < min.score || (score == min.score && slot > min.slot)) return;
  std::pop_heap(heap_.begin(), heap_.end(), worse);
  heap_.back() = {score, slot};
  std::push_heap(heap_.begin(), heap_.end(), worse);
}

std::vector<ScoredSlot> TopK::Take() {
  std::vector<ScoredSlot> out = std::move(heap_);
  heap_.clear();
  std::sort(out.begin(), out.end(), [](const ScoredSlot& a, const ScoredSlot& b) {
    return a.score > b.score || (a.score == b.score && a.slot < b.slot);
  });
  return out;
}

void FlatIndex::Set(uint32_t slot, const float* vector) {
  size_t need = (static_cast<size_t>(slot) + 1) * dim_;
  if (data_.size() < need) {
    data_.resize(need);
    live_.resize(slot + 1, false);
  }
  float* dst = &data_[static_cast<size_t>(slot) * dim_];
  std::memcpy(dst, vector, sizeof(float) * dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(dst, dim_);
  if (!live_[slot]) {
    live_[slot] = true;
    ++live_count_;
  }
}

void FlatIndex::Remove(uint32_t slot) {
  if (!Contains(slot)) return;
  live_[slot] = false;
  --live_count_;
}

std::vector<ScoredSlot> FlatIndex::Search(const float* query, size_t k,
                                          const SlotFilter& filter) const {
  std::vector<float> q(query, query + dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(q.data(), dim_);
  TopK top(k);
  const size_t n = live_.size();
  constexpr size_t kBlock = 256;  // scores of one block stay in L1
  float scores[kBlock];
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t count = std::min(kBlock, n - begin);
    const float* base = &data_[begin * dim_];
    if (metric_ == Metric::kL2) {
      L2SquaredBatch(q.data(), base, count, dim_, scores);
      for (size_t i = 0; i < count; ++i) scores[i] = -std::sqrt(scores[i]);
    } else {
      DotProductBatch(q.data(), base, count, dim_, scores);
    }
    for (size_t i = 0; i < count; ++i) {
      const uint32_t s = static_cast<uint32_t>(begin + i);
      if (!live_[s]) continue;
      if (top.Full() && scores[i] < top.Threshold()) continue;
      if (filter && !filter(s)) continue;
      top.Push(scores[i], s);
    }
  }
  return top.Take();
}

}  // namespace contextd
