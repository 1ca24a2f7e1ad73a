#include "engine/collection.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "engine/chunk_record.h"

namespace contextd {
namespace {

double Millis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

// Titles are already in the body (every chunk carries its title). Measured on SciFact
// (bench/retrieval_quality): an extra title-field weight of 0 / 0.25 / 0.5 / 1 / 2 gives
// nDCG@10 0.700 / 0.694 / 0.687 / 0.649 / 0.594, so the default adds none; queries may
// ask for more with "bm25":{"title_boost":..}.
constexpr float kDefaultTitleBoost = 0.0f;

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
      analyzer_(std::move(MakeAnalyzer(config_.analyzer).value())),
      shards_(config_, std::move(vector_dir)),
      cache_(config_, clock, [this](const KeywordEvidence& e) {
        ReaderLock lock(&mu_);
        return StatsNow(e, table_.keywords());
      }) {
  cache_.StartVerifier([this](const QueryRequest& req) { return Query(req); });
}

Collection::~Collection() {
  stop_ = true;
  WaitForSplits();
  cache_.Stop();
}

Status Collection::EmbedTexts(const RequestContext& ctx, const std::vector<std::string_view>& texts,
                              EmbedPriority priority, std::vector<float>* out) const {
  if (embedder_ == nullptr) {
    return Unavailable(
        "collection '" + name_ + "' needs embedding model '" + config_.model + "', which is not loaded on this server",
        "embedder_unavailable");
  }
  out->resize(texts.size() * static_cast<size_t>(config_.dim));
  // Metered embedders (providers, queued models) bill by token; in-process ones do not.
  if (embedder_->waits()) ctx.CountEmbeddingTokens(texts);
  return embedder_->EmbedWith(texts, EmbedOptionsFor(ctx, priority, *embedder_), out->data());
}

void Collection::MaybeRepairGraph() {
  // Once tombstones are a tenth of a graph, reconnect around them and free their ids. The
  // request that crosses the line pays for it (a background maintainer is future work).
  // Not at shutdown: the reply matters more, and the next start rebuilds without tombstones.
  if (IndexingAbandoned()) return;
  std::vector<std::shared_ptr<HnswIndex>> due;
  {
    ReaderLock lock(&mu_);
    due = shards_.RepairDue();
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

namespace {

// The record as collection_writes.cc stores it.
StatusOr<StoredDocument> ParseStoredDocument(std::string_view id, std::string_view value) {
  CTX_ASSIGN_OR_RETURN(Json record, ParseJson(value));
  return Collection::DocumentFromRecord(id, record);
}

// Records read between looks at the deadline during a filtered scan.
constexpr size_t kScanDeadlineEvery = 256;

}  // namespace

StoredDocument Collection::DocumentFromRecord(std::string_view id, const Json& record) {
  StoredDocument doc;
  doc.id = std::string(id);
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

StatusOr<StoredDocument> Collection::GetDocument(const std::string& id) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  CTX_ASSIGN_OR_RETURN(auto value, store_->GetDocument(tenant_, id_, id));
  if (!value) return NotFound("document '" + id + "' not found in collection '" + name_ + "'");
  return ParseStoredDocument(id, *value);
}

StatusOr<std::vector<StoredDocument>> Collection::GetDocuments(const std::vector<std::string>& ids,
                                                               std::vector<std::string>* missing) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  std::vector<StoredDocument> out;
  for (const auto& id : ids) {
    CTX_ASSIGN_OR_RETURN(auto value, store_->GetDocument(tenant_, id_, id));
    if (!value) {
      missing->push_back(id);
      continue;
    }
    CTX_ASSIGN_OR_RETURN(StoredDocument doc, ParseStoredDocument(id, *value));
    out.push_back(std::move(doc));
  }
  return out;
}

StatusOr<DocumentPage> Collection::ListDocuments(const RequestContext& ctx, const DocumentListRequest& req) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  DocumentPage page;
  Status parsed = Status::Ok();
  std::string last;
  bool more = false;
  CTX_RETURN_IF_ERROR(store_->ScanDocumentsAfter(tenant_, id_, req.after, [&](std::string_view id, std::string_view v) {
    if (page.documents.size() == req.limit) {
      more = true;  // one past the page: there is a next one
      return false;
    }
    // A filtered scan may read far more than it returns: it answers by its deadline with
    // what it has and the cursor of the last record read.
    if (page.scanned > 0 && page.scanned % kScanDeadlineEvery == 0 && ctx.Expired()) {
      more = true;
      return false;
    }
    ++page.scanned;
    last = std::string(id);
    auto doc = ParseStoredDocument(id, v);
    if (!doc.ok()) {
      parsed = doc.status();
      return false;
    }
    if (req.filter.empty() || req.filter.Matches(doc->metadata)) page.documents.push_back(std::move(*doc));
    return true;
  }));
  CTX_RETURN_IF_ERROR(parsed);
  if (more) page.next = last;
  return page;
}

Status Collection::QueryInputs(const RequestContext& ctx, const QueryRequest& req, QueryResult* result, QueryMode* mode,
                               std::vector<float>* qvec, std::vector<std::string>* terms,
                               std::vector<float>* term_weights) const {
  *mode = req.mode;
  if (*mode != QueryMode::kKeyword) {
    if (req.vector) {
      *qvec = *req.vector;
    } else if (Status st = EmbedTexts(ctx, {std::string_view(req.text)}, EmbedPriority::kQuery, qvec); !st.ok()) {
      // A query with text can still be answered by keywords when the embedder cannot
      // serve it; a bad request (InvalidArgument) is still the caller's to fix.
      if (st.code() == StatusCode::kInvalidArgument || req.text.empty()) return st;
      *mode = QueryMode::kKeyword;
      result->mode = *mode;
      result->degraded = true;
      result->degraded_reason = st.message();
    }
  }
  if (*mode != QueryMode::kVector)
    QueryTerms(*analyzer_, req.text, req.title_boost.value_or(kDefaultTitleBoost), terms, term_weights);
  return Status::Ok();
}

StatusOr<QueryResult> Collection::Query(const RequestContext& ctx, const QueryRequest& req) const {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the search"));
  QueryResult result;
  result.mode = req.mode;
  const int64_t t0 = clock_->NowNanos();
  const QueryCacheLayer::Pass pass = cache_.Begin(req, &result);
  if (auto hit = cache_.FindExact(pass, req)) {  // an exact repeat needs no embedding
    ctx.usage.chunks_scored += static_cast<int64_t>(hit->hits.size());
    hit->embed_ms = 0;
    hit->search_ms = Millis(clock_->NowNanos() - t0);
    return std::move(*hit);
  }
  std::vector<float> qvec;
  QueryMode mode = req.mode;
  std::vector<std::string> terms;
  std::vector<float> term_weights;
  CTX_RETURN_IF_ERROR(QueryInputs(ctx, req, &result, &mode, &qvec, &terms, &term_weights));
  const int64_t t1 = clock_->NowNanos();
  result.embed_ms = Millis(t1 - t0);
  if (!result.degraded) {
    if (auto hit = cache_.FindSimilar(pass, req, qvec)) {
      ctx.usage.chunks_scored += static_cast<int64_t>(hit->hits.size());
      hit->embed_ms = result.embed_ms;
      hit->search_ms = Millis(clock_->NowNanos() - t1);
      return std::move(*hit);
    }
  }
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("the index search"));
  QueryExecutor::Extras extras;
  ShardRouter* const router = router_.load();
  std::vector<uint32_t> spread;
  if (router != nullptr) spread = ShardsToSpread(*router, mode);
  if (!spread.empty() && router->Spreads(tenant_, id_, spread)) {
    CTX_RETURN_IF_ERROR(QueryAcrossNodes(ctx, req, *router, {mode, &qvec, &terms, &term_weights}, &result, &extras));
  } else {
    ReaderLock lock(&mu_);
    const QueryExecutor executor(table_, shards_, *analyzer_, config_);
    CTX_RETURN_IF_ERROR(executor.Run(ctx, req, {mode, &qvec, &terms, &term_weights, pass.active}, &result, &extras));
    // In a cluster every answer says what it covered; here, every shard, from this node.
    if (router != nullptr) result.coverage = QueryResult::Coverage{shards_.size(), shards_.size(), 1};
  }
  result.search_ms = Millis(clock_->NowNanos() - t1);
  // An answer missing some shards is not kept: the next asker may reach them.
  if (!result.coverage || result.coverage->answered == result.coverage->shards) {
    cache_.Store(pass, mode, qvec, extras, result);
  }
  return result;
}

Status Collection::Load(const std::string& graph_path, uint64_t store_sequence, uint64_t applied_sequence) {
  WriterLock lock(&mu_);
  applied_sequence_ = applied_sequence;
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
        auto doc = std::make_unique<DocumentTable::Document>();
        doc->id = std::string(id);
        if (const Json* t = record->Find("title"); t && t->is_string()) doc->title = t->as_string();
        if (const Json* t = record->Find("text"); t && t->is_string()) doc->text = t->as_string();
        if (const Json* m = record->Find("metadata"); m && m->is_object())
          doc->metadata = *m;
        else
          doc->metadata = Json::MakeObject();
        if (const Json* refs = record->Find("refs"); refs && refs->is_array()) {
          for (const Json& r : refs->as_array()) {
            if (r.is_string()) doc->refs.push_back(r.as_string());
          }
        }
        table_.AddLoadedDocument(std::move(doc));
      }));
  std::vector<std::string> terms;
  DocumentTable::Document* doc = nullptr;
  // Stored vectors by slot: the graphs are rebuilt from them unless saved ones are usable.
  std::vector<float> vectors;
  const size_t dim = static_cast<size_t>(config_.dim);
  CTX_RETURN_IF_ERROR(store_->ScanChunks(
      tenant_, id_, [&](std::string_view id, uint32_t n, std::string_view value) NO_THREAD_SAFETY_ANALYSIS {
        if (doc == nullptr || doc->id != id) doc = table_.FindForLoad(std::string(id));
        std::string_view text;
        const char* raw = nullptr;
        uint32_t slot = 0;
        if (doc == nullptr || !DecodeChunk(value, config_.dim, doc->text, &slot, &text, &raw)) {
          ++bad;
          return;
        }
        terms.clear();
        IndexTerms(*analyzer_, doc->title, text, &terms);
        if (!table_.AddLoadedChunk(doc, n, slot, text, terms)) {
          ++bad;
          return;
        }
        if (vectors.size() < table_.slot_count() * dim)
          vectors.resize(std::max(table_.slot_count(), vectors.size() / dim * 2) * dim);
        std::memcpy(&vectors[slot * dim], raw, sizeof(float) * dim);
      }));
  if (bad > 0) {
    // Records are written atomically per batch, so this means on-disk corruption.
    return Internal("collection '" + name_ + "': " + std::to_string(bad) + " unreadable records in storage",
                    "storage_error");
  }
  table_.FinishLoad();
  // The live rows, packed to the front in slot order.
  std::vector<uint32_t> labels;
  for (uint32_t s = 0; s < table_.slot_count(); ++s) {
    if (!table_.live(s)) continue;
    if (labels.size() != s) std::copy_n(&vectors[s * dim], dim, &vectors[labels.size() * dim]);
    labels.push_back(s);
  }
  ShardLayout layout(config_.metric, static_cast<uint32_t>(dim));
  CTX_ASSIGN_OR_RETURN(auto stored_layout, store_->GetShardLayout(tenant_, id_));
  if (stored_layout) {
    auto decoded = ShardLayout::Decode(*stored_layout, config_.metric, static_cast<uint32_t>(dim));
    if (!decoded.ok()) {
      return Internal("collection '" + name_ + "': unreadable shard layout in storage: " + decoded.status().message(),
                      "storage_error");
    }
    layout = std::move(decoded).value();
  }
  return shards_.Load(graph_path, store_sequence, std::move(layout), labels, &vectors, stop_, &graph_source_);
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
  std::vector<const DocumentTable::Document*> docs;
  table_.ForEachDocument([&](const DocumentTable::Document& doc) { docs.push_back(&doc); });
  std::sort(docs.begin(), docs.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
  std::vector<float> v(static_cast<size_t>(config_.dim));
  const ShardLayout& layout = shards_.layout();
  for (uint32_t leaf : layout.leaves()) d.shards[leaf] = {};
  h = Hash64(std::to_string(docs.size()));
  for (const DocumentTable::Document* doc : docs) {
    h = Hash64(doc->id, h);
    for (uint32_t slot : doc->slots) {
      std::fill(v.begin(), v.end(), 0.0f);
      if (!shards_.CopyVector(slot, v.data())) {
        ++d.unindexed_chunks;
        spdlog::error("collection {}: slot {} of document '{}' has no vector in its shard's graph", name_, slot,
                      doc->id);
      }
      const std::string_view bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      h = Hash64(table_.chunk(slot).text(), h);
      h = Hash64(bytes, h);
      ++d.chunk_count;
      CollectionDigest::Shard& shard = d.shards[layout.Leaf(v.data())];
      ++shard.chunks;
      shard.digest += Hash64(bytes, Hash64(table_.chunk(slot).text(), Hash64(doc->id)));
    }
  }
  d.chunks = h;
  d.layout = Hash64(layout.Encode());
  d.keywords = table_.keywords().StatsDigest();
  return d;
}

