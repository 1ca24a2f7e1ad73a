#include "index/flat_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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
    codes_.resize((static_cast<size_t>(slot) + 1) * stride_);
    scales_.resize(slot + 1);
    sqnorms_.resize(slot + 1);
    live_.resize(slot + 1, false);
  }
  float* dst = &data_[static_cast<size_t>(slot) * dim_];
  std::memcpy(dst, vector, sizeof(float) * dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(dst, dim_);
  scales_[slot] = QuantizeInt8(dst, dim_, stride_, &codes_[static_cast<size_t>(slot) * stride_]);
  sqnorms_[slot] = DotProduct(dst, dst, dim_);
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

float FlatIndex::ExactScore(const float* q, uint32_t slot) const {
  const float* v = &data_[static_cast<size_t>(slot) * dim_];
  return metric_ == Metric::kL2 ? -std::sqrt(L2Squared(q, v, dim_)) : DotProduct(q, v, dim_);
}

std::vector<ScoredSlot> FlatIndex::ExactSearch(const float* q, size_t k, const SlotFilter& filter) const {
  TopK top(k);
  const size_t n = live_.size();
  constexpr size_t kBlock = 256;  // scores of one block stay in L1
  float scores[kBlock];
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t count = std::min(kBlock, n - begin);
    const float* base = &data_[begin * dim_];
    if (metric_ == Metric::kL2) {
      L2SquaredBatch(q, base, count, dim_, scores);
      for (size_t i = 0; i < count; ++i) scores[i] = -std::sqrt(scores[i]);
    } else {
      DotProductBatch(q, base, count, dim_, scores);
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

std::vector<ScoredSlot> FlatIndex::Search(const float* query, size_t k, const SlotFilter& filter) const {
  std::vector<float> q(query, query + dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(q.data(), dim_);
  const size_t pool = std::max<size_t>(k * 4, 64);
  if (live_count_ <= pool * 4) return ExactSearch(q.data(), k, filter);

  // Stage 1: the int8 scan picks candidates. For L2, |q - v|^2 = |q|^2 + |v|^2 - 2 q.v and
  // |q|^2 is the same for every row, so -(|v|^2 - 2 q.v) orders rows like -|q - v|^2.
  thread_local std::vector<int8_t> qcodes;
  thread_local std::vector<int16_t> q16;
  qcodes.resize(stride_);
  q16.resize(stride_);
  const float qscale = QuantizeInt8(q.data(), dim_, stride_, qcodes.data());
  for (size_t j = 0; j < stride_; ++j) q16[j] = qcodes[j];
  TopK candidates(pool);
  const size_t n = live_.size();
  constexpr size_t kBlock = 256;
  int32_t dots[kBlock];
  float approx[kBlock];
  float threshold = -std::numeric_limits<float>::infinity();
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t count = std::min(kBlock, n - begin);
    DotInt8Batch(q16.data(), &codes_[begin * stride_], count, stride_, dots);
    const float* scales = &scales_[begin];
    for (size_t i = 0; i < count; ++i) approx[i] = qscale * scales[i] * static_cast<float>(dots[i]);
    if (metric_ == Metric::kL2) {
      for (size_t i = 0; i < count; ++i) approx[i] = 2 * approx[i] - sqnorms_[begin + i];
    }
    for (size_t i = 0; i < count; ++i) {
      if (approx[i] < threshold) continue;  // the common case, decided without touching live_
      const uint32_t s = static_cast<uint32_t>(begin + i);
      if (!live_[s]) continue;
      if (filter && !filter(s)) continue;
      candidates.Push(approx[i], s);
      if (candidates.Full()) threshold = candidates.Threshold();
    }
  }
  // Stage 2: exact scores for the pool.
  TopK top(k);
  for (const auto& c : candidates.Take()) top.Push(ExactScore(q.data(), c.slot), c.slot);
  return top.Take();
}

}  // namespace contextd
