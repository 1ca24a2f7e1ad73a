// Collection: one named set of documents with its chunks, vector index and keyword index.
//
// A write has two halves. Upsert() and DeleteDocument() are the proposer: they validate,
// chunk and embed outside any lock and turn the write into a Mutation (engine/mutation.h)
// that they commit to the update log. Apply() is the only way the collection's state
// changes: the log calls it (through the Engine) with committed mutations, here or on a
// replica. Apply is deterministic and never embeds.
//
// Writes are durable before they are visible: Apply writes the Store as one synced batch
// (recording the mutation's sequence), and only then changes the in-memory indexes.
// Appliers of the same document id are serialised by lock striping, so the store and the
// indexes always agree on a document's latest version, while batches touching different
// ids commit concurrently and share WAL syncs. Free chunk slots are reused lowest first,
// so replicas applying the same mutations number their chunks alike.
//
// Thread safety: all public methods are safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <condition_variable>
#include <deque>
#include <thread>
#include "common/clock.h"
#include "common/json.h"
#include "common/mutex.h"
#include "common/request_context.h"
#include "embed/embedder.h"

#include "engine/collection_types.h"
#include "engine/mutation.h"
#include "cache/query_cache.h"
#include "engine/requests.h"
#include "engine/services.h"
#include "engine/update_log.h"
#include "index/bm25_index.h"
#include "index/hnsw_index.h"
#include "index/payload_index.h"
#include "store/store.h"
#include "text/analyzer.h"

namespace contextd {

// Order-independent hashes of a collection's replicated state: equal digests mean equal
// documents (the stored records), equal chunks (text and vector, by document and
// ordinal) and equal keyword statistics, however the replicas numbered their slots or
// laid out their shards.
struct CollectionDigest {
  uint64_t documents = 0;
  uint64_t chunks = 0;
  uint64_t keywords = 0;
  size_t document_count = 0;
  size_t chunk_count = 0;
  bool operator==(const CollectionDigest&) const = default;
};

class Collection : public CollectionHandle {
 public:
  // Below this many chunks an exact scan is as fast as the graph and always exact.
  static constexpr size_t kGraphMinChunks = 2000;
  // The graph is repaired (tombstones removed) past this many and a tenth of its nodes.
  static constexpr size_t kRepairMinTombstones = 256;

  // embedder: null when the collection has none or its model is not loaded here (then
  // text cannot be embedded and only keyword search and vector input work).
  // vector_dir: where an int8 collection's graph keeps its fp32 vectors, memory-mapped
  // (empty: in RAM).
  // log: where writes are committed; it applies them back through the Engine.
  Collection(std::string tenant, std::string name, uint64_t id, CollectionConfig config,
             std::shared_ptr<const Embedder> embedder, Store* store, UpdateLog* log, const Clock* clock,
             std::string vector_dir = "");
  ~Collection() override;

  // Rebuilds the in-memory state from the store. The HNSW graph comes from `graph_path`
  // when that file was saved at store sequence `store_sequence` (nothing written since)
  // and matches the chunks; otherwise it is rebuilt. REQUIRES: called once, before serving.
  Status Load(const std::string& graph_path = "", uint64_t store_sequence = 0);
  // Saves the graph for the next Load(). REQUIRES: no writes in flight.
  // Each shard's graph goes to its own file: `path` for the first, `path`.N for the others.
  // Waits for a shard split in progress to finish first.
  Status SaveGraph(const std::string& path, uint64_t store_sequence);
  // GET /v1/collections/{name}/shards: shards, sizes, distinctive terms, routing counts.
  ShardsReport DescribeShards() const override;
  size_t shard_count() const;
  // Blocks until no shard split is running (tests, shutdown).
  void WaitForSplits();

