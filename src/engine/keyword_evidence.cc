#include "engine/keyword_evidence.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/query_executor.h"

namespace contextd {
namespace {

// Scores recomputed here (in double, in term order) and the index's (in float, summed in
// its own order) differ by a few parts in 10^7 per term; orders closer than this are
// treated as unknown and the entry goes.
constexpr double kMargin = 1e-4;
// Fused scores (min-max or top-normalised sums near [0, 1]) likewise, in absolute terms.
constexpr double kFusedMargin = 1e-4;

// The statistics of e's terms in `index` (without the watched chunks' counts).
KeywordEvidence::Stats TermStatsOf(const KeywordEvidence& e, const Bm25Index& index) {
  Bm25Index::TermStats now = index.StatsOf(e.terms);
  return {static_cast<double>(now.doc_count), static_cast<double>(now.total_length), std::move(now.df), {}, {}};
}

double AverageLength(const KeywordEvidence::Stats& s) { return s.doc_count > 0 ? s.total_length / s.doc_count : 1.0; }

// BM25 of a chunk with length `len` and term counts `tf` (by term) under `s`, as
// Bm25Index::Search computes it.
double Score(const KeywordEvidence& e, const KeywordEvidence::Stats& s, uint32_t len, const uint16_t* tf) {
  const double norm = e.k1 * (1.0 - e.b) + e.k1 * e.b * len / AverageLength(s);
  double sum = 0;
  for (size_t t = 0; t < e.terms.size(); ++t) {
    if (tf[t] == 0) continue;
    sum += e.weights[t] * Bm25Idf(s.doc_count, s.df[t]) * tf[t] / (tf[t] + norm);
  }
  return sum;
}

// Watched chunks a and b have the same length and counts (so the index scores them alike).
bool SameProfile(const KeywordEvidence::Stats& now, size_t terms, size_t a, size_t b) {
  return now.len[a] == now.len[b] &&
         std::equal(now.tf.begin() + a * terms, now.tf.begin() + (a + 1) * terms, now.tf.begin() + b * terms);
}

}  // namespace

size_t KeywordEvidence::bytes() const {
  size_t n = sizeof(*this) + weights.size() * sizeof(float) + at_cache.df.size() * sizeof(uint32_t) +
             by_vector.size() * sizeof(ScoredSlot) + ranked.size() * sizeof(uint32_t) +
             candidate_docs.size() * sizeof(uint64_t);
  for (const auto& t : terms) n += sizeof(t) + t.size();
  n += watched.size() * sizeof(uint32_t);
  for (const auto& [slot, doc] : doc_of) n += sizeof(slot) + sizeof(doc) + doc.size() + 16;
  return n;
}

std::optional<KeywordEvidence> CollectKeywordEvidence(const Bm25Index& index, const std::vector<std::string>& terms,
                                                      const std::vector<float>& weights, const Bm25Params& bm25,
                                                      const std::vector<ScoredSlot>& watched, bool complete,
                                                      size_t depth, QueryMode mode, const QueryRequest& req,
                                                      const std::vector<ScoredSlot>& by_vector,
                                                      const std::vector<uint32_t>& ranked,
                                                      const std::function<std::string(uint32_t)>& doc_of) {
  if (req.mmr_lambda || bm25.k1 < 0 || bm25.b < 0 || bm25.b > 1) return std::nullopt;
  KeywordEvidence e;
  // Distinct terms with the weight of their first occurrence, as Search scores them.
  for (size_t i = 0; i < terms.size(); ++i) {
    if (std::find(e.terms.begin(), e.terms.end(), terms[i]) != e.terms.end()) continue;
    if (weights[i] < 0) return std::nullopt;
    e.terms.push_back(terms[i]);
    e.weights.push_back(weights[i]);
  }
  e.k1 = bm25.k1;
  e.b = bm25.b;
  e.at_cache = TermStatsOf(e, index);
  for (const ScoredSlot& s : watched) e.watched.push_back(s.slot);
  e.depth = std::min(depth, watched.size());
  e.floor = complete || watched.empty() ? 0.0f : watched.back().score;
  e.mode = mode;
  e.ranking.k = req.k;
  e.ranking.depth = req.depth;
  e.ranking.fusion = req.fusion;
  e.ranking.alpha = req.alpha;
  e.ranking.group_by_document = req.group_by_document;
  e.by_vector = by_vector;
  e.ranked = ranked;
  if (req.group_by_document) {
    for (const ScoredSlot& s : watched) e.doc_of.emplace(s.slot, doc_of(s.slot));
    for (const ScoredSlot& s : by_vector) e.doc_of.emplace(s.slot, doc_of(s.slot));
  }
  return e;
}

KeywordEvidence::Stats StatsNow(const KeywordEvidence& e, const Bm25Index& index) {
  KeywordEvidence::Stats s = TermStatsOf(e, index);
  index.ProfileOf(e.watched, e.terms, &s.len, &s.tf);
  return s;
}

bool NewChunkCanEnter(const KeywordEvidence& e, const ChunkTerms& chunk) {
  std::vector<uint16_t> tf(e.terms.size(), 0);
  bool any = false;
  for (size_t t = 0; t < e.terms.size(); ++t) {
    auto it = chunk.tf.find(e.terms[t]);
    if (it == chunk.tf.end()) continue;
    tf[t] = it->second;
    any = true;
  }
  if (!any) return false;
  // Below the floor under S0 (with room for rounding), it is one more chunk Recheck's bound
  // covers; at or above it, or with every matching chunk watched, it could enter.
  return e.floor <= 0 || Score(e, e.at_cache, chunk.len, tf.data()) >= e.floor * (1.0 - kMargin);
}

bool TouchesCandidates(const KeywordEvidence& e, const std::vector<uint64_t>& changed_docs) {
  for (uint64_t h : changed_docs) {
    if (std::binary_search(e.candidate_docs.begin(), e.candidate_docs.end(), h)) return true;
  }
  return false;
}

bool Recheck(const KeywordEvidence& e, const KeywordEvidence::Stats& now, std::vector<float>* scores) {
  const size_t w = e.watched.size(), terms = e.terms.size();
  if (now.len.size() != w || now.tf.size() != w * terms) return false;
  std::vector<double> fresh(w);
  for (size_t i = 0; i < w; ++i) fresh[i] = Score(e, now, now.len[i], now.tf.data() + i * terms);
  std::vector<size_t> order(w);
  std::iota(order.begin(), order.end(), 0);
  // Best first, ties to the lower slot (TopK's rule).
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return fresh[a] != fresh[b] ? fresh[a] > fresh[b] : e.watched[a] < e.watched[b];
  });
  // The list's order, and its boundary, must be beyond rounding; chunks scored alike by
  // identical counts tie in the index too and break ties by slot as here.
  for (size_t i = 0; i + 1 < std::min(w, e.depth + 1); ++i) {
    const size_t a = order[i], b = order[i + 1];
    if (fresh[a] - fresh[b] < kMargin * fresh[a] && !SameProfile(now, terms, a, b)) return false;
  }
  if (e.floor > 0) {
    // Nothing unwatched may reach the list: floor * M stays below its last score.
    if (e.depth == 0) return false;
    double m = 1.0;
    for (size_t t = 0; t < e.terms.size(); ++t) {
      m = std::max(m, Bm25Idf(now.doc_count, now.df[t]) / Bm25Idf(e.at_cache.doc_count, e.at_cache.df[t]));
    }
    m *= std::max(1.0, AverageLength(now) / AverageLength(e.at_cache));
    if (e.floor * m * (1.0 + kMargin) >= fresh[order[e.depth - 1]]) return false;
  }
  std::vector<ScoredSlot> keyword;
  for (size_t i = 0; i < e.depth; ++i) {
    keyword.push_back({static_cast<float>(fresh[order[i]]), e.watched[order[i]]});
  }
  const size_t want = QueryExecutor::Want(e.ranking);
  std::vector<ScoredSlot> fused = QueryExecutor::Fuse(e.ranking, e.mode, e.by_vector, keyword, SIZE_MAX);
  if (e.mode == QueryMode::kHybrid && e.ranking.fusion != Fusion::kRrf) {
    // Fused scores (RRF's come from the orders checked above) must keep their order up to
    // the cut, except for chunks whose inputs are identical (they tie in a fresh search
    // too and break by slot).
    const auto vector_score = [&](uint32_t slot) -> double {
      for (const ScoredSlot& s : e.by_vector)
        if (s.slot == slot) return static_cast<double>(s.score);
      return -INFINITY;
    };
    // The watched chunk a slot is in the keyword list as, or w.
    const auto watched_of = [&](uint32_t slot) {
      for (size_t i = 0; i < e.depth; ++i)
        if (e.watched[order[i]] == slot) return order[i];
      return w;
    };
    for (size_t i = 0; i + 1 < std::min(fused.size(), want + 1); ++i) {
      const ScoredSlot& a = fused[i];
      const ScoredSlot& b = fused[i + 1];
      if (a.score - b.score >= kFusedMargin * std::max(1.0f, std::abs(a.score))) continue;
      const size_t wa = watched_of(a.slot), wb = watched_of(b.slot);
      const bool same = vector_score(a.slot) == vector_score(b.slot) && (wa == w) == (wb == w) &&
                        (wa == w || SameProfile(now, terms, wa, wb));
      if (!same) return false;
    }
  }
  if (fused.size() > want) fused.resize(want);
  if (e.ranking.group_by_document) {
    QueryExecutor::GroupByDocument(
        [&](uint32_t slot) {
          auto it = e.doc_of.find(slot);
          return it == e.doc_of.end() ? std::string_view() : std::string_view(it->second);
        },
        &fused);
  }
  if (fused.size() > e.ranking.k) fused.resize(e.ranking.k);
  if (fused.size() != e.ranked.size()) return false;
  for (size_t i = 0; i < fused.size(); ++i) {
    if (fused[i].slot != e.ranked[i]) return false;
  }
  scores->clear();
  for (const ScoredSlot& s : fused) scores->push_back(s.score);
  return true;
}

}  // namespace contextd
