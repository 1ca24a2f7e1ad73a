// The engine as the server sees it: small interfaces, one per job, so the HTTP layer can
// be tested in-process against fakes (tests/server/fakes.h) and a future remote engine
// (a cluster node forwarding to the shard owner) can stand behind the same API.
//
//   CollectionCatalog   create, find, drop and list a tenant's collections
//   CollectionHandle    one collection: upsert, get, delete, query, describe
//   SessionService      conversation sessions (/v1/sessions, /v1/context's history)
//   LlmCacheService     the LLM response cache (/v1/cache/{ns})
//   GovernanceService   tenants and API keys: read them, change them through the log
//   ReplicaState        what this node has applied, and whether its storage takes writes
//
// Engine implements all but CollectionHandle, which Collection implements; EmbedderCatalog
// (embed/embedder_catalog.h) is the fifth dependency. Every write takes the request's
// context (deadline, tenant, idempotency key, usage); names a caller gives are the
// caller's own (a tenant's sessions and cache namespaces are scoped by ctx.tenant inside).
//
// Thread safety: every implementation is safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"
#include "cache/llm_cache.h"
#include "common/request_context.h"
#include "common/status.h"
#include "engine/collection_types.h"
#include "engine/requests.h"
#include "engine/sessions.h"
#include "text/analyzer.h"

namespace contextd {

class CollectionHandle {
 public:
  virtual ~CollectionHandle() = default;
  virtual const std::string& name() const = 0;
  virtual const CollectionConfig& config() const = 0;
  // False for "embedder":"none" collections (vectors come with the documents).
  virtual bool has_embedder() const = 0;
  // Queries wait on a remote embedder (Embedder::waits()): the server runs them on its
  // embed pool, not the few search threads.
  virtual bool embedder_waits() const = 0;
  // The collection's text analyzer (context assembly checks term coverage with it).
  virtual const Analyzer& analyzer() const = 0;
  // Validated documents (server/request_codec.h); embeds, then commits one mutation.
  virtual Status Upsert(const RequestContext& ctx, std::vector<DocumentInput> docs, UpsertResult* result) = 0;
  virtual StatusOr<StoredDocument> GetDocument(const std::string& id) const = 0;
  // Many at once, in the order asked; the ids not found go to `missing`.
  virtual StatusOr<std::vector<StoredDocument>> GetDocuments(const std::vector<std::string>& ids,
                                                             std::vector<std::string>* missing) const = 0;
  // A page of the stored documents in id order, read from the store (a consistent view of
  // each document; a write between pages shows on the later ones). The deadline bounds a
  // filtered scan: past it the page ends early, with a cursor to go on from.
  virtual StatusOr<DocumentPage> ListDocuments(const RequestContext& ctx, const DocumentListRequest& request) const = 0;
  // NotFound when there is no such document.
  virtual Status DeleteDocument(const RequestContext& ctx, const std::string& id) = 0;
  virtual StatusOr<QueryResult> Query(const RequestContext& ctx, const QueryRequest& request) const = 0;
  virtual CollectionInfo Describe() const = 0;
  virtual ShardsReport DescribeShards() const = 0;
};

class CollectionCatalog {
 public:
  virtual ~CollectionCatalog() = default;
  // AlreadyExists (collection_exists) when the tenant has one of that name.
  virtual StatusOr<std::shared_ptr<CollectionHandle>> Create(const std::string& tenant, const std::string& name,
                                                             const CollectionConfig& config,
                                                             const RequestContext& ctx) = 0;
  // NotFound (collection_not_found), also for another tenant's collection.
  virtual StatusOr<std::shared_ptr<CollectionHandle>> Find(const std::string& tenant,
                                                           const std::string& name) const = 0;
  virtual Status Drop(const std::string& tenant, const std::string& name, const RequestContext& ctx) = 0;
  // In name order.
  virtual std::vector<std::shared_ptr<CollectionHandle>> List(const std::string& tenant) const = 0;
};

class SessionService {
 public:
  virtual ~SessionService() = default;
  // The session's live turns, oldest first; NotFound (session_not_found) when it has none.
  virtual StatusOr<SessionTurnList> SessionTurns(const std::string& session, const RequestContext& ctx) = 0;
  // Appends a turn (the session is created on first use); returns its turn count.
  virtual StatusOr<size_t> AppendTurn(const std::string& session, const SessionTurn& turn, int64_t ttl_s,
                                      const RequestContext& ctx) = 0;
  virtual Status DeleteSession(const std::string& session, const RequestContext& ctx) = 0;
};

class LlmCacheService {
 public:
  virtual ~LlmCacheService() = default;
  virtual StatusOr<CacheSettings> CacheConfigure(const std::string& ns, const CacheSettingsUpdate& update,
                                                 const RequestContext& ctx) = 0;
  virtual StatusOr<CacheNamespaceInfo> CacheDescribe(const std::string& ns, const RequestContext& ctx) const = 0;
  // Returns the new entry's id.
  virtual StatusOr<std::string> CacheStore(const std::string& ns, const CacheStoreRequest& request,
                                           const RequestContext& ctx) = 0;
  virtual StatusOr<contextd::CacheLookup> CacheLookup(const std::string& ns, const CacheLookupRequest& request,
                                                      const RequestContext& ctx) = 0;
  // Deletes the entries whose scope has every given field (values compared as JSON text);
  // returns how many.
  virtual StatusOr<size_t> CacheDelete(const std::string& ns, const std::map<std::string, std::string>& scope_fields,
                                       const RequestContext& ctx) = 0;
  virtual Status CacheDeleteEntry(const std::string& ns, const std::string& id, const RequestContext& ctx) = 0;
  // Records whether entry `id` was right for a prompt; returns what was observed and what
  // the namespace now requires.
  virtual StatusOr<CacheFeedbackResult> CacheFeedback(const std::string& ns, const CacheFeedbackRequest& request,
                                                      const RequestContext& ctx) = 0;
};

class GovernanceService {
 public:
  virtual ~GovernanceService() = default;
  // Tenants and keys as this node knows them (every node applies the same log).
  virtual const AuthRegistry& auth() const = 0;
  virtual Status PutTenant(const TenantRecord& tenant, const RequestContext& ctx) = 0;
  // FailedPrecondition (tenant_not_empty) while the tenant holds collections.
  virtual Status DeleteTenant(const std::string& id, const RequestContext& ctx) = 0;
  virtual Status PutKey(const KeyRecord& key, const RequestContext& ctx) = 0;
  virtual Status DeleteKey(const std::string& id, const RequestContext& ctx) = 0;
};

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
  uint64_t layout = 0;  // the shard layout's splits
  // Chunks whose shard's graph holds no vector for them: never anything but 0 (such a
  // chunk cannot be found by vector search); counted so replica checks catch it.
  size_t unindexed_chunks = 0;
  // By shard of the layout: how many chunks it holds and their digest (the chunks' own,
  // summed). Taken from the layout, not from the shards built so far, so a replica still
  // building a split compares equal once it has applied the same mutations.
  struct Shard {
    size_t chunks = 0;
    uint64_t digest = 0;
    bool operator==(const Shard&) const = default;
  };
  std::map<uint32_t, Shard> shards;
  bool operator==(const CollectionDigest&) const = default;
};