  // Every call takes the request's context: its deadline is checked between steps (a
  // passed one is DeadlineExceeded, and a write past it commits nothing), its trace goes
  // on to remote embedders, and its usage is charged. The forms without one run as
  // background work (no deadline).
  Status Upsert(const RequestContext& ctx, std::vector<DocumentInput> docs, UpsertResult* result) override;
  Status Upsert(std::vector<DocumentInput> docs, UpsertResult* result) {
    return Upsert(RequestContext::Background(), std::move(docs), result);
  }
  // The stored document, as GET returns it.
  StatusOr<StoredDocument> GetDocument(const std::string& id) const override;
  Status DeleteDocument(const RequestContext& ctx, const std::string& id) override;
  Status DeleteDocument(const std::string& id) { return DeleteDocument(RequestContext::Background(), id); }
  // Applies a committed upsert or delete of this collection (the Engine routes them here).
  // A delete of a missing document is NotFound and changes nothing.
  Status Apply(Mutation m, ApplyResult* result);
  // See CollectionDigest. Reads the store; for tests and replica checks, not the hot path.
  StatusOr<CollectionDigest> Digest() const;

  StatusOr<QueryResult> Query(const RequestContext& ctx, const QueryRequest& request) const override;
  StatusOr<QueryResult> Query(const QueryRequest& request) const {
    return Query(RequestContext::Background(), request);
  }

  // Name, settings and counts, as returned by GET /v1/collections/{name}.
  CollectionInfo Describe() const override;
  size_t document_count() const;
  size_t chunk_count() const;
  size_t memory_bytes() const;
  size_t mapped_bytes() const;

  // Makes every later call fail with NotFound; waits for writes in flight.
  void MarkDropped();

  const std::string& name() const override { return name_; }
  const std::string& tenant() const { return tenant_; }
  uint64_t id() const { return id_; }
  const CollectionConfig& config() const override { return config_; }
  // "built" (new), "loaded" (from a saved file) or "rebuilt" (from the store) at Load().
  const std::string& graph_source() const { return graph_source_; }
  bool has_embedder() const override { return config_.embedder != "none"; }
  // Queries on this collection wait on a remote embedder (see Embedder::waits()).
  bool embedder_waits() const override { return embedder_ != nullptr && embedder_->waits(); }
  const Analyzer& analyzer() const override { return *analyzer_; }
  QueryCacheStats query_cache_stats() const { return query_cache_->stats(); }
  struct RoutingStats {
    uint64_t queries = 0, single_shard = 0, shards_probed = 0, widened = 0;
  };
  // Routed vector searches (collections of two shards or more) since the start.
  RoutingStats routing_stats() const {
    return {routed_queries_.load(), confident_routes_.load(), shards_probed_.load(), widened_routes_.load()};
  }

