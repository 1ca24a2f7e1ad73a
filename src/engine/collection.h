// Collection: one named set of documents with its chunks, vector index and keyword index.
// It is made of parts with one job each, and is itself the write applier and the one
// place that orders their locks:
//
//   DocumentTable   (engine/document_table.h): documents, chunks by slot, keyword and
//                   payload indexes.
//   ShardSet        (engine/shard_set.h): topic shards with their graphs, placement,
//                   routing, splits and repair.
//   QueryExecutor   (engine/query_executor.h): one search over a read snapshot of both.
//   QueryCacheLayer (engine/query_cache_layer.h): the result cache in front of searches.
//
// A write has two halves. Upsert() and DeleteDocument() are the proposer: they validate,
// chunk and embed outside any lock and turn the write into a Mutation (engine/mutation.h)
// that they commit to the update log. Apply() is the only way the collection's state
// changes: the log calls it (through the Engine) with committed mutations, here or on a
// replica. Apply is deterministic and never embeds.
//
// Writes are durable before they are visible: Apply writes the Store as one synced batch
// (recording the mutation's sequence), and only then changes the in-memory parts.
// Appliers of the same document id are serialised by lock striping, so the store and the
// indexes always agree on a document's latest version, while batches touching different
// ids commit concurrently and share WAL syncs.
//
// Thread safety: all public methods are safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/request_context.h"
#include "embed/embedder.h"
#include "engine/collection_types.h"
#include "engine/document_table.h"
#include "engine/mutation.h"
#include "engine/query_cache_layer.h"
#include "engine/query_executor.h"
#include "engine/requests.h"
#include "engine/services.h"
#include "engine/shard_candidates.h"
#include "engine/shard_router.h"
#include "engine/shard_set.h"
#include "engine/shard_snapshot.h"
#include "engine/snapshot_file.h"
#include "engine/update_log.h"
#include "store/store.h"
#include "text/analyzer.h"

namespace contextd {

class Collection : public CollectionHandle {
 public:
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
  // applied_sequence: the update log's applied sequence at start (every mutation of this
  // collection up to it is in the store).
  Status Load(const std::string& graph_path = "", uint64_t store_sequence = 0, uint64_t applied_sequence = 0);
  // One topic shard's contents at the highest mutation sequence applied here, with every
  // shard's centroid: enough to rebuild the shard elsewhere and bring it up to date from
  // the log (engine/shard_snapshot.h). Waits for writes in progress; NotFound for an
  // unknown shard id. The sequence bounds what is in the snapshot when mutations are
  // applied in sequence order (a replica following the log).
  StatusOr<ShardSnapshot> SnapshotShard(uint32_t shard_id);
  // Saves the graph for the next Load(). REQUIRES: no writes in flight.
  // Each shard's graph goes to its own file: `path` for the first, `path`.N for the others.
  // Waits for a shard split in progress to finish first.
  Status SaveGraph(const std::string& path, uint64_t store_sequence);
  // GET /v1/collections/{name}/shards: shards, sizes, distinctive terms, routing counts.
  ShardsReport DescribeShards() const override;
  size_t shard_count() const;
  // Blocks until no shard split is running (tests, shutdown).
  void WaitForSplits();
  // Builds the splits the layout has and this node has not (a replica that applied them,
  // a restart), and proposes one for a shard past its limit. Writes check after they
  // apply; the Engine calls it once the log has started.
  void CheckShards() { MaybeSplit(); }
  // Stops the splitter for good (a split being built is abandoned; the next start builds
  // it) and waits for it: before the log it proposes to goes away.
  void StopSplits() {
    stop_ = true;
    WaitForSplits();
  }
  // Shutdown: a write whose store write is durable by `at_ns` (clock time) but whose chunks
  // are still going into the graphs then stops indexing, so its reply goes out before the
  // grace runs out: an acknowledged write is in the store, and the next start, finding the
  // graphs incomplete (they are not saved), rebuilds them. No split or repair starts after.
  void AbandonIndexingAt(int64_t at_ns) { abandon_indexing_ns_ = at_ns; }
  // Some acknowledged chunk is missing from the graphs (indexing was abandoned).
  bool graph_incomplete() const { return graph_incomplete_; }

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
  StatusOr<std::vector<StoredDocument>> GetDocuments(const std::vector<std::string>& ids,
                                                     std::vector<std::string>* missing) const override;
  StatusOr<DocumentPage> ListDocuments(const RequestContext& ctx, const DocumentListRequest& request) const override;
  Status DeleteDocument(const RequestContext& ctx, const std::string& id) override;
  Status DeleteDocument(const std::string& id) { return DeleteDocument(RequestContext::Background(), id); }
  // A document's stored record (JSON, as the apply path writes it) read back.
  static StoredDocument DocumentFromRecord(std::string_view id, const Json& record);
  // Backups (engine/snapshot_file.h). Writes every document with its chunks, as of one
  // moment, to `out` and counts them into `header`; reads and writes go on meanwhile.
  Status WriteSnapshot(const RequestContext& ctx, SnapshotFileWriter* out, SnapshotHeader* header) const;
  // Commits documents read from a snapshot as one upsert: their chunks' texts and vectors
  // as stored, nothing re-embedded. invalid_snapshot when a record does not fit this
  // collection (another dimension, say).
  Status RestoreDocuments(const RequestContext& ctx, const std::vector<SnapshotDocument>& docs, UpsertResult* result);
  // Applies a committed upsert or delete of this collection (the Engine routes them here).
  // A delete of a missing document is NotFound and changes nothing.
  Status Apply(Mutation m, ApplyResult* result);
  // See CollectionDigest. Reads the store; for tests and replica checks, not the hot path.
  StatusOr<CollectionDigest> Digest() const;

