// Collection's side of a query whose shards are spread over several nodes (cluster mode):
// the part a node holding some shards answers (Candidates), the answer assembled from the
// parts (Assemble), and the asking node's whole query (QueryAcrossNodes): route by
// centroid, ask the router for each shard's part, widen as a single node's search does,
// assemble. See QueryExecutor::Gather and ::Assemble for why the answer is a single
// node's.
#include <algorithm>

#include "engine/collection.h"

namespace contextd {

StatusOr<ShardCandidates> Collection::Candidates(const RequestContext& ctx, const QueryRequest& req,
                                                 const std::vector<uint32_t>& vector_shards,
                                                 const std::vector<uint32_t>& keyword_shards, QueryMode* mode) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the search"));
  QueryResult unused;
  std::vector<float> qvec;
  std::vector<std::string> terms;
  std::vector<float> term_weights;
  CTX_RETURN_IF_ERROR(QueryInputs(ctx, req, &unused, mode, &qvec, &terms, &term_weights));
  ShardCandidates out;
  ReaderLock lock(&mu_);
  const QueryExecutor executor(table_, shards_, *analyzer_, config_);
  CTX_RETURN_IF_ERROR(
      executor.Gather(ctx, req, {*mode, &qvec, &terms, &term_weights}, vector_shards, keyword_shards, &out));
  return out;
}

StatusOr<QueryResult> Collection::Assemble(const RequestContext& ctx, const QueryRequest& req, QueryMode mode,
                                           const std::vector<ShardCandidates>& parts) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  QueryResult result;
  result.mode = mode;
  CTX_RETURN_IF_ERROR(QueryExecutor::Assemble(ctx, req, mode, static_cast<size_t>(config_.dim), parts, &result));
  ReaderLock lock(&mu_);
  for (QueryHit& hit : result.hits) {
    const DocumentTable::Document* doc = table_.Find(hit.doc_id);
    // Written since the parts were gathered: the hit went with its document's old version.
    if (doc == nullptr || hit.chunk >= doc->slots.size()) continue;
    hit.text = table_.chunk(doc->slots[hit.chunk]).text();
    hit.metadata = doc->metadata;
  }
  return result;
}

std::vector<uint32_t> Collection::ShardIds() const {
  ReaderLock lock(&mu_);
  return shards_.shard_ids();
}

std::vector<uint32_t> Collection::ShardsToSpread(const ShardRouter& router, QueryMode mode) const {
  ReaderLock lock(&mu_);
  if (router.AsksHolders()) return shards_.shard_ids();
  if (mode == QueryMode::kKeyword) return {};
  return shards_.UnlinkedGraphShards();
}

Status Collection::QueryAcrossNodes(const RequestContext& ctx, const QueryRequest& req, ShardRouter& router,
                                    const QueryExecutor::Input& in, QueryResult* result,
                                    QueryExecutor::Extras* extras) const {
  const QueryMode mode = in.mode;
  ShardQuery q;
  q.tenant = tenant_;
  q.collection = name_;
  q.collection_id = id_;
  q.timeout_ms = ctx.RemainingMs();
  q.request = req;
  q.request.mode = mode;  // as resolved here (a hybrid whose embedding failed is keyword)
  q.request.vector.reset();
  if (mode != QueryMode::kKeyword) q.request.vector = *in.vector;  // embedded once, here
  std::vector<uint32_t> all;
  QueryResult::Route route;
  {
    ReaderLock lock(&mu_);
    // A holder answers once it has applied what this node had applied to the collection
    // (its splits included): the answer is at least as fresh as this node's own.
    q.read_after = applied_sequence_;
    all = shards_.shard_ids();
    if (mode != QueryMode::kKeyword && !req.all_shards) {
      route = shards_.Route(in.vector->data(), req.routing ? &*req.routing : nullptr);
    }
  }
  if (req.all_shards) {
    route.shards = all;
    route.shard_count = all.size();
    route.confident = false;
  }
  if (mode != QueryMode::kKeyword) q.vector_shards = route.shards;
  if (mode != QueryMode::kVector) q.keyword_shards = all;  // keywords do not follow the centroids
  std::vector<ShardCandidates> parts;
  ShardRouter::Coverage coverage;
  CTX_RETURN_IF_ERROR(router.Gather(ctx, q, &parts, &coverage));
  const size_t depth = QueryExecutor::Depth(req, mode);
  size_t vector_candidates = 0;
  for (const ShardCandidates& p : parts) vector_candidates += p.by_vector.size();
  if (mode != QueryMode::kKeyword && vector_candidates < depth && route.shards.size() < all.size()) {
    // As a single node's search: the routed shards hold too few, so every other one too.
    ShardQuery rest = q;
    rest.keyword_shards.clear();
    rest.vector_shards.clear();
    for (uint32_t id : all) {
      if (std::find(route.shards.begin(), route.shards.end(), id) == route.shards.end()) {
        rest.vector_shards.push_back(id);
      }
    }
    rest.timeout_ms = ctx.RemainingMs();
    CTX_RETURN_IF_ERROR(router.Gather(ctx, rest, &parts, &coverage));  // both appends
    route.widened = true;
    route.shards.insert(route.shards.end(), rest.vector_shards.begin(), rest.vector_shards.end());
  }
  CTX_ASSIGN_OR_RETURN(QueryResult assembled, Assemble(ctx, req, mode, parts));
  result->hits = std::move(assembled.hits);
  result->rank_fused = assembled.rank_fused;
  if (mode != QueryMode::kKeyword) result->route = std::move(route);
  const auto distinct = [](auto v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v.size();
  };
  const size_t asked = distinct(coverage.asked);
  result->coverage = QueryResult::Coverage{asked, asked - distinct(coverage.missing), distinct(coverage.nodes)};
  // What the query cache needs: the score a new chunk must beat to enter the vector list.
  std::vector<float> scores;
  for (const ShardCandidates& p : parts)
    for (const CandidateChunk& c : p.by_vector) scores.push_back(c.score);
  if (scores.size() >= depth && depth > 0) {
    std::nth_element(scores.begin(), scores.begin() + static_cast<ptrdiff_t>(depth - 1), scores.end(),
                     std::greater<float>());
    extras->vector_bar = scores[depth - 1];
  }
  if (req.expand_refs) {
    // Every node stores every document: the cited ones are read here.
    ReaderLock lock(&mu_);
    const QueryExecutor executor(table_, shards_, *analyzer_, config_);
    executor.ExpandRefs(*in.vector, *in.terms, &result->hits, &extras->cited);
  }
  return Status::Ok();
}

}  // namespace contextd
