#include "engine/query_executor.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "common/hash.h"
#include "engine/rerank.h"

namespace contextd {

size_t QueryExecutor::Want(const QueryRequest& req) {
  // Grouping and diversity choose among more candidates than they return.
  const bool rerank = req.group_by_document || req.mmr_lambda.has_value();
  return rerank ? std::min<size_t>(std::max<size_t>(req.k * 4, 40), kMaxK * 4) : req.k;
}

size_t QueryExecutor::Depth(const QueryRequest& req, QueryMode mode) {
  if (mode != QueryMode::kHybrid) return Want(req);
  // Each list brings `depth` candidates, by default as many as the answer holds (the
  // window Elasticsearch's and Couchbase's RRF default to). Deeper windows were worse
  // here, not better: on SciFact's 809 training claims at k = 10, nDCG@10 is 0.59 at
  // depth 10, 0.55 at 20, 0.53 at 30 and 0.48 at 60 (the old default), because a deep
  // window lets chunks ranked middling on both sides outvote the top of either list.
  // Shallow lists are also cheaper: BM25 prunes at k <= 32. The default fusion judges
  // each list by the spread of its scores: it needs a few of them, whatever k is.
  return std::max({req.depth, Want(req), req.fusion == Fusion::kAuto ? kAutoFusionMinDepth : size_t{0}});
}

namespace {

// A hybrid query's graph breadth: its floor is 48 rather than a vector query's 64: the
// fused top 10 had the same nDCG@10 there (0.5911 at ef 48, 0.5906 at 64; 0.5848 at 32)
// for ~5% more hybrid throughput.
size_t HybridEf(const QueryRequest& req, size_t depth) { return req.ef != 0 ? req.ef : std::max<size_t>(depth, 48); }

std::optional<Bm25Params> Bm25Of(const QueryRequest& req) {
  if (!req.bm25_k1 && !req.bm25_b) return std::nullopt;
  Bm25Params bm25;
  if (req.bm25_k1) bm25.k1 = *req.bm25_k1;
  if (req.bm25_b) bm25.b = *req.bm25_b;
  return bm25;
}

}  // namespace

std::vector<ScoredSlot> QueryExecutor::Fuse(const QueryRequest& req, QueryMode mode, std::vector<ScoredSlot> by_vector,
                                            std::vector<ScoredSlot> by_keyword, size_t want) {
  if (mode == QueryMode::kVector) return by_vector;
  if (mode == QueryMode::kKeyword) return by_keyword;
  switch (req.fusion) {
    case Fusion::kAuto:
      return FuseAuto(by_vector, by_keyword, want);
    case Fusion::kRrf:
      return FuseRrf({by_vector, by_keyword}, want, kRrfK);
    case Fusion::kWeighted:
      return FuseWeighted(by_vector, by_keyword, req.alpha, want);
  }
  return {};
}

void QueryExecutor::GroupByDocument(const std::function<std::string_view(uint32_t)>& doc_of,
                                    std::vector<ScoredSlot>* ranked) {
  // The best chunk of each document, in rank order.
  std::vector<ScoredSlot> grouped;
  std::unordered_set<std::string_view> seen;
  for (const auto& r : *ranked) {
    if (seen.insert(doc_of(r.slot)).second) grouped.push_back(r);
  }
  *ranked = std::move(grouped);
}

Status QueryExecutor::Rank(const RequestContext& ctx, const QueryRequest& req, QueryMode mode,
                           std::vector<ScoredSlot> by_vector, std::vector<ScoredSlot> by_keyword, size_t dim,
                           const std::function<std::string_view(uint32_t)>& doc_of,
                           const std::function<bool(uint32_t, float*)>& vector_of, std::vector<ScoredSlot>* ranked) {
  *ranked = Fuse(req, mode, std::move(by_vector), std::move(by_keyword), Want(req));
  if (req.group_by_document) GroupByDocument(doc_of, ranked);
  if (req.mmr_lambda && !ranked->empty()) {
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("reranking (mmr)"));
    std::vector<float> vecs(ranked->size() * dim);
    for (size_t i = 0; i < ranked->size(); ++i) vector_of((*ranked)[i].slot, vecs.data() + i * dim);
    *ranked = Mmr(*ranked, vecs.data(), dim, *req.mmr_lambda, req.k);
  }
  if (ranked->size() > req.k) ranked->resize(req.k);
  return Status::Ok();
}

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
  const std::optional<Bm25Params> bm25 = Bm25Of(req);
  const ShardingOptions* routing = req.routing ? &*req.routing : nullptr;
  const size_t depth = Depth(req, mode);
  std::vector<ScoredSlot> by_vector, by_keyword;
  QueryResult::Route route;
  if (mode == QueryMode::kVector) {
    by_vector = shards_.Search(qvec.data(), depth, req.ef, allowed_ptr, req.all_shards, routing, &route);
  } else if (mode == QueryMode::kHybrid) {
    by_vector = shards_.Search(qvec.data(), depth, HybridEf(req, depth), allowed_ptr, req.all_shards, routing, &route);
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the keyword search"));
  }
  // For the query cache's evidence, a few chunks past the keyword list are watched too.
  const bool evidence = in.evidence && mode != QueryMode::kVector && !req.mmr_lambda;
  const size_t watch = evidence ? depth + kWatchedPastList : depth;
  std::vector<ScoredSlot> watched;
  if (mode != QueryMode::kVector) {
    by_keyword = table_.keywords().Search(terms, watch, allowed_ptr, bm25 ? &*bm25 : nullptr, in.term_weights);
    if (evidence) watched = by_keyword;
    if (by_keyword.size() > depth) by_keyword.resize(depth);
  }
  ctx.usage.chunks_scored += static_cast<int64_t>(by_vector.size() + by_keyword.size());
  if (by_vector.size() >= depth) extras->vector_bar = by_vector.back().score;
  const auto doc_of = [&](uint32_t slot) { return std::string_view(table_.chunk(slot).doc->id); };
  std::vector<ScoredSlot> fused_vector;
  if (evidence) fused_vector = by_vector;
  std::vector<ScoredSlot> ranked;
  CTX_RETURN_IF_ERROR(Rank(
      ctx, req, mode, std::move(by_vector), std::move(by_keyword), static_cast<size_t>(config_.dim), doc_of,
      [&](uint32_t slot, float* out) { return shards_.CopyVector(slot, out); }, &ranked));
  if (evidence) {
    std::vector<uint32_t> ranked_slots;
    for (const auto& r : ranked) ranked_slots.push_back(r.slot);
    const std::vector<float> unit(terms.size(), 1.0f);
    extras->keyword_evidence = CollectKeywordEvidence(
        table_.keywords(), terms, in.term_weights != nullptr ? *in.term_weights : unit,
        bm25 ? *bm25 : table_.keywords().params(), watched, watched.size() < watch, depth, mode, req, fused_vector,
        ranked_slots, [&](uint32_t slot) { return std::string(doc_of(slot)); });
    if (extras->keyword_evidence) {
      for (const auto* list : {&watched, &fused_vector})
        for (const ScoredSlot& s : *list) extras->keyword_evidence->candidate_docs.push_back(Hash64(doc_of(s.slot)));
      std::sort(extras->keyword_evidence->candidate_docs.begin(), extras->keyword_evidence->candidate_docs.end());
    }
  }
  result->hits.reserve(ranked.size());
  for (const auto& r : ranked) {
    const DocumentTable::Chunk& c = table_.chunk(r.slot);
    result->hits.push_back({c.doc->id, c.ordinal, std::string(c.text()), r.score, c.doc->metadata});
  }
  if (req.expand_refs) ExpandRefs(qvec, terms, &result->hits, &extras->cited);
  if (mode != QueryMode::kKeyword) result->route = std::move(route);
  result->rank_fused = mode == QueryMode::kHybrid && req.fusion == Fusion::kRrf;
  return Status::Ok();
}

