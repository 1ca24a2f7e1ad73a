#include "engine/query_cache_layer.h"

#include <random>

#include "common/hash.h"

namespace contextd {
namespace {

// The query cache serves on cosine alone unless a verifier veto fires: its threshold (0.98
// by default) already asks for near-identical queries, so no confidence is required.
const VerifyPolicy& VetoesOnly() {
  static const VerifyPolicy policy = [] {
    VerifyPolicy p;
    p.min_confidence = 0;
    return p;
  }();
  return policy;
}

QueryCacheOptions CacheOptions(const CollectionConfig& c) {
  QueryCacheOptions o;
  o.enabled = c.cache_enabled;
  o.threshold = c.cache_threshold;
  for (int t = 0; t < 3; ++t) {
    o.tiers[t].max_bytes = static_cast<size_t>(c.cache_tier_mb[t]) << 20;
    o.tiers[t].ttl_ms = static_cast<int64_t>(c.cache_tier_ttl_s[t]) * 1000;
  }
  return o;
}

std::vector<std::string> HitIds(const QueryResult& r) {
  std::vector<std::string> ids;
  for (const auto& h : r.hits) ids.push_back(h.doc_id + "#" + std::to_string(h.chunk));
  return ids;
}

}  // namespace

QueryCacheLayer::QueryCacheLayer(const CollectionConfig& config, const Clock* clock, StatsReader stats)
    : verify_fraction_(config.cache_enabled ? config.cache_verify_fraction : 0.0f),
      cache_(CacheOptions(config), config.metric, config.dim, clock),
      stats_(std::move(stats)) {}

QueryCacheLayer::~QueryCacheLayer() { Stop(); }

void QueryCacheLayer::StartVerifier(std::function<StatusOr<QueryResult>(const QueryRequest&)> search) {
  if (verify_fraction_ <= 0) return;
  search_ = std::move(search);
  verifier_ = std::thread([this] { VerifyLoop(); });
}

void QueryCacheLayer::Stop() {
  {
    MutexLock lock(&verify_mu_);
    verify_stop_ = true;
  }
  verify_cv_.notify_all();
  if (verifier_.joinable()) verifier_.join();
}

QueryCacheLayer::Pass QueryCacheLayer::Begin(const QueryRequest& req, QueryResult* result) const {
  Pass pass;
  pass.active = cache_.enabled() && !req.cache_bypass;
  if (!pass.active) {
    result->cache = req.cache_bypass ? "bypass" : "off";
    return pass;
  }
  // The write count first: Insert() refuses a result computed across a write.
  pass.snapshot = cache_.Snapshot();
  pass.params_key = QueryCacheKey(req);
  std::string query =
      req.vector ? std::string(reinterpret_cast<const char*>(req.vector->data()), req.vector->size() * sizeof(float))
                 : req.text;
  if (req.vector && req.mode != QueryMode::kVector) {
    // A vector given with text: the text still picks the keyword side, so it is part of
    // the query, and a close vector says nothing about it (no semantic tier).
    query.push_back('\0');
    query += req.text;
    pass.semantic = false;
  }
  pass.exact_key = Cache::ExactKey(pass.params_key, query);
  if (!req.vector) pass.text = req.text;
  return pass;
}

std::optional<QueryResult> QueryCacheLayer::Serve(Cache::Hit& hit) {
  if (!hit.recheck) return std::move(hit.result.result);
  // Writes came since this answer was last known to stand: re-checked against the
  // statistics now (outside the cache's lock: reading them takes the collection's).
  std::vector<float> scores;
  const bool passed =
      hit.result.evidence != nullptr && stats_ && Recheck(*hit.result.evidence, stats_(*hit.result.evidence), &scores);
  QueryResult served = std::move(hit.result.result);
  const auto rescore = [&scores](QueryResult* r) {
    for (size_t i = 0; i < scores.size() && i < r->hits.size(); ++i) r->hits[i].score = scores[i];
  };
  if (!cache_.Confirm(hit, passed, [&](Cached* c) { rescore(&c->result); })) return std::nullopt;
  rescore(&served);
  return served;
}

std::optional<QueryResult> QueryCacheLayer::FindExact(const Pass& pass, const QueryRequest& req) {
  if (!pass.active) return std::nullopt;
  auto found = cache_.LookupExact(pass.exact_key);
  if (!found) return std::nullopt;
  auto hit = Serve(*found);
  if (!hit) return std::nullopt;
  MaybeVerify(req, *hit);
  hit->cache = "exact";
  hit->cache_tier = QueryCacheTierName(found->tier);
  return hit;
}

std::optional<QueryResult> QueryCacheLayer::FindSimilar(const Pass& pass, const QueryRequest& req,
                                                        const std::vector<float>& vector) {
  if (!pass.active || !pass.semantic || vector.empty()) return std::nullopt;
  // A close embedding is not the same question: "side effects of drug X in 2019" and "...
  // in 2020" embed alike. A cached query that conflicts with this one (another number,
  // name, negation, opposite or direction; the LLM cache's verifier, vetoes only) is not
  // served. The query's facts are worked out once, only when some entry is close enough.
  std::optional<PromptFacts> facts;
  const auto accept = [&](const QueryCacheEntry<Cached>& e, float sim) {
    if (pass.text.empty() || !e.facts) return true;
    if (!facts) facts = AnalyzePrompt(pass.text);
    return Verify(*facts, *e.facts, sim, VetoesOnly()).vetoed_by.empty();
  };
  auto found = cache_.LookupSemantic(pass.params_key, vector, accept);
  if (!found) return std::nullopt;
  auto hit = Serve(*found);
  if (!hit) return std::nullopt;
  MaybeVerify(req, *hit);
  hit->cache = "semantic";
  hit->cache_tier = QueryCacheTierName(found->tier);
  hit->cache_similarity = found->similarity;
  return hit;
}

void QueryCacheLayer::Store(const Pass& pass, QueryMode mode, const std::vector<float>& vector,
                            QueryExecutor::Extras& extras, const QueryResult& result) {
  if (!pass.active) return;
  cache_.CountMiss();
  if (!pass.snapshot || result.degraded) return;
  QueryCacheEntry<Cached> entry;
  entry.params_key = pass.params_key;
  entry.query_vector = vector;
  entry.semantic = pass.semantic;
  entry.uses_vector = mode != QueryMode::kKeyword;
  entry.uses_terms = mode != QueryMode::kVector;
  entry.vector_bar = extras.vector_bar;
  if (!pass.text.empty()) entry.facts = AnalyzePrompt(pass.text);
  // The facts hold about the text's size in words and a trigram hash per character.
  size_t bytes = sizeof(entry) + vector.size() * sizeof(float) + pass.params_key.size() + pass.text.size() * 6;
  for (const auto& id : extras.cited) entry.doc_ids.insert(id);
  for (const auto& h : result.hits) {
    entry.doc_ids.insert(h.doc_id);
    bytes += h.doc_id.size() * 2 + h.text.size() + 128;
  }
  if (extras.keyword_evidence) {
    bytes += extras.keyword_evidence->bytes();
    entry.result.evidence = std::make_shared<const KeywordEvidence>(std::move(*extras.keyword_evidence));
  }
  entry.bytes = bytes;
  entry.result.result = result;
  cache_.Insert(*pass.snapshot, pass.exact_key, std::move(entry));
}

void QueryCacheLayer::EndWrite(const WriteChange& change, const std::vector<ChunkTerms>* new_chunks) {
  if (new_chunks == nullptr) {
    cache_.EndWrite(change);
    return;
  }
  std::vector<uint64_t> changed;
  for (const auto& id : change.doc_ids) changed.push_back(Hash64(id));
  cache_.EndWrite(change, [new_chunks, &changed](const QueryCacheEntry<Cached>& e) {
    const KeywordEvidence* evidence = e.result.evidence.get();
    if (evidence == nullptr || TouchesCandidates(*evidence, changed)) return false;
    for (const ChunkTerms& chunk : *new_chunks) {
      if (NewChunkCanEnter(*evidence, chunk)) return false;
    }
    return true;
  });
}

void QueryCacheLayer::MaybeVerify(const QueryRequest& req, const QueryResult& served) {
  if (verify_fraction_ <= 0 || !search_) return;
  thread_local std::mt19937 rng{std::random_device{}()};
  if (std::uniform_real_distribution<float>(0, 1)(rng) >= verify_fraction_) return;
  MutexLock lock(&verify_mu_);
  if (verify_queue_.size() >= 64) return;  // the check is a sample: drop rather than queue up
  QueryRequest fresh = req;
  fresh.cache_bypass = true;
  verify_queue_.emplace_back(std::move(fresh), HitIds(served));
  verify_cv_.notify_one();
}

void QueryCacheLayer::VerifyLoop() {
  while (true) {
    std::pair<QueryRequest, std::vector<std::string>> job;
    {
      MutexLock lock(&verify_mu_);
      // The predicate runs with verify_mu_ held (the analysis cannot see into it).
      lock.Wait(verify_cv_, [&]() NO_THREAD_SAFETY_ANALYSIS { return verify_stop_ || !verify_queue_.empty(); });
      if (verify_stop_) return;
      job = std::move(verify_queue_.front());
      verify_queue_.pop_front();
    }
    auto fresh = search_(job.first);
    if (fresh.ok()) cache_.CountVerified(HitIds(*fresh) != job.second);
  }
}

}  // namespace contextd
