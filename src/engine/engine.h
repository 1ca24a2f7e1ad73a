// Engine: owns the parts it is built from (engine/engine_parts.h) and every collection;
// the server's one entry point for collections, sessions, the LLM cache and governance.
//
// Collections belong to a tenant; with auth off everything is the "default" tenant.
//
// Every write is a Mutation committed to the update log (engine/update_log.h); the Engine
// is the log's applier: Apply() is the one path by which collections are created, dropped
// and written. CreateCollection/DropCollection and Collection::Upsert/DeleteDocument
// propose; Apply disposes. A replica fed the same mutations through Apply() ends with the
// same state (see Digest()).
//
// Thread safety: all methods are safe for concurrent use. Collections are handed out as
// shared_ptr, so a request can finish on a collection that is being dropped.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "cache/llm_cache.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "embed/embedder_registry.h"
#include "engine/collection.h"
#include "engine/engine_parts.h"
#include "engine/services.h"
#include "engine/sessions.h"
#include "engine/update_log.h"
#include "store/store.h"

namespace contextd {

inline constexpr char kDefaultTenant[] = "default";

struct EngineOptions {
  std::string data_dir = "./data";
  std::string models_dir = "./models";
  const Clock* clock = SystemClock::Default();
  // Providers, batching and the embedding cache tiers (L2 lives in data_dir/embed_cache).
  EmbedServiceOptions embed;
  // The free space writes leave on the data directory's disk (Store::Open).
  uint64_t min_free_disk_bytes = 128ull << 20;
  // Called with every mutation the local log commits, after it is applied (tests record
  // the stream to replay it elsewhere).
  std::function<void(const Mutation&)> on_commit;
  // Makes the update log (cluster mode: JetStream); unset: the local log, RocksDB itself.
  // The log is started (Start()) once every collection is loaded.
  std::function<StatusOr<std::unique_ptr<UpdateLog>>(MutationApplier* applier)> make_log;
};

class Engine : public MutationApplier,
               public CollectionCatalog,
               public SessionService,
               public LlmCacheService,
               public GovernanceService,
               public ReplicaState,
               public SnapshotService {
 public:
  // Takes the parts (engine/engine_parts.h; every one but the tokenizer is required),
  // reads tenants and keys, starts the update log and loads every collection, rebuilding
  // its indexes where no saved graph fits.
  static StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options, EngineParts parts,
                                                MetricsRegistry* metrics);
  // Open() over OpenEngineParts(options): for tests, benchmarks and tools that need no
  // part of their own.
  static StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options, MetricsRegistry* metrics);
  ~Engine() override;

  // CollectionCatalog (engine/services.h): the handles of the concrete collections below.
  StatusOr<std::shared_ptr<CollectionHandle>> Create(const std::string& tenant, const std::string& name,
                                                     const CollectionConfig& config,
                                                     const RequestContext& ctx) override;
  StatusOr<std::shared_ptr<CollectionHandle>> Find(const std::string& tenant, const std::string& name) const override;
  Status Drop(const std::string& tenant, const std::string& name, const RequestContext& ctx) override {
    return DropCollection(tenant, name, ctx);
  }
  std::vector<std::shared_ptr<CollectionHandle>> List(const std::string& tenant) const override;

  // `config` as the server read it (server/request_codec.h: its embedder resolved, every
  // field in range).
  StatusOr<std::shared_ptr<Collection>> CreateCollection(const std::string& tenant, const std::string& name,
                                                         const CollectionConfig& config,
                                                         const RequestContext& ctx = RequestContext::Background());
  StatusOr<std::shared_ptr<Collection>> GetCollection(const std::string& tenant, const std::string& name) const;
  Status DropCollection(const std::string& tenant, const std::string& name,
                        const RequestContext& ctx = RequestContext::Background());
  std::vector<std::shared_ptr<Collection>> ListCollections(const std::string& tenant) const;
  // Every collection's stored bytes (Store::CollectionBytes), for pricing storage.
  struct StoredBytes {
    std::string tenant, collection;
    uint64_t bytes = 0;
  };
  std::vector<StoredBytes> StorageByCollection() const;
  // Every collection's shards (ids, in routing order), for the cluster's placement report.
  struct CollectionShardIds {
    std::string tenant, collection;
    uint64_t id = 0;
    std::vector<uint32_t> shards;
  };
  std::vector<CollectionShardIds> ShardsByCollection() const;

  // Sessions and cache namespaces belong to the request's tenant (ctx.tenant) and are
  // stored as "tenant/name", the default tenant's too (no name a caller gives may hold a
  // '/'). Returns the stored name, or InvalidArgument.
  static StatusOr<std::string> TenantScoped(const RequestContext& ctx, const std::string& name);
  StatusOr<SessionTurnList> SessionTurns(const std::string& session,
                                         const RequestContext& ctx = RequestContext::Background()) override;
  // Appends a turn to a session (created on first use); returns the session's turn count.
  StatusOr<size_t> AppendTurn(const std::string& session, const SessionTurn& turn, int64_t ttl_s,
                              const RequestContext& ctx = RequestContext::Background()) override;
  Status DeleteSession(const std::string& session, const RequestContext& ctx = RequestContext::Background()) override;
  // LLM-cache writes through the update log (LlmCache's one-step forms bypass it): they
  // return what LlmCache's Configure, Store and DeleteByScope/DeleteEntry return.
  StatusOr<CacheSettings> CacheConfigure(const std::string& ns, const CacheSettingsUpdate& update,
                                         const RequestContext& ctx = RequestContext::Background()) override;
  StatusOr<CacheNamespaceInfo> CacheDescribe(const std::string& ns, const RequestContext& ctx) const override;
  StatusOr<std::string> CacheStore(const std::string& ns, const CacheStoreRequest& request,
                                   const RequestContext& ctx = RequestContext::Background()) override;
  // Reads; it deletes the expired entries it meets (not through the log: every replica
  // expires them alike by the clock).
  StatusOr<contextd::CacheLookup> CacheLookup(const std::string& ns, const CacheLookupRequest& request,
                                              const RequestContext& ctx) override;
  StatusOr<size_t> CacheDelete(const std::string& ns, const std::map<std::string, std::string>& scope_fields,
                               const RequestContext& ctx = RequestContext::Background()) override;
  StatusOr<CacheFeedbackResult> CacheFeedback(const std::string& ns, const CacheFeedbackRequest& request,
                                              const RequestContext& ctx) override;
  Status CacheDeleteEntry(const std::string& ns, const std::string& id,
                          const RequestContext& ctx = RequestContext::Background()) override;

  // MutationApplier: the update log's apply path (see engine/update_log.h). A mutation at
  // or below applied_sequence() changes nothing.
  Status Apply(Mutation m, ApplyResult* result) override;
  void Skip(uint64_t sequence) override;
  uint64_t applied_sequence() const override { return applied_->value(); }
  // In cluster mode the store writes without syncing (the log is the durable copy): one
  // WAL sync makes every apply so far durable (the other databases sync each write).
  StatusOr<uint64_t> SyncApplied() override;
  StatusOr<std::string> log_identity() const override { return store_->LogIdentity(); }
  Status set_log_identity(const std::string& identity) override { return store_->SetLogIdentity(identity); }
  // Waits until applied_sequence() >= seq (a write token from another node); false when
  // `timeout` passed first.
  bool WaitForApplied(uint64_t seq, std::chrono::milliseconds timeout) const override {
    return applied_->WaitFor(seq, timeout);
  }
  // Every collection's digest, by (tenant, name), with the collection's id.
  StatusOr<Digests> Digest() const override;
  // Under data_dir/checkpoints/; see ReplicaState.
  StatusOr<CheckpointInfo> Checkpoint() const override;

  // The store's state: "ok", "disk_full" (writes fail until space is freed) or "read_only"
  // (started on a full disk), for /readyz.
  std::string_view storage_state() const override { return store_->state(); }

  // Tenants and API keys: read them here, change them through the update log.
  const AuthRegistry& auth() const override { return auth_; }
  // Creates or replaces a tenant.
  Status PutTenant(const TenantRecord& tenant, const RequestContext& ctx = RequestContext::Background()) override;
  // FailedPrecondition (tenant_not_empty) while the tenant holds collections.
  Status DeleteTenant(const std::string& id, const RequestContext& ctx = RequestContext::Background()) override;
  // Creates, replaces (rotation: a new hash) or changes a key; its tenant must exist.
  Status PutKey(const KeyRecord& key, const RequestContext& ctx = RequestContext::Background()) override;
  Status DeleteKey(const std::string& id, const RequestContext& ctx = RequestContext::Background()) override;

  // Saves every collection's HNSW graph so the next Open() loads instead of rebuilding.
  // Call at shutdown, after the last write has finished.
  Status SaveGraphs();

  // SnapshotService (engine/snapshots.cc).
  StatusOr<SnapshotInfo> CreateSnapshot(const std::string& tenant, const std::string& collection,
                                        const RequestContext& ctx) override;
  StatusOr<std::vector<SnapshotInfo>> ListSnapshots(const std::string& tenant,
                                                    const std::string& collection) const override;
  StatusOr<std::string> ReadSnapshot(const std::string& tenant, const std::string& collection,
                                     const std::string& name) const override;
  StatusOr<std::string> SnapshotFile(const std::string& tenant, const std::string& collection,
                                     const std::string& name) const override;
  Status DeleteSnapshot(const std::string& tenant, const std::string& collection, const std::string& name) override;
  StatusOr<SnapshotInfo> RestoreSnapshot(const std::string& tenant, const std::string& collection,
                                         std::string_view snapshot, const RequestContext& ctx) override;
  // Shutdown: writes still indexing at `at_ns` (the clock's time) stop and reply (see
  // Collection::AbandonIndexingAt); the graphs they leave incomplete are rebuilt at the
  // next start.
  void AbandonIndexingAt(int64_t at_ns);

  // Cluster mode: every collection's queries go through `router` while it Spreads() (null:
  // each node answers alone). It must outlive the queries; unset it before it goes.
  void SetShardRouter(ShardRouter* router);
  // Cluster mode: every collection links the graphs of the shards the router says this
  // node indexes, and only stores the others' vectors (Collection::RefreshIndexing). Call
  // it whenever the shard map may have changed (a server does, every second).
  void RefreshShardIndexing();
  // A node holding shards answers its part of another node's query: once it has applied
  // q.read_after (DeadlineExceeded apply_lagging when it cannot within q.timeout_ms), from
  // the collection q names if it is still the one asked about (NotFound otherwise).
  StatusOr<ShardCandidates> AnswerShardQuery(const ShardQuery& q) const;

 private:
  // Every collection, taken under mu_ so the caller can work on them without it.
  std::vector<std::shared_ptr<Collection>> AllCollections() const;
  Engine() = default;
  void RenderMetrics(std::string* out) const;
  // Commits a proposed mutation to the log; what applying it changed.
  StatusOr<ApplyResult> Commit(const RequestContext& ctx, Mutation m);
  // Apply() for a sequence not applied before.
  Status ApplyNew(Mutation m, ApplyResult* result);
  Status ApplyCreate(const Mutation& m);
  Status ApplyDrop(const Mutation& m);
  Status ApplySession(const Mutation& m, ApplyResult* result);
  Status ApplyCache(Mutation m, ApplyResult* result);
  Status ApplyAuth(const Mutation& m);
  // Records an applied sequence whose state lives outside the main store.
  Status RecordSequence(uint64_t sequence);
  StatusOr<size_t> CommitCacheDelete(const std::string& ns, std::vector<std::string> ids, const RequestContext& ctx);
  std::string GraphPath(uint64_t collection_id) const;
  // data_dir/snapshots/TENANT/COLLECTION
  std::string SnapshotDir(const std::string& tenant, const std::string& collection) const;
  // Where int8 graphs keep their memory-mapped fp32 vectors (unnamed files).
  std::string VectorDir() const;

  EngineOptions options_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<EmbedderRegistry> embedders_;  // after store_: its L2 tier is its own DB
  std::unique_ptr<LlmCache> llm_cache_;          // after embedders_, which it uses
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<AppliedSequence> applied_;
  AuthRegistry auth_;
  std::unique_ptr<UpdateLog> log_;  // before collections_, which use it
  MetricsRegistry* metrics_ = nullptr;
  int collector_id_ = 0;

  // Applies hold it shared; a checkpoint takes it alone, so its copies of the three
  // databases are of one applied sequence.
  mutable SharedMutex checkpoint_mu_;
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Collection>> collections_ GUARDED_BY(mu_);
  int64_t abandon_indexing_ns_ GUARDED_BY(mu_) = 0;  // for collections created after it is set
  ShardRouter* router_ GUARDED_BY(mu_) = nullptr;    // for collections created after it is set
};

}  // namespace contextd
