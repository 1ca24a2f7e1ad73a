// BM25's scoring kernel: one query term's postings added into per-slot accumulators.
// Compiled once per ISA and picked at run time (CTX_CLONES); apart from Bm25Index so the
// kernel tests can build and check each path (tests/kernels).
//
// Thread safety: a pure function over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "index/slot_bitset.h"

namespace contextd {

// One document's entry in a term's list. Term frequency and document length saturate at
// 65,535 (chunks are far shorter).
struct Bm25Posting {
  uint32_t slot;
  uint16_t tf;
  uint16_t len;
};

// One term's BM25 for a query: idf * tf / (tf + k1 * (1 - b + b * len / avgdl)).
struct Bm25TermScorer {
  float idf;
  float norm_base;   // k1 * (1 - b)
  float norm_slope;  // k1 * b / avgdl
  float Score(float tf, float len) const { return idf * tf / (tf + norm_base + norm_slope * len); }
};

// Adds the term's score to acc[slot] for each of the n postings (0 for a slot not in
// `allowed`, when given), sets marks[slot / 64] = 1 for every posting's slot, and raises
// *best to the highest accumulated score. acc and marks cover every posting's slot.
void Bm25ScorePostings(const Bm25Posting* postings, size_t n, const Bm25TermScorer& scorer, const SlotBitset* allowed,
                       float* acc, uint8_t* marks, float* best);

}  // namespace contextd
