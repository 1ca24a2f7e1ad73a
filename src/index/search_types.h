// Types shared by the vector and keyword indexes.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace contextd {

// A hit: a slot (the collection's chunk number) and its score; higher scores are better.
struct ScoredSlot {
  float score;
  uint32_t slot;
};

// Accepts or rejects a slot during search (metadata filters). Null means accept all.
using SlotFilter = std::function<bool(uint32_t slot)>;

// Keeps the k best hits; ties go to the lower slot so results are deterministic.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) {}
  void Push(float score, uint32_t slot);
  // The kept hits, best first. Leaves the collector empty.
  std::vector<ScoredSlot> Take();
  // The score a hit must beat to enter once the collector is full.
  bool Full() const { return heap_.size() >= k_; }
  float Threshold() const { return heap_.front().score; }

 private:
  size_t k_;
  std::vector<ScoredSlot> heap_;  // min-heap on (score, -slot)
};

}  // namespace contextd
