// KeywordEvidence: what a cached keyword or hybrid answer rests on, so that a write which
// cannot change the answer keeps it in the query cache.
//
// BM25 scores move with every write: the number of chunks, their average length and the
// terms' document frequencies all enter them, and a write sharing no term with a query
// can still reorder its answer. Dropping every keyword and hybrid entry at every write is
// right but keeps little (issue 22: hybrid hits fell from 74% to 16% with an upsert every
// 100 queries). Instead an entry keeps:
//   - the query's terms (distinct, with their weights), k1 and b, and the statistics when
//     it was cached, S0 (chunks, total length, each term's df);
//   - its keyword list plus a few chunks past it (the watch list), whose scores under any
//     later statistics are computed from their lengths and term counts (read from the
//     index when re-checked: a watched chunk cannot change while the entry lives, and
//     most entries are never re-checked, so a miss does not pay for it);
//   - the floor: the score of the last chunk watched, when more chunks matched. Every
//     chunk not watched scored at most the floor under S0;
//   - the vector list it fused (hybrid), the ranking parameters and its answer's chunks.
//
// Two checks keep it right:
//   - At each write, NewChunkCanEnter(): a new chunk holding a query term whose S0 score
//     reaches the floor could enter the list, and the entry goes. Otherwise the new chunk
//     is one more chunk below the floor under S0.
//   - Before the entry is served after writes, Recheck() with the statistics now (S1).
//     One term's score idf * tf / (tf + k1 (1 - b + b len / avgdl)) changes from S0 to S1
//     by a factor between 1 and avgdl1 / avgdl0 through the length norm, times idf1 / idf0,
//     so a chunk not watched scores at most floor * M under S1, where M is the largest
//     idf ratio of the query's terms times max(1, avgdl1 / avgdl0). When that is below the
//     list's last score under S1, the keyword list under S1 is the watch list re-sorted
//     by the recomputed scores. Fused again with the unchanged vector list (the vector
//     rules in cache/query_cache.h keep that one exact), grouped and cut as a fresh search
//     would, it must give the same chunks in the same order, with margins that float
//     rounding (the index sums in float, in its own order) cannot cross. The served hits
//     then carry their S1 scores.
//
// A change to any document the entry watched or fused drops it first
// (TouchesCandidates), so every chunk kept here is unchanged since S0.
//
// Thread safety: values; the functions are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/requests.h"
#include "index/bm25_index.h"
#include "index/search_types.h"

namespace contextd {

// One new chunk's terms with their counts, as the index scored them: what a write tells
// the cache.
struct ChunkTerms {
  uint32_t len = 0;
  std::unordered_map<std::string, uint16_t> tf;
};

struct KeywordEvidence {
  // The statistics of the evidence's terms at one moment and, for a re-check, the
  // watched chunks' lengths and term counts.
  struct Stats {
    double doc_count = 0, total_length = 0;
    std::vector<uint32_t> df;   // by term
    std::vector<uint32_t> len;  // by watched chunk (StatsNow only)
    std::vector<uint16_t> tf;   // watched chunk * terms + term (StatsNow only)
  };

  std::vector<std::string> terms;  // distinct, in the order Search meets them
  std::vector<float> weights;      // by term
  float k1 = 0, b = 0;
  Stats at_cache;
  std::vector<uint32_t> watched;  // slots, best first under S0
  size_t depth = 0;               // how many of them the keyword list holds
  float floor = 0;                // 0: every chunk holding a query term is watched
  QueryMode mode = QueryMode::kKeyword;
  QueryRequest ranking;                              // k, depth, fusion, alpha, group_by_document; nothing else
  std::vector<ScoredSlot> by_vector;                 // hybrid: the vector list fused
  std::unordered_map<uint32_t, std::string> doc_of;  // the document of each slot above
  std::vector<uint32_t> ranked;                      // the answer's chunks, in order (before refs)
  // Hash64 of the document of every candidate it was ranked from (watched or fused),
  // sorted: a write changing any of them drops the entry (a collision only drops more).
  std::vector<uint64_t> candidate_docs;

  size_t bytes() const;
};

// How many chunks past the keyword list are watched: they give the floor room below the
// list's last score, so that small drifts keep the entry.
inline constexpr size_t kWatchedPastList = 8;

// Builds the evidence of a keyword or hybrid answer, under the lock its index is read
// under. `watched`: Search's hits for depth + kWatchedPastList; `complete`: it returned
// fewer than asked (every chunk holding a term is in it). Nullopt where the bound above
// does not hold (b outside [0, 1], k1 or a weight negative) or the answer was diversified
// (MMR reads vectors the evidence does not keep).
std::optional<KeywordEvidence> CollectKeywordEvidence(const Bm25Index& index, const std::vector<std::string>& terms,
                                                      const std::vector<float>& weights, const Bm25Params& bm25,
                                                      const std::vector<ScoredSlot>& watched, bool complete,
                                                      size_t depth, QueryMode mode, const QueryRequest& req,
                                                      const std::vector<ScoredSlot>& by_vector,
                                                      const std::vector<uint32_t>& ranked,
                                                      const std::function<std::string(uint32_t)>& doc_of);

// The statistics of e's terms in `index` now, with the watched chunks' counts.
KeywordEvidence::Stats StatsNow(const KeywordEvidence& e, const Bm25Index& index);

// Whether a new chunk could enter e's keyword list (see the file comment).
bool NewChunkCanEnter(const KeywordEvidence& e, const ChunkTerms& chunk);
// Whether a write changing these documents (Hash64 of each id) touches a candidate of e.
bool TouchesCandidates(const KeywordEvidence& e, const std::vector<uint64_t>& changed_docs);

// Whether e's answer still stands under `now`; when it does, *scores receives the answer's
// scores under `now`, aligned with e.ranked.
bool Recheck(const KeywordEvidence& e, const KeywordEvidence::Stats& now, std::vector<float>* scores);

}  // namespace contextd