Status QueryExecutor::Gather(const RequestContext& ctx, const QueryRequest& req, const Input& in,
                             const std::vector<uint32_t>& vector_shards, const std::vector<uint32_t>& keyword_shards,
                             ShardCandidates* out) const {
  const QueryMode mode = in.mode;
  SlotBitset allowed;
  if (!req.filter.empty()) allowed = req.filter.Select(table_.payload());
  const SlotBitset* allowed_ptr = req.filter.empty() ? nullptr : &allowed;
  const size_t depth = Depth(req, mode);
  std::vector<ScoredSlot> by_vector, by_keyword;
  // The asker may see the layout before or after a split this node has (not) built yet.
  CTX_ASSIGN_OR_RETURN(const std::vector<uint32_t> keyword_here, shards_.Resolve(keyword_shards));
  if (mode != QueryMode::kKeyword && !vector_shards.empty()) {
    const size_t ef = mode == QueryMode::kHybrid ? HybridEf(req, depth) : req.ef;
    CTX_ASSIGN_OR_RETURN(const std::vector<uint32_t> vector_here, shards_.Resolve(vector_shards));
    CTX_ASSIGN_OR_RETURN(by_vector, shards_.SearchIn(vector_here, in.vector->data(), depth, ef, allowed_ptr));
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the keyword search"));
  }
  if (mode != QueryMode::kVector && !keyword_here.empty()) {
    const std::optional<Bm25Params> bm25 = Bm25Of(req);
    if (keyword_here.size() == shards_.size()) {
      // Every shard: the plain search, which can prune, rather than a member filter.
      by_keyword = table_.keywords().Search(*in.terms, depth, allowed_ptr, bm25 ? &*bm25 : nullptr, in.term_weights);
    } else {
      // The shards' chunks only, scored with the whole collection's statistics.
      SlotBitset members =
          shards_.MembersOf(keyword_here, req.filter.empty() ? table_.slot_count() : allowed.universe());
      if (allowed_ptr != nullptr) members.And(allowed);
      by_keyword = table_.keywords().Search(*in.terms, depth, &members, bm25 ? &*bm25 : nullptr, in.term_weights);
    }
  }
  out->chunks_scored = static_cast<int64_t>(by_vector.size() + by_keyword.size());
  ctx.usage.chunks_scored += out->chunks_scored;
  const size_t dim = static_cast<size_t>(config_.dim);
  const auto fill = [&](const std::vector<ScoredSlot>& list, std::vector<CandidateChunk>* into) {
    for (const ScoredSlot& s : list) {
      const DocumentTable::Chunk& c = table_.chunk(s.slot);
      CandidateChunk chunk{s.slot, s.score, c.doc->id, c.ordinal, {}};
      if (req.mmr_lambda) {
        chunk.vector.resize(dim);
        shards_.CopyVector(s.slot, chunk.vector.data());
      }
      into->push_back(std::move(chunk));
    }
  };
  fill(by_vector, &out->by_vector);
  fill(by_keyword, &out->by_keyword);
  return Status::Ok();
}

