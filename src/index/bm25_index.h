// Bm25Index: an in-memory inverted index scored with Lucene's BM25
// (idf = ln(1 + (N - df + 0.5) / (df + 0.5)), k1 = 1.2, b = 0.75).
//
// Terms come from an Analyzer (text/analyzer.h); this class only counts them. Slots are the
// collection's chunk numbers and may be reused after Remove().
//
// Search is exhaustive term-at-a-time into a dense per-thread accumulator. (Document-at-a-
// time MaxScore was tried and was 40% slower on SciFact: with bounds from each term's
// largest tf and shortest document, long claims prune almost nothing and the per-document
// cursor walk costs more than it saves; tighter, block-level bounds are the way there.)
// Posting lists are kept sorted by slot so removal is a binary search, and so that
// document-at-a-time strategies can walk them.
//
// Thread safety: none; the owner serialises writers against readers.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/search_types.h"

namespace contextd {

struct Bm25Params {
  float k1 = 1.2f;
  float b = 0.75f;
};

class Bm25Index {
 public:
  explicit Bm25Index(Bm25Params params = {}) : params_(params) {}

  // Indexes `terms` (with repeats) under `slot`. REQUIRES: the slot is not indexed.
  void Add(uint32_t slot, const std::vector<std::string>& terms);
  void Remove(uint32_t slot);

  // Up to k best hits for the query terms (repeats count once), best first.
  std::vector<ScoredSlot> Search(const std::vector<std::string>& query_terms, size_t k, const SlotFilter& filter) const;

  size_t doc_count() const { return doc_count_; }
  size_t term_count() const { return terms_.size(); }
  // BM25 score of one term for given statistics; exposed for tests.
  float TermScore(uint32_t tf, uint32_t df, uint32_t doc_len) const;

 private:
  struct Posting {
    uint32_t slot;
    uint32_t tf;
  };
  struct Doc {
    std::vector<uint32_t> term_ids;  // distinct terms, for removal
  };

  Bm25Params params_;
  std::unordered_map<std::string, uint32_t> terms_;
  std::vector<std::vector<Posting>> postings_;  // by term id, sorted by slot
  std::vector<Doc> docs_;                       // by slot
  std::vector<uint32_t> lengths_;               // by slot; 0 for free slots (dense: scanned per posting)
  size_t doc_count_ = 0;
  uint64_t total_length_ = 0;
};

}  // namespace contextd
