#include "engine/collection.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "engine/rerank.h"

namespace contextd {
namespace {

// Chunk records: see EncodeChunk in collection_writes.cc.
bool DecodeChunk(std::string_view value, int dim, uint32_t* slot, std::string_view* text, const char** vec) {
  if (value.size() < 8) return false;
  uint32_t len;
  std::memcpy(slot, value.data(), 4);
  std::memcpy(&len, value.data() + 4, 4);
  if (value.size() != 8 + static_cast<size_t>(len) + sizeof(float) * dim) return false;
  *text = value.substr(8, len);
  *vec = value.data() + 8 + len;
  return true;
}

double Millis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

// Marks title-field terms in the keyword index; the analyzer never emits it.
const std::string kTitleField = "\x01";
// Titles are already in the body (every chunk carries its title). Measured on SciFact
// (bench/retrieval_quality): an extra title-field weight of 0 / 0.25 / 0.5 / 1 / 2 gives
// nDCG@10 0.700 / 0.694 / 0.687 / 0.649 / 0.594, so the default adds none; queries may
// ask for more with "bm25":{"title_boost":..}.
constexpr float kDefaultTitleBoost = 0.0f;

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

}  // namespace

Collection::Collection(std::string tenant, std::string name, uint64_t id, CollectionConfig config,
                       std::shared_ptr<const Embedder> embedder, Store* store, UpdateLog* log, const Clock* clock,
                       std::string vector_dir)
    : tenant_(std::move(tenant)),
      name_(std::move(name)),
      id_(id),
      config_(std::move(config)),
      embedder_(std::move(embedder)),
      store_(store),
      log_(log),
      clock_(clock),
      vector_dir_(std::move(vector_dir)),
      analyzer_(std::move(MakeAnalyzer(config_.analyzer).value())),
      query_cache_(
          std::make_unique<QueryCache<QueryResult>>(CacheOptions(config_), config_.metric, config_.dim, clock)) {
  auto shard = std::make_shared<Shard>();
  shard->id = next_shard_id_++;
  shard->centroid.assign(static_cast<size_t>(config_.dim), 0.0f);
  shard->graph = NewGraph();
  SetShardsLocked({std::move(shard)});
  if (config_.cache_enabled && config_.cache_verify_fraction > 0) verifier_ = std::thread([this] { VerifyLoop(); });
}

HnswParams Collection::GraphParams() const {
  HnswParams params{config_.hnsw_m, config_.hnsw_ef_construction, 42, config_.int8};
  params.vector_dir = vector_dir_;
  return params;
}

std::shared_ptr<HnswIndex> Collection::NewGraph() const {
  return std::make_shared<HnswIndex>(config_.dim, config_.metric, GraphParams());
}

Collection::~Collection() {
  stop_ = true;
  WaitForSplits();
  {
    std::lock_guard<std::mutex> lock(verify_mu_);
    verify_stop_ = true;
  }
  verify_cv_.notify_all();
  if (verifier_.joinable()) verifier_.join();
}

namespace {
std::vector<std::string> HitIds(const QueryResult& r) {
  std::vector<std::string> ids;
  for (const auto& h : r.hits) ids.push_back(h.doc_id + "#" + std::to_string(h.chunk));
  return ids;
}
}  // namespace

void Collection::MaybeVerify(const QueryRequest& req, const QueryResult& served) const {
  const float fraction = config_.cache_verify_fraction;
  if (fraction <= 0) return;
  thread_local std::mt19937 rng{std::random_device{}()};
  if (std::uniform_real_distribution<float>(0, 1)(rng) >= fraction) return;
  std::lock_guard<std::mutex> lock(verify_mu_);
  if (verify_queue_.size() >= 64) return;  // the check is a sample: drop rather than queue up
  QueryRequest fresh = req;
  fresh.cache_bypass = true;
  verify_queue_.emplace_back(std::move(fresh), HitIds(served));
  verify_cv_.notify_one();
}

void Collection::VerifyLoop() {
  std::unique_lock<std::mutex> lock(verify_mu_);
  while (true) {
    verify_cv_.wait(lock, [&] { return verify_stop_ || !verify_queue_.empty(); });
    if (verify_stop_) return;
    auto [req, served] = std::move(verify_queue_.front());
    verify_queue_.pop_front();
    lock.unlock();
    auto fresh = Query(req);
    if (fresh.ok()) query_cache_->CountVerified(HitIds(*fresh) != served);
    lock.lock();
  }
}

std::string Collection::IndexText(const std::string& title, const std::string& chunk) const {
  // The title travels with every chunk of its document: it names the topic that a chunk
  // from the middle of a long text may never mention.
  if (title.empty()) return chunk;
  if (chunk.empty()) return title;
  return title + "\n" + chunk;
}

void Collection::IndexTerms(const std::string& title, const std::string& chunk, std::vector<std::string>* terms) const {
  analyzer_->Analyze(IndexText(title, chunk), terms);
  if (title.empty()) return;
  // The title again as its own field (terms marked with kTitleField), so queries can
  // weigh a match in the title above one in the body, as BM25 over fields does.
  std::vector<std::string> title_terms;
  analyzer_->Analyze(title, &title_terms);
  for (auto& t : title_terms) terms->push_back(kTitleField + t);
}

Status Collection::EmbedTexts(const RequestContext& ctx, const std::vector<std::string>& texts, EmbedPriority priority,
                              std::vector<float>* out) const {
  if (embedder_ == nullptr) {
    return Unavailable(
        "collection '" + name_ + "' needs embedding model '" + config_.model + "', which is not loaded on this server",
        "embedder_unavailable");
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());
  out->resize(texts.size() * static_cast<size_t>(config_.dim));
  // Metered embedders (providers, queued models) bill by token; in-process ones do not.
  if (embedder_->waits()) ctx.CountEmbeddingTokens(views);
  return embedder_->EmbedWith(views, EmbedOptionsFor(ctx, priority, *embedder_), out->data());
}

void Collection::MaybeRepairGraph() {
  // Tombstones cost memory and search time, and the graph's paths through them age; once
  // they are a tenth of the graph, reconnect around them and free their ids. The request
  // that crosses the line pays for it (a background maintainer is future work).
  std::vector<std::shared_ptr<HnswIndex>> due;
  {
    ReaderLock lock(&mu_);
    for (const auto& shard : shards_) {
      const size_t dead = shard->graph->deleted_count();
      if (!shard->splitting && dead >= kRepairMinTombstones && dead * 10 >= shard->graph->node_count())
        due.push_back(shard->graph);
    }
  }
  if (due.empty()) return;
  bool idle = false;
  if (!repairing_.compare_exchange_strong(idle, true)) return;
  const int64_t t0 = clock_->NowNanos();
  size_t removed = 0;
  for (const auto& graph : due) removed += graph->RepairDeleted();
  repairing_ = false;
  spdlog::info("collection {}: removed {} deleted nodes from the graph in {:.1f} ms", name_, removed,
               Millis(clock_->NowNanos() - t0));
}

StatusOr<StoredDocument> Collection::GetDocument(const std::string& id) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  CTX_ASSIGN_OR_RETURN(auto value, store_->GetDocument(tenant_, id_, id));
  if (!value) return NotFound("document '" + id + "' not found in collection '" + name_ + "'");
  // The record as collection_writes.cc stores it.
  CTX_ASSIGN_OR_RETURN(Json record, ParseJson(*value));
  StoredDocument doc;
  doc.id = id;
  if (const Json* t = record.Find("title"); t != nullptr && t->is_string()) doc.title = t->as_string();
  if (const Json* t = record.Find("text"); t != nullptr && t->is_string()) doc.text = t->as_string();
  if (const Json* m = record.Find("metadata"); m != nullptr && m->is_object()) doc.metadata = *m;
  if (const Json* refs = record.Find("refs"); refs != nullptr && refs->is_array()) {
    for (const Json& r : refs->as_array())
      if (r.is_string()) doc.refs.push_back(r.as_string());
  }
  if (const Json* n = record.Find("chunks"); n != nullptr && n->is_int()) doc.chunks = static_cast<size_t>(n->as_int());
  return doc;
}