StatusOr<ShardSnapshot> Collection::SnapshotShard(uint32_t shard_id) {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  // Upserts change the parts under apply_mu_ (shared) and deletes under mu_ alone: holding
  // the first alone and the second shared sees neither half-done.
  WriterLock applying(&apply_mu_);
  ReaderLock lock(&mu_);
  ShardSnapshot s;
  s.sequence = applied_sequence_;
  s.collection_id = id_;
  s.shard_id = shard_id;
  s.dim = static_cast<uint32_t>(config_.dim);
  s.metric = config_.metric;
  std::vector<uint32_t> slots;
  if (!shards_.Members(shard_id, &slots)) {
    return NotFound("shard " + std::to_string(shard_id) + " not found in collection '" + name_ + "'");
  }
  s.layout = shards_.layout().Encode();
  // Documents by id, each one's chunks by ordinal.
  std::map<std::string, std::vector<uint32_t>> by_doc;
  for (uint32_t slot : slots) by_doc[table_.chunk(slot).doc->id].push_back(slot);
  for (auto& [id, doc_slots] : by_doc) {
    const DocumentTable::Document& doc = *table_.chunk(doc_slots[0]).doc;
    const uint32_t index = static_cast<uint32_t>(s.documents.size());
    s.documents.push_back({doc.id, doc.title, doc.metadata, doc.refs});
    std::sort(doc_slots.begin(), doc_slots.end(),
              [&](uint32_t a, uint32_t b) NO_THREAD_SAFETY_ANALYSIS {  // inline, mu_ held
                return table_.chunk(a).ordinal < table_.chunk(b).ordinal;
              });
    for (uint32_t slot : doc_slots) {
      ShardSnapshot::Chunk c;
      c.document = index;
      c.ordinal = table_.chunk(slot).ordinal;
      c.text = table_.chunk(slot).text();
      c.vector.resize(s.dim);
      shards_.CopyVector(slot, c.vector.data());
      s.chunks.push_back(std::move(c));
    }
  }
  return s;
}