 private:
  struct DocEntry {
    std::string id;
    std::string title;
    Json metadata;
    std::vector<std::string> refs;  // documents this one cites
    std::vector<uint32_t> slots;    // by chunk ordinal
  };
  struct ChunkEntry {
    DocEntry* doc = nullptr;  // null for a free slot
    uint32_t ordinal = 0;
    std::string text;
  };
  // Chunks and embeds the documents into an upsert mutation (the proposer's half).
  Status Prepare(const RequestContext& ctx, std::vector<DocumentInput> docs, Mutation* m) const;
  Status ApplyUpsert(Mutation m, ApplyResult* result);
  Status ApplyDelete(const Mutation& m, ApplyResult* result);
  Status EmbedTexts(const RequestContext& ctx, const std::vector<std::string>& texts, EmbedPriority priority,
                    std::vector<float>* out) const;
  std::string IndexText(const std::string& title, const std::string& chunk) const;
  // The chunk's keyword-index terms: title + chunk as body, and the title as its own field.
  void IndexTerms(const std::string& title, const std::string& chunk, std::vector<std::string>* terms) const;
  // REQUIRES: mu_ held exclusively. Puts the doc's chunks in `slots` (reserved before the
  // store write, which records them); the caller adds them to the HNSW graph after
  // releasing mu_ (graph inserts are slow and the graph is thread-safe on its own).
  // doc is consumed; terms: each chunk's keyword terms. targets: receives each new
  // chunk's shard graph, in order.
  void ApplyLocked(MutationDocument* doc, std::vector<std::vector<std::string>>* terms, const float* vectors,
                   const uint32_t* slots, std::vector<std::shared_ptr<HnswIndex>>* targets) REQUIRES(mu_);
  // Load()'s second half: the shards from saved graphs when they match the store, else
  // from k-means over the stored vectors (by slot; consumed). REQUIRES: mu_ held exclusively.
  Status LoadShardsLocked(const std::string& graph_path, uint64_t store_sequence, std::vector<float>* vectors)
      REQUIRES(mu_);
  HnswParams GraphParams() const;
  std::shared_ptr<HnswIndex> NewGraph() const;
  // A topic shard: the chunks nearest its centroid, with their own vector index.
  struct Shard {
    uint32_t id = 0;              // stable across splits of other shards, for reports
    std::vector<float> centroid;  // dim floats
    std::shared_ptr<HnswIndex> graph;
    size_t chunks = 0;       // GUARDED_BY(mu_)
    bool splitting = false;  // GUARDED_BY(mu_): writes are also logged to split_log_
    mutable std::atomic<uint64_t> probes{0};
  };
  // Vector search over the shards the router picks (all with `all_shards`), merged: per
  // shard, the HNSW graph once the shard is big enough for it to pay, the exact scan
  // otherwise and whenever a selective filter starves the graph search.
  // allowed: the slots a filter matches, or null without a filter. routing: the query's
  // own routing options (null: the collection's). route: filled when given.
  // REQUIRES: mu_ held (shared is enough).
  std::vector<ScoredSlot> VectorSearchLocked(const float* query, size_t k, size_t ef, const SlotBitset* allowed,
                                             bool all_shards = false, const ShardingOptions* routing = nullptr,
                                             QueryResult::Route* route = nullptr) const REQUIRES_SHARED(mu_);
  // Each shard's hits, by position in `indexes`; graph walks of big shards run in parallel.
  // REQUIRES: mu_ held (shared is enough).
  std::vector<std::vector<ScoredSlot>> SearchShardsLocked(const std::vector<uint32_t>& indexes, const float* query,
                                                          size_t k, size_t ef, const SlotBitset* allowed) const
      REQUIRES_SHARED(mu_);
  std::vector<ScoredSlot> SearchShard(const Shard& shard, const float* query, size_t k, size_t ef,
                                      const SlotBitset* allowed) const;
  // REQUIRES: mu_ held (shared is enough).
  bool UsesGraphLocked() const REQUIRES_SHARED(mu_);
  uint32_t NearestShardLocked(const float* vector) const REQUIRES_SHARED(mu_);     // REQUIRES: mu_ held
  void SetShardsLocked(std::vector<std::shared_ptr<Shard>> shards) REQUIRES(mu_);  // REQUIRES: mu_ held exclusively
  void RemoveDocLocked(const std::string& id) REQUIRES(mu_);
  // Appends to *hits the best chunk of each document the hits cite and do not already
  // contain; *cited receives every id cited. REQUIRES: mu_ held (shared is enough).
  void ExpandRefsLocked(const std::vector<float>& query, const std::vector<std::string>& terms,
                        std::vector<QueryHit>* hits, std::vector<std::string>* cited) const REQUIRES_SHARED(mu_);
  void MaybeRepairGraph();
  // Starts the background splitter when a shard has outgrown max_shard_chunks.
  void MaybeSplit();
  void SplitLoop();
  // Splits shards_[index] in two with 2-means; reads and writes go on meanwhile (see the
  // .cc). Returns false when stopped.
  bool SplitShard(size_t index);
  uint32_t AllocateSlotLocked() REQUIRES(mu_);
  std::vector<size_t> StripesFor(const std::vector<std::string>& ids) const;

