#include "index/bm25_scoring.h"

#include <algorithm>

#include "common/target_clones.h"

namespace contextd {

CTX_CLONES void Bm25ScorePostings(const Bm25Posting* postings, size_t n, const Bm25TermScorer& scorer,
                                  const SlotBitset* allowed, float* acc, uint8_t* marks, float* best) {
  // A batch's scores first, in a loop with no branches or indirection that the compiler
  // vectorises (eight lanes in the AVX2 clone: 5-10% off a SciFact query); then the
  // scatter-add. Slots that receive a score mark their block of 64 instead of being
  // listed, so no branch depends on the data.
  constexpr size_t kBatch = 256;
  float scores[kBatch];
  float top = *best;
  for (size_t off = 0; off < n; off += kBatch) {
    const Bm25Posting* p = postings + off;
    const size_t m = std::min(kBatch, n - off);
    for (size_t j = 0; j < m; ++j) scores[j] = scorer.Score(p[j].tf, p[j].len);
    if (allowed != nullptr) {
      for (size_t j = 0; j < m; ++j) scores[j] = allowed->Test(p[j].slot) ? scores[j] : 0.0f;
    }
    for (size_t j = 0; j < m; ++j) {
      const uint32_t slot = p[j].slot;
      const float a = acc[slot] + scores[j];
      acc[slot] = a;
      marks[slot >> 6] = 1;
      top = std::max(top, a);
    }
  }
  *best = top;
}

}  // namespace contextd