  StatusOr<QueryResult> Query(const RequestContext& ctx, const QueryRequest& request) const override;
  StatusOr<QueryResult> Query(const QueryRequest& request) const {
    return Query(RequestContext::Background(), request);
  }

  // One node's part of a query whose shards are spread over several nodes (see
  // QueryExecutor::Gather): the vector candidates of `vector_shards` and the keyword
  // candidates of `keyword_shards`, all held here.
  // The query's vector is req.vector when given (the answering node embeds once), else
  // embedded here. mode: the mode it ran in (hybrid falls back to keyword when the
  // embedder fails, as Query does).
  StatusOr<ShardCandidates> Candidates(const RequestContext& ctx, const QueryRequest& req,
                                       const std::vector<uint32_t>& vector_shards,
                                       const std::vector<uint32_t>& keyword_shards, QueryMode* mode) const;
  // The answer from the parts of every probed shard (QueryExecutor::Assemble), with the
  // final hits' texts and metadata from this node (every node stores every document).
  StatusOr<QueryResult> Assemble(const RequestContext& ctx, const QueryRequest& req, QueryMode mode,
                                 const std::vector<ShardCandidates>& parts) const;
  // The shards held here, in routing order.
  std::vector<uint32_t> ShardIds() const;
  // The shards whose parts of a query in `mode` `router` may have to ask of other nodes:
  // every one when it AsksHolders(); else none for keywords (every node keeps every
  // shard's postings) and, for vectors, the big shards whose graphs this node does not link.
  std::vector<uint32_t> ShardsToSpread(const ShardRouter& router, QueryMode mode) const;
  // Cluster mode: queries ask the nodes holding the shards through `router` while it
  // Spreads() a query's shards (null: this node answers alone). It must outlive the collection's queries.
  // Its Indexes() decides which shards' graphs this node links (RefreshIndexing()).
  void set_router(ShardRouter* router);
  // Cluster mode before the router is set (a node starting or catching up): every graph
  // only stores its chunks. A restart then rebuilds no links for the shards other nodes
  // hold; the ones this node holds are linked on the splitter thread once the router knows
  // the map (RefreshIndexing()), and searches stay exact meanwhile.
  void DeferLinking();
  // Cluster mode: makes the graphs of the shards this node indexes link their chunks and
  // the others only store them, as the router now says; the linking of what was stored
  // runs on the splitter thread. Cheap when nothing changed: call it when the map may have.
  void RefreshIndexing();

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
  QueryCacheStats query_cache_stats() const { return cache_.stats(); }
  // Routed vector searches (collections of two shards or more) since the start.
  ShardSet::RoutingStats routing_stats() const NO_THREAD_SAFETY_ANALYSIS { return shards_.routing_stats(); }