StatusOr<QueryResult> Collection::Query(const RequestContext& ctx, const QueryRequest& req) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the search"));
  QueryResult result;
  result.mode = req.mode;
  const int64_t t0 = clock_->NowNanos();
  // The cache first: an exact repeat needs no embedding. The write count is read before
  // anything else, so a result computed across a write is never cached.
  const bool use_cache = query_cache_->enabled() && !req.cache_bypass;
  const std::optional<uint64_t> snapshot = use_cache ? query_cache_->Snapshot() : std::nullopt;
  const std::string params_key = use_cache ? QueryCacheKey(req) : std::string();
  EmbedKey exact_key;
  if (use_cache) {
    exact_key = QueryCache<QueryResult>::ExactKey(
        params_key,
        req.vector ? std::string(reinterpret_cast<const char*>(req.vector->data()), req.vector->size() * sizeof(float))
                   : req.text);
    int tier = 0;
    if (auto hit = query_cache_->LookupExact(exact_key, &tier)) {
      MaybeVerify(req, *hit);
      hit->cache = "exact";
      hit->cache_tier = QueryCacheTierName(tier);
      ctx.usage.chunks_scored += static_cast<int64_t>(hit->hits.size());
      hit->embed_ms = 0;
      hit->search_ms = Millis(clock_->NowNanos() - t0);
      return std::move(*hit);
    }
  } else {
    result.cache = req.cache_bypass ? "bypass" : "off";
  }
  std::vector<float> qvec;
  QueryMode mode = req.mode;
  if (mode != QueryMode::kKeyword) {
    if (req.vector) {
      qvec = *req.vector;
    } else if (Status st = EmbedTexts(ctx, {req.text}, EmbedPriority::kQuery, &qvec); !st.ok()) {
      // A query with text can still be answered by keywords when the embedder cannot
      // serve it; a bad request (InvalidArgument) is still the caller's to fix.
      if (st.code() == StatusCode::kInvalidArgument || req.text.empty()) return st;
      mode = QueryMode::kKeyword;
      result.mode = mode;
      result.degraded = true;
      result.degraded_reason = st.message();
    }
  }
  std::vector<std::string> terms;
  std::vector<float> term_weights;
  if (mode != QueryMode::kVector) {
    analyzer_->Analyze(req.text, &terms);
    // Each term searches the body (weight 1) and the title field (the title boost).
    const float title_boost = req.title_boost.value_or(kDefaultTitleBoost);
    term_weights.assign(terms.size(), 1.0f);
    if (title_boost > 0) {
      const size_t n = terms.size();
      for (size_t i = 0; i < n; ++i) {
        terms.push_back(kTitleField + terms[i]);
        term_weights.push_back(title_boost);
      }
    }
  }
  const int64_t t1 = clock_->NowNanos();
  result.embed_ms = Millis(t1 - t0);
  if (use_cache && !qvec.empty() && !result.degraded) {
    float similarity = 0;
    int tier = 0;
    if (auto hit = query_cache_->LookupSemantic(params_key, qvec, &similarity, &tier)) {
      MaybeVerify(req, *hit);
      hit->cache = "semantic";
      hit->cache_tier = QueryCacheTierName(tier);
      ctx.usage.chunks_scored += static_cast<int64_t>(hit->hits.size());
      hit->cache_similarity = similarity;
      hit->embed_ms = result.embed_ms;
      hit->search_ms = Millis(clock_->NowNanos() - t1);
      return std::move(*hit);
    }
  }

  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the index search"));
  ReaderLock lock(&mu_);
  // A filter becomes the set of matching slots up front (from the payload index): its
  // size picks the vector search strategy, and membership tests are then one bit each.
  SlotBitset allowed;
  if (!req.filter.empty()) allowed = req.filter.Select(payload_);
  const SlotBitset* allowed_ptr = req.filter.empty() ? nullptr : &allowed;
  // Grouping and diversity choose among more candidates than they return.
  const bool rerank = req.group_by_document || req.mmr_lambda.has_value();
  const size_t want = rerank ? std::min<size_t>(std::max<size_t>(req.k * 4, 40), kMaxK * 4) : req.k;
  Bm25Params bm25;
  if (req.bm25_k1) bm25.k1 = *req.bm25_k1;
  if (req.bm25_b) bm25.b = *req.bm25_b;
  const Bm25Params* bm25_ptr = req.bm25_k1 || req.bm25_b ? &bm25 : nullptr;
  std::vector<ScoredSlot> ranked;
  QueryResult::Route route;
  // The score a new chunk must reach to enter this result's vector candidates (for cache
  // invalidation); none when the list was short, since then anything could enter.
  std::optional<float> vector_bar;
  if (mode == QueryMode::kVector) {
    ranked = VectorSearchLocked(qvec.data(), want, req.ef, allowed_ptr, req.all_shards,
                                req.routing ? &*req.routing : nullptr, &route);
    if (ranked.size() >= want) vector_bar = ranked.back().score;
    ctx.usage.chunks_scored += static_cast<int64_t>(ranked.size());
  } else if (mode == QueryMode::kKeyword) {
    ranked = keywords_.Search(terms, want, allowed_ptr, bm25_ptr, &term_weights);
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
    const size_t depth = std::max(req.depth, want);
    const size_t ef = req.ef != 0 ? req.ef : std::max<size_t>(depth, 48);
    std::vector<ScoredSlot> by_vector = VectorSearchLocked(qvec.data(), depth, ef, allowed_ptr, req.all_shards,
                                                           req.routing ? &*req.routing : nullptr, &route);
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the keyword search"));
    std::vector<ScoredSlot> by_keyword = keywords_.Search(terms, depth, allowed_ptr, bm25_ptr, &term_weights);
    ctx.usage.chunks_scored += static_cast<int64_t>(by_vector.size() + by_keyword.size());
    if (by_vector.size() >= depth) vector_bar = by_vector.back().score;
    ranked = req.fusion == Fusion::kRrf ? FuseRrf({by_vector, by_keyword}, want, kRrfK)
                                        : FuseWeighted(by_vector, by_keyword, req.alpha, want);
  }
  if (req.group_by_document) {
    // The best chunk of each document, in rank order.
    std::vector<ScoredSlot> grouped;
    std::unordered_set<const void*> seen;
    for (const auto& r : ranked) {
      if (seen.insert(chunks_[r.slot].doc).second) grouped.push_back(r);
    }
    ranked = std::move(grouped);
  }
  if (req.mmr_lambda && !ranked.empty()) {
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("reranking (mmr)"));
    const size_t dim = static_cast<size_t>(config_.dim);
    std::vector<float> vecs(ranked.size() * dim);
    for (size_t i = 0; i < ranked.size(); ++i) {
      shards_[shard_of_[ranked[i].slot]]->graph->CopyVector(ranked[i].slot, vecs.data() + i * dim);
    }
    ranked = Mmr(ranked, vecs.data(), dim, *req.mmr_lambda, req.k);
  }
  if (ranked.size() > req.k) ranked.resize(req.k);
  result.hits.reserve(ranked.size());
  for (const auto& r : ranked) {
    const ChunkEntry& c = chunks_[r.slot];
    result.hits.push_back({c.doc->id, c.ordinal, c.text, r.score, c.doc->metadata});
  }
  // Every id the results cite, present or not: a cached answer must go when one of them
  // is written, since it could then be pulled in.
  std::vector<std::string> cited;
  if (req.expand_refs) ExpandRefsLocked(qvec, terms, &result.hits, &cited);
  if (mode != QueryMode::kKeyword) result.route = std::move(route);
  result.rank_fused = mode == QueryMode::kHybrid && req.fusion == Fusion::kRrf;
  result.search_ms = Millis(clock_->NowNanos() - t1);
  if (use_cache) query_cache_->CountMiss();
  if (use_cache && snapshot && !result.degraded) {
    QueryCacheEntry<QueryResult> entry;
    entry.params_key = params_key;
    entry.query_vector = qvec;
    entry.uses_vector = mode != QueryMode::kKeyword;
    entry.uses_terms = mode != QueryMode::kVector;
    entry.vector_bar = vector_bar;
    size_t bytes = sizeof(entry) + qvec.size() * sizeof(float) + params_key.size();
    for (const auto& id : cited) entry.doc_ids.insert(id);
    for (const auto& h : result.hits) {
      entry.doc_ids.insert(h.doc_id);
      bytes += h.doc_id.size() * 2 + h.text.size() + 128;
    }
    entry.bytes = bytes;
    entry.result = result;
    query_cache_->Insert(*snapshot, exact_key, std::move(entry));
  }
  return result;
}

