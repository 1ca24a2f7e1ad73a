// Bm25Index: an in-memory inverted index scored with Lucene's BM25
// (idf = ln(1 + (N - df + 0.5) / (df + 0.5)), k1 = 1.2, b = 0.75).
//
// Terms come from an Analyzer (text/analyzer.h); this class only counts them. Slots are the
// collection's chunk numbers and may be reused after Remove().
//
// Search is exact top-k with MaxScore-style pruning, term-at-a-time: terms go in order of
// their score upper bound (rare terms first); once the bounds of the terms still to come add
// up to less than the current k-th best score, no unseen document can enter the top k, so
// the remaining (common, long) lists are only probed for the surviving candidates by
// galloping search, and candidates that can no longer reach the k-th score are dropped
// after every term. Pruning is only tried for long lists and small k (see the constants in
// Bm25Params); otherwise every list is scored. The results equal exhaustive scoring's. (Document-at-a-time MaxScore
// was tried first and was 40% slower on SciFact's long claims: its per-document cursor walk
// costs more than it saves at these list lengths.) Each posting carries its document's
// length, so scoring a list reads memory in order except for the accumulator.
// Thread safety: none; the owner serialises writers against readers.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "index/bm25_scoring.h"
#include "index/search_types.h"
#include "index/slot_bitset.h"

namespace contextd {

// Lucene's idf for a term in `df` of `doc_count` chunks; everything that scores BM25
// (the index, and the query cache re-checking its answers) uses this one.
inline double Bm25Idf(double doc_count, double df) { return std::log(1.0 + (doc_count - df + 0.5) / (df + 0.5)); }

struct Bm25Params {
  float k1 = 1.2f;
  float b = 0.75f;
  // Pruning pays only for long lists and small k: below this many postings in the query's
  // lists, or for deeper k (hybrid asks for 60), the checks cost more than they save and
  // every list is scored. Measured with bench/bm25_bench on SciFact at 9k and 100k chunks.
  size_t prune_min_postings = 20000;
  size_t prune_max_k = 32;
};

// A run of terms in a TermList: one chunk's. A view, valid while its list is unchanged.
// In a counted list (TermList::AddCounted) a term appears with how many times it occurs;
// otherwise every occurrence is a term of its own (count 1).
// A counted list may also number its terms (the words of a log record, which names each
// word once for all its chunks: see TermIdCache).
class TermSpan {
 public:
  TermSpan() = default;
  TermSpan(std::string_view chars, const uint32_t* ends, size_t n, uint32_t first, const uint32_t* counts = nullptr,
           const uint32_t* words = nullptr)
      : chars_(chars), ends_(ends), counts_(counts), words_(words), n_(n), first_(first) {}
  size_t size() const { return n_; }
  std::string_view operator[](size_t i) const {
    const uint32_t begin = i == 0 ? first_ : ends_[i - 1];
    return chars_.substr(begin, ends_[i] - begin);
  }
  bool counted() const { return counts_ != nullptr; }
  uint32_t count(size_t i) const { return counts_ == nullptr ? 1 : counts_[i]; }
  bool numbered() const { return words_ != nullptr; }
  // REQUIRES: numbered().
  uint32_t word(size_t i) const { return words_[i]; }

