// SlotBitset: a dense set of slots, one bit each. What a metadata filter compiles to:
// membership tests during graph traversal cost one load, and a count says up front how
// selective the filter is, so the search can pick its strategy before it starts.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace contextd {

class SlotBitset {
 public:
  SlotBitset() = default;
  explicit SlotBitset(size_t universe) { Resize(universe); }

  // Slots are valid in [0, universe); growing keeps the members, new slots are absent.
  void Resize(size_t universe) {
    universe_ = universe;
    words_.resize((universe + 63) / 64, 0);
  }
  size_t universe() const { return universe_; }

  void Set(uint32_t slot) { words_[slot >> 6] |= uint64_t{1} << (slot & 63); }
  void Clear(uint32_t slot) { words_[slot >> 6] &= ~(uint64_t{1} << (slot & 63)); }
  bool Test(uint32_t slot) const { return slot < universe_ && (words_[slot >> 6] >> (slot & 63) & 1) != 0; }

  // Set operations over bitsets of the same universe.
  void And(const SlotBitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= o.words_[i];
  }
  void Or(const SlotBitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
  }
  void AndNot(const SlotBitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= ~o.words_[i];
  }

  size_t Count() const {
    size_t n = 0;
    for (uint64_t w : words_) n += static_cast<size_t>(std::popcount(w));
    return n;
  }

  // Calls f(slot) for every member in increasing order.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      for (uint64_t w = words_[i]; w != 0; w &= w - 1) {
        f(static_cast<uint32_t>(i * 64 + static_cast<size_t>(std::countr_zero(w))));
      }
    }
  }

  size_t memory_bytes() const { return words_.capacity() * sizeof(uint64_t); }

 private:
  size_t universe_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace contextd