void Collection::ExpandRefsLocked(const std::vector<float>& query, const std::vector<std::string>& terms,
                                  std::vector<QueryHit>* hits, std::vector<std::string>* cited) const {
  const size_t dim = static_cast<size_t>(config_.dim);
  std::unordered_set<std::string> present;
  for (const auto& h : *hits) present.insert(h.doc_id);
  std::unordered_set<std::string> query_terms(terms.begin(), terms.end());
  std::vector<QueryHit> pulled;
  std::vector<float> v(dim);
  std::vector<std::string> chunk_terms;
  for (const auto& h : *hits) {
    const auto citing = docs_.find(h.doc_id);
    if (citing == docs_.end()) continue;
    for (const std::string& ref : citing->second->refs) {
      cited->push_back(ref);
      if (!present.insert(ref).second) continue;
      const auto it = docs_.find(ref);
      if (it == docs_.end() || it->second->slots.empty()) continue;  // cited but not (yet) here
      // Its best chunk for this query: by vector similarity, or by query terms matched.
      const DocEntry& doc = *it->second;
      uint32_t best = doc.slots[0];
      float best_score = -INFINITY;
      for (uint32_t slot : doc.slots) {
        float score = 0;
        if (!query.empty() && shards_[shard_of_[slot]]->graph->CopyVector(slot, v.data())) {
          ScoreCentroids(config_.metric, query.data(), v.data(), 1, dim, &score);
        } else {
          chunk_terms.clear();
          analyzer_->Analyze(chunks_[slot].text, &chunk_terms);
          for (const auto& t : chunk_terms) score += query_terms.count(t) > 0;
        }
        if (score > best_score) {
          best_score = score;
          best = slot;
        }
      }
      const ChunkEntry& c = chunks_[best];
      QueryHit hit{doc.id, c.ordinal, c.text, best_score, doc.metadata};
      hit.ref_of = h.doc_id;
      pulled.push_back(std::move(hit));
    }
  }
  for (auto& p : pulled) hits->push_back(std::move(p));
}

