// Result-list arithmetic of the query path: hybrid fusion and diversity. Pure functions
// over (score, slot) lists, so their ordering rules are tested directly.
//
// Thread safety: free functions.
#pragma once

#include <cstddef>
#include <vector>

#include "index/search_types.h"

namespace contextd {

// Reciprocal rank fusion's constant (Cormack et al.; also Elasticsearch's default).
constexpr float kRrfK = 60.0f;
// What the hit at 0-based position `index` of a list adds under RRF: 1 / (rrf_k + rank),
// rank counted from 1.
inline float RrfTerm(size_t index, float rrf_k = kRrfK) { return 1.0f / (rrf_k + static_cast<float>(index + 1)); }

// Reciprocal rank fusion: each list adds RrfTerm(position) to its slots. Best first, at
// most k.
std::vector<ScoredSlot> FuseRrf(const std::vector<std::vector<ScoredSlot>>& lists, size_t k, float rrf_k = kRrfK);

// alpha * norm(vector score) + (1 - alpha) * norm(keyword score), each list min-max
// normalised to [0, 1] over its own hits (a slot absent from a list gets 0 from it; a
// list whose scores are all equal gives each of its slots 1). Best first, at most k.
std::vector<ScoredSlot> FuseWeighted(const std::vector<ScoredSlot>& vector_hits,
                                     const std::vector<ScoredSlot>& keyword_hits, float alpha, size_t k);

// How sure a list is of its order, for FuseAuto: the spread of its scores against their
// size (standard deviation over |mean|), clamped to [0, 1]; 0 for fewer than two hits. A
// list that cannot tell its hits apart (GloVe averages on scientific claims: cosines
// 0.85-0.88 for the whole top 10, about 0.02) is unsure; BM25's top scores on the same
// queries spread about 0.3.
float ListConfidence(const std::vector<ScoredSlot>& hits);
// The fewest hits each list brings to FuseAuto, so that spreads can be compared at k = 1.
constexpr size_t kAutoFusionMinDepth = 10;

// The default hybrid fusion: FuseWeighted's sum with alpha chosen per query from the two
// lists' confidences, alpha = c_vector / (c_vector + c_keyword) (0.5 when both are 0), so
// a list that cannot tell its hits apart has little say and a sharp one leads, with no
// tuning by the user. Keyword scores (BM25, never negative) are divided by the top one
// rather than min-max normalised, so the tail of a keyword list keeps its worth against
// hits the other list brings. *alpha_out, when given, receives the alpha used.
std::vector<ScoredSlot> FuseAuto(const std::vector<ScoredSlot>& vector_hits,
                                 const std::vector<ScoredSlot>& keyword_hits, size_t k, float* alpha_out = nullptr);

// Maximal marginal relevance: picks k of `candidates` (best first, with their vectors in
// `vectors`, n x dim row-major) one at a time, each maximising
//   lambda * relevance - (1 - lambda) * max cosine to the ones already picked,
// relevance being the candidate's score min-max normalised over the candidates. Returns
// the picks in order with their original scores.
std::vector<ScoredSlot> Mmr(const std::vector<ScoredSlot>& candidates, const float* vectors, size_t dim, float lambda,
                            size_t k);

}  // namespace contextd