Status QueryExecutor::Assemble(const RequestContext& ctx, const QueryRequest& req, QueryMode mode, size_t dim,
                               const std::vector<ShardCandidates>& parts, QueryResult* result) {
  // Every chunk the parts name, once (a chunk may be in both lists), numbered in slot
  // order so that the ranking's ties break as one node's do.
  std::vector<const CandidateChunk*> pool;
  for (const ShardCandidates& part : parts) {
    ctx.usage.chunks_scored += part.chunks_scored;
    for (const auto* list : {&part.by_vector, &part.by_keyword})
      for (const CandidateChunk& c : *list) pool.push_back(&c);
  }
  const auto key = [](const CandidateChunk* c) { return std::tie(c->slot, c->doc_id, c->ordinal); };
  std::sort(pool.begin(), pool.end(), [&](const auto* a, const auto* b) { return key(a) < key(b); });
  pool.erase(
      std::unique(pool.begin(), pool.end(),
                  [](const auto* a, const auto* b) { return a->doc_id == b->doc_id && a->ordinal == b->ordinal; }),
      pool.end());
  const auto id_of = [&](const CandidateChunk& c) {
    return static_cast<uint32_t>(
        std::lower_bound(pool.begin(), pool.end(), &c, [&](const auto* a, const auto* b) { return key(a) < key(b); }) -
        pool.begin());
  };
  // Each list merged by score, as deep as one node's would be.
  const size_t depth = Depth(req, mode);
  const auto merged = [&](std::vector<CandidateChunk> ShardCandidates::*list) {
    std::vector<ScoredSlot> out;
    for (const ShardCandidates& part : parts)
      for (const CandidateChunk& c : part.*list) out.push_back({c.score, id_of(c)});
    std::sort(out.begin(), out.end(), [](const ScoredSlot& a, const ScoredSlot& b) {
      return a.score != b.score ? a.score > b.score : a.slot < b.slot;
    });
    // A chunk two parts both name (a node answering a shard it has not split yet answers
    // for its siblings too) counts once.
    std::vector<char> seen(pool.size(), 0);
    out.erase(std::remove_if(out.begin(), out.end(),
                             [&](const ScoredSlot& s) { return std::exchange(seen[s.slot], 1) != 0; }),
              out.end());
    if (out.size() > depth) out.resize(depth);
    return out;
  };
  std::vector<ScoredSlot> ranked;
  CTX_RETURN_IF_ERROR(Rank(
      ctx, req, mode, merged(&ShardCandidates::by_vector), merged(&ShardCandidates::by_keyword), dim,
      [&](uint32_t id) { return std::string_view(pool[id]->doc_id); },
      [&](uint32_t id, float* out) {
        if (pool[id]->vector.size() != dim) return false;
        std::copy(pool[id]->vector.begin(), pool[id]->vector.end(), out);
        return true;
      },
      &ranked));
  result->hits.reserve(ranked.size());
  for (const auto& r : ranked) {
    const CandidateChunk& c = *pool[r.slot];
    result->hits.push_back({c.doc_id, c.ordinal, "", r.score, Json::MakeObject()});
  }
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
          analyzer_.Analyze(table_.chunk(slot).text(), &chunk_terms);
          for (const auto& t : chunk_terms) score += query_terms.count(t) > 0;
        }
        if (score > best_score) {
          best_score = score;
          best = slot;
        }
      }
      const DocumentTable::Chunk& c = table_.chunk(best);
      QueryHit hit{doc->id, c.ordinal, std::string(c.text()), best_score, doc->metadata};
      hit.ref_of = h.doc_id;
      pulled.push_back(std::move(hit));
    }
  }
  for (auto& p : pulled) hits->push_back(std::move(p));
}

}  // namespace contextd