Status Collection::Load(const std::string& graph_path, uint64_t store_sequence) {
  WriterLock lock(&mu_);
  // The scans' callbacks run inline, under this lock: the thread-safety analysis checks a
  // lambda on its own and cannot see that, hence NO_THREAD_SAFETY_ANALYSIS on them.
  size_t bad = 0;
  CTX_RETURN_IF_ERROR(
      store_->ScanDocuments(tenant_, id_, [&](std::string_view id, std::string_view value) NO_THREAD_SAFETY_ANALYSIS {
        auto record = ParseJson(value);
        if (!record.ok() || !record->is_object()) {
          ++bad;
          return;
        }
        auto doc = std::make_unique<DocEntry>();
        doc->id = std::string(id);
        if (const Json* t = record->Find("title"); t && t->is_string()) doc->title = t->as_string();
        if (const Json* m = record->Find("metadata"); m && m->is_object())
          doc->metadata = *m;
        else
          doc->metadata = Json::MakeObject();
        if (const Json* refs = record->Find("refs"); refs && refs->is_array()) {
          for (const Json& r : refs->as_array()) {
            if (r.is_string()) doc->refs.push_back(r.as_string());
          }
        }
        docs_.emplace(doc->id, std::move(doc));
      }));
  std::vector<std::string> terms;
  DocEntry* doc = nullptr;
  // Stored vectors by slot: the graph is rebuilt from them unless a saved one is usable.
  std::vector<float> vectors;
  const size_t dim = static_cast<size_t>(config_.dim);
  CTX_RETURN_IF_ERROR(store_->ScanChunks(
      tenant_, id_, [&](std::string_view id, uint32_t n, std::string_view value) NO_THREAD_SAFETY_ANALYSIS {
        if (doc == nullptr || doc->id != id) {
          auto it = docs_.find(std::string(id));
          doc = it == docs_.end() ? nullptr : it->second.get();
        }
        std::string_view text;
        const char* raw = nullptr;
        uint32_t slot = 0;
        if (doc == nullptr || n != doc->slots.size() || !DecodeChunk(value, config_.dim, &slot, &text, &raw) ||
            slot > (1u << 30) || (slot < chunks_.size() && chunks_[slot].doc != nullptr)) {
          ++bad;
          return;
        }
        if (chunks_.size() <= slot) chunks_.resize(slot + 1);
        if (vectors.size() < chunks_.size() * dim)
          vectors.resize(std::max(chunks_.size(), vectors.size() / dim * 2) * dim);
        std::memcpy(&vectors[slot * dim], raw, sizeof(float) * dim);
        ChunkEntry& c = chunks_[slot];
        c.doc = doc;
        c.ordinal = n;
        c.text = std::string(text);
        chunk_text_bytes_ += c.text.size();
        payload_.Add(slot, doc->metadata);
        ++live_chunks_;
        IndexTerms(doc->title, c.text, &terms);
        keywords_.Add(slot, terms);
        doc->slots.push_back(slot);
      }));
  if (bad > 0) {
    // Records are written atomically per batch, so this means on-disk corruption.
    return Internal("collection '" + name_ + "': " + std::to_string(bad) + " unreadable records in storage",
                    "storage_error");
  }
  for (uint32_t s = static_cast<uint32_t>(chunks_.size()); s-- > 0;) {
    if (chunks_[s].doc == nullptr) free_slots_.push(s);
  }
  shard_of_.assign(chunks_.size(), 0);
  return LoadShardsLocked(graph_path, store_sequence, &vectors);
}