void Collection::MarkDropped() {
  WriterLock alive(&drop_mu_);
  dropped_ = true;
}

size_t Collection::document_count() const {
  ReaderLock lock(&mu_);
  return table_.document_count();
}

size_t Collection::chunk_count() const {
  ReaderLock lock(&mu_);
  return table_.chunk_count();
}

size_t Collection::memory_bytes() const {
  ReaderLock lock(&mu_);
  return shards_.memory_bytes() + table_.memory_bytes();
}

size_t Collection::mapped_bytes() const {
  ReaderLock lock(&mu_);
  return shards_.mapped_bytes();
}

CollectionInfo Collection::Describe() const {
  CollectionInfo info;
  info.name = name_;
  info.config = config_;
  info.embedder_available = config_.embedder == "none" || embedder_ != nullptr;
  {
    ReaderLock lock(&mu_);
    info.documents = table_.document_count();
    info.chunks = table_.chunk_count();
    info.index_type = shards_.uses_graph() ? "hnsw" : "flat";
    info.graph_nodes = shards_.graph_nodes();
    info.graph_tombstones = shards_.graph_tombstones();
    info.shards = shards_.size();
    info.memory_bytes = shards_.memory_bytes() + table_.memory_bytes();
    info.mapped_bytes = shards_.mapped_bytes();
  }
  info.graph_source = graph_source_;
  return info;
}

}  // namespace contextd