class ReplicaState {
 public:
  virtual ~ReplicaState() = default;
  // Every collection's digest with its id, by (tenant, name): replicas that applied the
  // same mutations have equal ones. Reads the whole store: for checks, not the hot path.
  using Digests = std::map<std::pair<std::string, std::string>, std::pair<uint64_t, CollectionDigest>>;
  virtual StatusOr<Digests> Digest() const = 0;
  // A copy of every database this node's replicated state lives in (the store, sessions,
  // the LLM cache) at one applied sequence, in a new directory whose path it returns, for
  // the caller to stream and remove: what a new replica starts from once the log no longer
  // reaches back to its start. Applies wait while the copies are made (they are hard links
  // and small files: milliseconds).
  struct CheckpointInfo {
    std::string dir;
    uint64_t sequence = 0;
  };
  virtual StatusOr<CheckpointInfo> Checkpoint() const = 0;
  // The highest log sequence below which every mutation is applied here.
  virtual uint64_t applied_sequence() const = 0;
  // Waits until applied_sequence() >= seq; false when `timeout` passed first.
  virtual bool WaitForApplied(uint64_t seq, std::chrono::milliseconds timeout) const = 0;
  // "ok", "disk_full" (writes refused until space is freed) or "read_only".
  virtual std::string_view storage_state() const = 0;
};

// Collection snapshots: taken while reads and writes go on, listed, downloaded, deleted,
// and restored (into a new collection, through the update log). They live under the data
// directory, one folder per tenant and collection.
struct SnapshotInfo {
  std::string name;
  std::string collection;
  uint64_t documents = 0, chunks = 0, size_bytes = 0, sequence = 0;
  int64_t created_ms = 0;
};
class SnapshotService {
 public:
  virtual ~SnapshotService() = default;
  virtual StatusOr<SnapshotInfo> CreateSnapshot(const std::string& tenant, const std::string& collection,
                                                const RequestContext& ctx) = 0;
  // Newest first. The collection need not exist any more.
  virtual StatusOr<std::vector<SnapshotInfo>> ListSnapshots(const std::string& tenant,
                                                            const std::string& collection) const = 0;
  // The snapshot file's bytes (NotFound, snapshot_not_found).
  virtual StatusOr<std::string> ReadSnapshot(const std::string& tenant, const std::string& collection,
                                             const std::string& name) const = 0;
  // Where the snapshot file is, to stream it (NotFound, snapshot_not_found).
  virtual StatusOr<std::string> SnapshotFile(const std::string& tenant, const std::string& collection,
                                             const std::string& name) const = 0;
  virtual Status DeleteSnapshot(const std::string& tenant, const std::string& collection, const std::string& name) = 0;
  // Creates `collection` (AlreadyExists when it exists) with the snapshot's settings and
  // writes its documents. A snapshot that fails its checks changes nothing; a restore
  // that fails part way drops what it created.
  virtual StatusOr<SnapshotInfo> RestoreSnapshot(const std::string& tenant, const std::string& collection,
                                                 std::string_view snapshot, const RequestContext& ctx) = 0;
};

}  // namespace contextd