StatusOr<CollectionDigest> Collection::Digest() const {
  CollectionDigest d;
  // Documents: the stored records, in key (id) order.
  uint64_t h = 0;
  CTX_RETURN_IF_ERROR(store_->ScanDocuments(tenant_, id_, [&](std::string_view id, std::string_view value) {
    h = Hash64(value, Hash64(id, h));
    ++d.document_count;
  }));
  d.documents = h;
  ReaderLock lock(&mu_);
  std::vector<const DocEntry*> docs;
  for (const auto& [id, doc] : docs_) docs.push_back(doc.get());
  std::sort(docs.begin(), docs.end(), [](const DocEntry* a, const DocEntry* b) { return a->id < b->id; });
  std::vector<float> v(static_cast<size_t>(config_.dim));
  h = Hash64(std::to_string(docs.size()));
  for (const DocEntry* doc : docs) {
    h = Hash64(doc->id, h);
    for (uint32_t slot : doc->slots) {
      std::fill(v.begin(), v.end(), 0.0f);
      shards_[shard_of_[slot]]->graph->CopyVector(slot, v.data());
      h = Hash64(chunks_[slot].text, h);
      h = Hash64(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)), h);
      ++d.chunk_count;
    }
  }
  d.chunks = h;
  d.keywords = keywords_.StatsDigest();
  return d;
}