  const std::string tenant_;
  const std::string name_;
  const uint64_t id_;
  const CollectionConfig config_;
  const std::shared_ptr<const Embedder> embedder_;
  Store* const store_;
  UpdateLog* const log_;
  const Clock* const clock_;
  const std::string vector_dir_;
  std::unique_ptr<Analyzer> analyzer_;

  static constexpr size_t kStripes = 64;
  mutable std::array<std::mutex, kStripes> stripes_;  // serialise writers per document id

  mutable SharedMutex drop_mu_;       // writers share it; MarkDropped() takes it alone
  std::atomic<bool> dropped_{false};  // written under drop_mu_ held exclusively
  std::atomic<bool> repairing_{false};
  // Writers hold it shared from choosing their chunks' shards until the chunks are in those
  // shards' graphs; a split takes it alone to see no write half-applied.
  SharedMutex apply_mu_;
  std::mutex splitter_mu_;  // guards splitter_
  std::thread splitter_;
  std::atomic<bool> split_running_{false};
  std::atomic<bool> stop_{false};
  // Routing counters, for /shards.
  mutable std::atomic<uint64_t> routed_queries_{0}, confident_routes_{0}, shards_probed_{0}, widened_routes_{0};

  // Lock order: stripes_ (one, by document id), then drop_mu_ / apply_mu_, then mu_; a
  // shard split takes apply_mu_ then mu_. The graphs, the keyword index, the payload
  // index and the query cache lock themselves and are taken under mu_ or alone, never the
  // other way round. verify_mu_ and splitter_mu_ are leaves.
  mutable SharedMutex mu_ ACQUIRED_AFTER(apply_mu_, drop_mu_);
  std::unordered_map<std::string, std::unique_ptr<DocEntry>> docs_ GUARDED_BY(mu_);
  std::vector<ChunkEntry> chunks_ GUARDED_BY(mu_);  // by slot
  // Lowest first (a min-heap), so slot numbering depends only on the mutations applied.
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<uint32_t>> free_slots_ GUARDED_BY(mu_);
  size_t live_chunks_ GUARDED_BY(mu_) = 0;
  // The vectors in memory live in the graph only; below kGraphMinChunks it is scanned
  // exactly instead of walked.
  // Topic shards; each graph is internally synchronised (see ApplyLocked()).
  std::vector<std::shared_ptr<Shard>> shards_ GUARDED_BY(mu_);
  std::vector<float> centroids_ GUARDED_BY(mu_);    // shards_.size() * dim, for routing
  std::vector<uint32_t> shard_of_ GUARDED_BY(mu_);  // by slot: index into shards_
  uint32_t next_shard_id_ GUARDED_BY(mu_) = 0;
  // Writes to a shard being split, replayed into its two halves before they replace it.
  struct SplitOp {
    bool add;
    uint32_t slot;
    std::vector<float> vector;
  };
  std::vector<SplitOp> split_log_ GUARDED_BY(mu_);
  // Results of recent queries; internally synchronised, invalidated by every write.
  std::unique_ptr<QueryCache<QueryResult>> query_cache_;
  // Sampled verification of cache hits: a background thread recomputes a share of hits
  // (bypassing the cache) and counts those whose fresh results differ.
  void MaybeVerify(const QueryRequest& req, const QueryResult& served) const;
  void VerifyLoop();
  mutable std::mutex verify_mu_;
  mutable std::condition_variable verify_cv_;
  mutable std::deque<std::pair<QueryRequest, std::vector<std::string>>> verify_queue_;
  bool verify_stop_ = false;
  std::thread verifier_;
  PayloadIndex payload_;                // metadata, for filters
  std::string graph_source_ = "built";  // "loaded" when Load() took a saved graph
  Bm25Index keywords_;
  size_t chunk_text_bytes_ = 0;
};

}  // namespace contextd
