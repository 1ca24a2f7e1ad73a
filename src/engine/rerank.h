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

// Maximal marginal relevance: picks k of `candidates` (best first, with their vectors in
// `vectors`, n x dim row-major) one at a time, each maximising
//   lambda * relevance - (1 - lambda) * max cosine to the ones already picked,
// relevance being the candidate's score min-max normalised over the candidates. Returns
// the picks in order with their original scores.
std::vector<ScoredSlot> Mmr(const std::vector<ScoredSlot>& candidates, const float* vectors, size_t dim, float lambda,
                            size_t k);

}  // namespace contextd