void Collection::MarkDropped() {
  WriterLock alive(&drop_mu_);
  dropped_ = true;
}

size_t Collection::document_count() const {
  ReaderLock lock(&mu_);
  return docs_.size();
}

size_t Collection::chunk_count() const {
  ReaderLock lock(&mu_);
  return live_chunks_;
}

size_t Collection::memory_bytes() const {
  ReaderLock lock(&mu_);
  size_t graphs = 0;
  for (const auto& shard : shards_) graphs += shard->graph->memory_bytes();
  return graphs + payload_.memory_bytes() + chunk_text_bytes_ + chunks_.capacity() * sizeof(ChunkEntry);
}

size_t Collection::mapped_bytes() const {
  ReaderLock lock(&mu_);
  size_t bytes = 0;
  for (const auto& shard : shards_) bytes += shard->graph->mapped_bytes();
  return bytes;
}

CollectionInfo Collection::Describe() const {
  CollectionInfo info;
  info.name = name_;
  info.config = config_;
  info.embedder_available = config_.embedder == "none" || embedder_ != nullptr;
  {
    ReaderLock lock(&mu_);
    info.documents = docs_.size();
    info.chunks = live_chunks_;
    info.index_type = UsesGraphLocked() ? "hnsw" : "flat";
    for (const auto& shard : shards_) {
      info.graph_nodes += shard->graph->node_count();
      info.graph_tombstones += shard->graph->deleted_count();
    }
    info.shards = shards_.size();
  }
  info.graph_source = graph_source_;
  info.memory_bytes = memory_bytes();
  info.mapped_bytes = mapped_bytes();
  return info;
}

}  // namespace contextd