 private:
  std::string_view chars_;
  const uint32_t* ends_ = nullptr;
  const uint32_t* counts_ = nullptr;
  const uint32_t* words_ = nullptr;
  size_t n_ = 0;
  uint32_t first_ = 0;  // where term 0 begins in chars_
};

// Terms packed in one buffer, optionally cut into runs (a document's chunks: EndRun()
// after each). As a vector of strings, each term cost 32 bytes and often a heap block: a
// 16 MB document's 2.7M terms took 81 MB while its write waited for the index lock; packed
// per chunk, about a third of that, but still two heap blocks per chunk (~16,000 for such
// a document, each slab's worth costing allocator metadata kept for good); packed per
// document, two.
// A list is built with Add() (every occurrence) or with AddCounted() (each distinct term
// of a run once, with its count: how an upsert's terms travel the cluster's log), never both.
class TermList {
 public:
  TermList() = default;
  explicit TermList(const std::vector<std::string>& terms);
  void Add(std::string_view term);
  // REQUIRES: count >= 1. A term added twice to one run counts as the sum.
  void AddCounted(std::string_view term, uint32_t count);
  // The same, numbered: `word` names `term` wherever the list uses it (the same number is
  // always the same term). REQUIRES: every term of the list numbered, or none.
  void AddCounted(std::string_view term, uint32_t count, uint32_t word);
  // Every term, as one run.
  size_t size() const { return ends_.size(); }
  std::string_view operator[](size_t i) const { return all()[i]; }
  TermSpan all() const { return TermSpan(chars_, ends_.data(), ends_.size(), 0, counts(), words()); }
  bool counted() const { return !counts_.empty(); }

  // Ends the current run (the terms added since the last EndRun()).
  void EndRun() { run_ends_.push_back(static_cast<uint32_t>(ends_.size())); }
  size_t runs() const { return run_ends_.size(); }
  // REQUIRES: i < runs().
  TermSpan run(size_t i) const {
    const uint32_t first = i == 0 ? 0 : run_ends_[i - 1];
    const uint32_t* counts = counts_.empty() ? nullptr : counts_.data() + first;
    const uint32_t* words = words_.empty() ? nullptr : words_.data() + first;
    return TermSpan(chars_, ends_.data() + first, run_ends_[i] - first, first == 0 ? 0 : ends_[first - 1], counts,
                    words);
  }
  void Reserve(size_t chars, size_t terms) {
    chars_.reserve(chars);
    ends_.reserve(terms);
  }

 private:
  const uint32_t* counts() const { return counts_.empty() ? nullptr : counts_.data(); }
  const uint32_t* words() const { return words_.empty() ? nullptr : words_.data(); }

  std::string chars_;
  std::vector<uint32_t> ends_;      // where each term ends in chars_
  std::vector<uint32_t> run_ends_;  // where each run ends in ends_
  std::vector<uint32_t> counts_;    // a counted list's counts, aligned with ends_
  std::vector<uint32_t> words_;     // a numbered list's word numbers, aligned with ends_
};

// The index's term ids of numbered words (TermSpan::word), resolved once each: a log
// record names a word once for all its chunks (a SciFact upsert's 230 chunks list 17,000
// distinct terms, of 4,500 words), so its chunks look each word up in the dictionary once.
// For one index and one batch of runs numbered alike; it notices when the index forgets or
// renumbers terms (a removal between two runs) and starts again.
class TermIdCache {
 private:
  friend class Bm25Index;
  static constexpr uint32_t kUnknown = UINT32_MAX;
  std::vector<uint32_t> ids_;  // by word number
  uint64_t epoch_ = 0;         // the index's term_epoch_ the ids are valid for
};

class Bm25Index {
 public:
  explicit Bm25Index(Bm25Params params = {}) : params_(params) {}

  // Indexes `terms` (with repeats, or counted) under `slot`; numbered terms through
  // `cache` when given. REQUIRES: the slot is not indexed.
  void Add(uint32_t slot, const TermSpan& terms, TermIdCache* cache = nullptr);
  void Add(uint32_t slot, const TermList& terms) { Add(slot, terms.all()); }
  void Add(uint32_t slot, const std::vector<std::string>& terms) { Add(slot, TermList(terms)); }
  void Remove(uint32_t slot);
  // Frees the per-slot arrays from `slots` on. REQUIRES: no slot at or past it is indexed.
  void TrimSlots(size_t slots);

  // Up to k best hits for the query terms (repeats count once), best first; only slots in
  // `allowed` when it is given. k1 and b come from `query_params` when given (query-time
  // tuning), else from the index's own.
  // `weights`, when given, scale each query term's score (field boosts), aligned with
  // query_terms.
  std::vector<ScoredSlot> Search(const std::vector<std::string>& query_terms, size_t k,
                                 const SlotBitset* allowed = nullptr, const Bm25Params* query_params = nullptr,
                                 const std::vector<float>* weights = nullptr) const;