 private:
  // The query's vector (embedded unless given) and keyword terms, and the mode it runs in.
  Status QueryInputs(const RequestContext& ctx, const QueryRequest& req, QueryResult* result, QueryMode* mode,
                     std::vector<float>* qvec, std::vector<std::string>* terms, std::vector<float>* term_weights) const;
  // Query()'s search when the shards are spread over nodes: routes by centroid, asks the
  // router for the parts, widens as a single node's search does, and assembles. Fills the
  // hits, route and coverage; extras as Run's.
  Status QueryAcrossNodes(const RequestContext& ctx, const QueryRequest& req, ShardRouter& router,
                          const QueryExecutor::Input& in, QueryResult* result, QueryExecutor::Extras* extras) const;
  // Chunks and embeds the documents into an upsert mutation (the proposer's half).
  Status Prepare(const RequestContext& ctx, std::vector<DocumentInput> docs, Mutation* m) const;
  Status ApplyUpsert(Mutation m, ApplyResult* result);
  Status ApplyDelete(const Mutation& m, ApplyResult* result);
  // A logged split: the layout changes (and is stored) here; the splitter builds it.
  Status ApplySplit(const Mutation& m, ApplyResult* result);
  // Marks the shard k-means could not divide (MarkUnsplittable, at its size here): no node
  // waits for its split any longer, and its graph links.
  Status ApplyUnsplittable(const Mutation& m, ApplyResult* result);
  Status EmbedTexts(const RequestContext& ctx, const std::vector<std::string_view>& texts, EmbedPriority priority,
                    std::vector<float>* out) const;
  // Takes the document out of both parts (its slots freed, its vectors tombstoned).
  void RemoveDocLocked(const std::string& id) REQUIRES(mu_);
  void MaybeRepairGraph();
  bool IndexingAbandoned() const;
  // Adds chunk i (slots[i], vectors + i * dim) to targets[i], for every i, on several
  // threads when there are many; stops early at shutdown (IndexingAbandoned). Returns how
  // many it added.
  size_t IndexChunks(const std::vector<std::shared_ptr<HnswIndex>>& targets, const std::vector<uint32_t>& slots,
                     const float* vectors) const;
  // Starts the background splitter when a split is to be built, or a shard has outgrown
  // max_shard_chunks and this node proposes splits (UpdateLog::LeadsMaintenance).
  void MaybeSplit();
  void SplitLoop();
  // Links the stored chunks of the shards this node indexes (on the splitter thread).
  // True when it linked any.
  bool LinkIndexedShards();
  // Chooses how to split the shard at `index` (balanced k-means over its vectors) and
  // commits the split to the log. False when it was not committed, or when the shard
  // cannot be divided (then its unsplittable mark is committed instead).
  bool ProposeSplit(size_t index);
  // Commits a split or an unsplittable mark made on the splitter thread; `key` makes a
  // retry of the same proposal commit once.
  Status CommitShardChange(Mutation* m, const std::string& key);
  // Builds the layout's split of the shard at `index` while reads and writes go on
  // (ShardSet's phases, with the locks each needs). Returns false when stopped.
  bool SplitShard(size_t index);
  std::vector<size_t> StripesFor(const std::vector<std::string>& ids) const;

  const std::string tenant_;
  const std::string name_;
  const uint64_t id_;
  const CollectionConfig config_;
  const std::shared_ptr<const Embedder> embedder_;
  Store* const store_;
  UpdateLog* const log_;
  const Clock* const clock_;
  std::unique_ptr<Analyzer> analyzer_;

  static constexpr size_t kStripes = 64;
  mutable std::array<std::mutex, kStripes> stripes_;  // serialise writers per document id

  mutable SharedMutex drop_mu_;       // writers share it; MarkDropped() takes it alone
  std::atomic<bool> dropped_{false};  // written under drop_mu_ held exclusively
  std::atomic<bool> repairing_{false};
  // Writers hold it shared from choosing their chunks' shards until the chunks are in those
  // shards' graphs; a split takes it alone to see no write half-applied.
  SharedMutex apply_mu_;
  Mutex splitter_mu_;
  std::thread splitter_ GUARDED_BY(splitter_mu_);
  std::atomic<bool> split_running_{false};
  std::atomic<uint64_t> split_requests_{0};  // MaybeSplit calls: one after the loop looked rechecks
  // Serialises split applies: each stores the layout it makes from the one before.
  Mutex layout_mu_;
  std::atomic<bool> stop_{false};
  std::atomic<ShardRouter*> router_{nullptr};
  std::atomic<int64_t> abandon_indexing_ns_{0};  // 0: never (see AbandonIndexingAt)
  std::atomic<bool> graph_incomplete_{false};

  // Lock order: stripes_ (one, by document id), then drop_mu_ / apply_mu_, then mu_; a
  // shard split takes apply_mu_ then mu_, a split's apply drop_mu_, layout_mu_, then mu_. The graphs, the query cache
  // and its verifier lock themselves and are taken under mu_ or alone, never the other way round. splitter_mu_ is a
  // leaf.
  mutable SharedMutex mu_ ACQUIRED_AFTER(apply_mu_, drop_mu_);
  DocumentTable table_ GUARDED_BY(mu_);
  ShardSet shards_ GUARDED_BY(mu_);
  uint64_t applied_sequence_ GUARDED_BY(mu_) = 0;  // the highest mutation applied here
  std::string graph_source_ = "built";             // "loaded" when Load() took a saved graph
  // Last: its verifier searches the parts above, so it stops first (also in ~Collection).
  // Mutable: it locks itself, and a query's pass through it changes no collection state.
  mutable QueryCacheLayer cache_;
};

}  // namespace contextd
