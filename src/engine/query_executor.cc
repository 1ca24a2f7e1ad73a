#include "engine/query_executor.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "engine/rerank.h"

namespace contextd {

Status QueryExecutor::Run(const RequestContext& ctx, const QueryRequest& req, const Input& in, QueryResult* result,
                          Extras* extras) const {
  const QueryMode mode = in.mode;
  const std::vector<float>& qvec = *in.vector;
  const std::vector<std::string>& terms = *in.terms;
  // A filter becomes the set of matching slots up front (from the payload index): its
  // size picks the vector search strategy, and membership tests are then one bit each.
  SlotBitset allowed;
  if (!req.filter.empty()) allowed = req.filter.Select(table_.payload());
  const SlotBitset* allowed_ptr = req.filter.empty() ? nullptr : &allowed;
  // Grouping and diversity choose among more candidates than they return.
  const bool rerank = req.group_by_document || req.mmr_lambda.has_value();
  const size_t want = rerank ? std::min<size_t>(std::max<size_t>(req.k * 4, 40), kMaxK * 4) : req.k;
  Bm25Params bm25;
  if (req.bm25_k1) bm25.k1 = *req.bm25_k1;
  if (req.bm25_b) bm25.b = *req.bm25_b;
  const Bm25Params* bm25_ptr = req.bm25_k1 || req.bm25_b ? &bm25 : nullptr;
  const ShardingOptions* routing = req.routing ? &*req.routing : nullptr;
  std::vector<ScoredSlot> ranked;
  QueryResult::Route route;
  if (mode == QueryMode::kVector) {
    ranked = shards_.Search(qvec.data(), want, req.ef, allowed_ptr, req.all_shards, routing, &route);
    if (ranked.size() >= want) extras->vector_bar = ranked.back().score;
    ctx.usage.chunks_scored += static_cast<int64_t>(ranked.size());
  } else if (mode == QueryMode::kKeyword) {
    ranked = table_.keywords().Search(terms, want, allowed_ptr, bm25_ptr, in.term_weights);
    ctx.usage.chunks_scored += static_cast<int64_t>(ranked.size());
  } else {
    // Each list brings `depth` candidates, by default as many as the answer holds (the
    // window Elasticsearch's and Couchbase's RRF default to). Deeper windows were worse
    // here, not better: on SciFact's 809 training claims at k = 10, nDCG@10 is 0.59 at
    // depth 10, 0.55 at 20, 0.53 at 30 and 0.48 at 60 (the old default), because a deep
    // window lets chunks ranked middling on both sides outvote the top of either list.
    // Shallow lists are also cheaper: BM25 prunes at k <= 32. The graph's breadth floor
    // is 48 rather than a vector query's 64: the fused top 10 had the same nDCG@10 there
    // (0.5911 at ef 48, 0.5906 at 64; 0.5848 at 32) for ~5% more hybrid throughput.
    // The default fusion judges each list by the spread of its scores: it needs a few
    // of them, whatever k is.
    const size_t depth = std::max({req.depth, want, req.fusion == Fusion::kAuto ? kAutoFusionMinDepth : size_t{0}});
    const size_t ef = req.ef != 0 ? req.ef : std::max<size_t>(depth, 48);
    std::vector<ScoredSlot> by_vector =
        shards_.Search(qvec.data(), depth, ef, allowed_ptr, req.all_shards, routing, &route);
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the keyword search"));
    std::vector<ScoredSlot> by_keyword = table_.keywords().Search(terms, depth, allowed_ptr, bm25_ptr, in.term_weights);
    ctx.usage.chunks_scored += static_cast<int64_t>(by_vector.size() + by_keyword.size());
    if (by_vector.size() >= depth) extras->vector_bar = by_vector.back().score;
    switch (req.fusion) {
      case Fusion::kAuto:
        ranked = FuseAuto(by_vector, by_keyword, want);
        break;
      case Fusion::kRrf:
        ranked = FuseRrf({by_vector, by_keyword}, want, kRrfK);
        break;
      case Fusion::kWeighted:
        ranked = FuseWeighted(by_vector, by_keyword, req.alpha, want);
        break;
    }
  }
  if (req.group_by_document) {
    // The best chunk of each document, in rank order.
    std::vector<ScoredSlot> grouped;
    std::unordered_set<const void*> seen;
    for (const auto& r : ranked) {
      if (seen.insert(table_.chunk(r.slot).doc).second) grouped.push_back(r);
    }
    ranked = std::move(grouped);
  }
  if (req.mmr_lambda && !ranked.empty()) {
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("reranking (mmr)"));
    const size_t dim = static_cast<size_t>(config_.dim);
    std::vector<float> vecs(ranked.size() * dim);
    for (size_t i = 0; i < ranked.size(); ++i) shards_.CopyVector(ranked[i].slot, vecs.data() + i * dim);
    ranked = Mmr(ranked, vecs.data(), dim, *req.mmr_lambda, req.k);
  }
  if (ranked.size() > req.k) ranked.resize(req.k);
  result->hits.reserve(ranked.size());
  for (const auto& r : ranked) {
    const DocumentTable::Chunk& c = table_.chunk(r.slot);
    result->hits.push_back({c.doc->id, c.ordinal, c.text, r.score, c.doc->metadata});
  }
  if (req.expand_refs) ExpandRefs(qvec, terms, &result->hits, &extras->cited);
  if (mode != QueryMode::kKeyword) result->route = std::move(route);
  result->rank_fused = mode == QueryMode::kHybrid && req.fusion == Fusion::kRrf;
  return Status::Ok();
}

void QueryExecutor::ExpandRefs(const std::vector<float>& query, const std::vector<std::string>& terms,
                               std::vector<QueryHit>* hits, std::vector<std::string>* cited) const {
  const size_t dim = static_cast<size_t>(config_.dim);
  std::unordered_set<std::string> present;
  for (const auto& h : *hits) present.insert(h.doc_id);
  std::unordered_set<std::string> query_terms(terms.begin(), terms.end());
  std::vector<QueryHit> pulled;
  std::vector<float> v(dim);
  std::vector<std::string> chunk_terms;
  for (const auto& h : *hits) {
    const DocumentTable::Document* citing = table_.Find(h.doc_id);
    if (citing == nullptr) continue;
    for (const std::string& ref : citing->refs) {
      cited->push_back(ref);
      if (!present.insert(ref).second) continue;
      const DocumentTable::Document* doc = table_.Find(ref);
      if (doc == nullptr || doc->slots.empty()) continue;  // cited but not (yet) here
      // Its best chunk for this query: by vector similarity, or by query terms matched.
      uint32_t best = doc->slots[0];
      float best_score = -INFINITY;
      for (uint32_t slot : doc->slots) {
        float score = 0;
        if (!query.empty() && shards_.CopyVector(slot, v.data())) {
          ScoreCentroids(config_.metric, query.data(), v.data(), 1, dim, &score);
        } else {
          chunk_terms.clear();
          analyzer_.Analyze(table_.chunk(slot).text, &chunk_terms);
          for (const auto& t : chunk_terms) score += query_terms.count(t) > 0;
        }
        if (score > best_score) {
          best_score = score;
          best = slot;
        }
      }
      const DocumentTable::Chunk& c = table_.chunk(best);
      QueryHit hit{doc->id, c.ordinal, c.text, best_score, doc->metadata};
      hit.ref_of = h.doc_id;
      pulled.push_back(std::move(hit));
    }
  }
  for (auto& p : pulled) hits->push_back(std::move(p));
}

}  // namespace contextd