  size_t doc_count() const { return doc_count_; }
  // A hash of the statistics scores depend on (indexed count, total length, and per term
  // its document frequency and total frequency), independent of slot numbers: replicas
  // holding the same chunks have equal digests.
  uint64_t StatsDigest() const;
  // Terms with at least one posting (a term whose last posting is removed is forgotten).
  size_t term_count() const { return terms_.size(); }
  // Bytes held by the dictionary and the posting lists (capacity, not only size).
  size_t memory_bytes() const;
  // BM25 score of one term for given statistics; exposed for tests.
  float TermScore(uint32_t tf, uint32_t df, uint32_t doc_len) const;
  const Bm25Params& params() const { return params_; }

  // What scores depend on, for a cache that keeps keyword answers across writes
  // (engine/keyword_evidence.h): the collection-wide statistics for some terms, and chunks'
  // lengths and term counts as Search scores them (saturated at 65,535).
  struct TermStats {
    uint64_t doc_count = 0, total_length = 0;
    std::vector<uint32_t> df;  // aligned with the terms asked
  };
  TermStats StatsOf(const std::vector<std::string>& terms) const;
  // For each slot: its length, and the count of each of `terms` in it (0 when absent), in
  // (*tf)[slot index * terms.size() + term index].
  void ProfileOf(const std::vector<uint32_t>& slots, const std::vector<std::string>& terms, std::vector<uint32_t>* len,
                 std::vector<uint16_t>* tf) const;
  // Every distinct term of an indexed slot with its count; its length in *len.
  void TermsOf(uint32_t slot, uint32_t* len, std::vector<std::pair<std::string, uint16_t>>* out) const;

 private:
  using Posting = Bm25Posting;
  // Bounds for the term's best possible score; they only loosen on removal, so they stay
  // valid upper bounds without being recomputed.
  struct TermBounds {
    uint16_t max_tf = 0;
    uint16_t min_len = UINT16_MAX;
  };
  using TermScorer = Bm25TermScorer;
  struct QueryTerm;

  struct Doc {
    std::vector<uint32_t> term_ids;  // distinct terms, for removal
  };

  Bm25Params params_;
  // Removes `term`'s posting of `slot`; a list left empty is freed and its term forgotten,
  // and one left sparse gives back capacity, so deletes return what the inserts took.
  void RemovePosting(uint32_t term, uint32_t slot);
  static size_t TermNodeBytes(const std::string& term);
  // The term's id, the term added (with an empty posting list) when new.
  uint32_t TermId(std::string_view term);
  // Renumbers the live terms 0..n-1, dropping forgotten ids from the by-id arrays.
  void CompactTermIds();
  static constexpr size_t kCompactMinFreeTerms = 1 << 14;

  // Transparent, so packed terms are looked up without a string made for each.
  struct TermHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, uint32_t, TermHash, std::equal_to<>> terms_;
  std::vector<std::vector<Posting>> postings_;  // by term id, sorted by slot
  std::vector<TermBounds> bounds_;              // by term id
  // By term id: the key in terms_ (node keys never move), null for a forgotten term.
  std::vector<const std::string*> names_;
  std::vector<uint32_t> free_terms_;  // ids of forgotten terms, reused first
  std::vector<Doc> docs_;             // by slot
  std::vector<uint32_t> lengths_;     // by slot; 0 for free slots
  // Heap bytes of the posting lists, the dictionary's nodes and the documents' term lists,
  // kept as they change: memory_bytes() is read by every metrics scrape.
  size_t heap_bytes_ = 0;
  size_t doc_count_ = 0;
  uint64_t total_length_ = 0;
  // Counts changes of term ids (a term forgotten, or ids renumbered): TermIdCaches made
  // before one are stale.
  uint64_t term_epoch_ = 0;
};

}  // namespace contextd
