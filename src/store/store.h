// Store: the durable state of contextd in RocksDB: collection definitions, documents and
// their chunks (text + vector), so indexes can be rebuilt from it at start-up.
//
// Keys put the tenant first so a tenant's data is one contiguous range:
//   'm' tenant \0 name                        -> collection record (JSON)
//   'd' tenant \0 id:be64 'D' doc_id          -> document record
//   'd' tenant \0 id:be64 'C' doc_id \0 n:be32 -> chunk record
//   'd' tenant \0 id:be64 'L'                  -> the collection's shard layout
//   'x' "next_collection_id"                  -> be64 counter (ids before the update log)
//   'x' "applied_sequence"                    -> be64, merged as the maximum
//   'x' "log_identity"                        -> the update log the sequences count in
//   'a' kind id                               -> auth record (JSON): kind 't' tenant, 'k' key
// Collection ids are never reused, so a dropped collection's leftovers can never leak into
// a new collection of the same name. Document ids may not contain NUL (validated upstream).
//
// Durability: Write() with sync appends the batch atomically to the WAL and fsyncs before
// returning. RocksDB's write thread groups concurrent writers into one WAL append and one
// fsync (group commit), so concurrent batches share the cost of a sync.
//
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace contextd {

struct CollectionRecord {
  std::string tenant;
  std::string name;
  uint64_t id = 0;
  std::string config;  // JSON, owned by the engine
};

namespace rocks {
// RocksDB's checkpoint of `db` into `dir`, for the stores beside this one (sessions, the LLM
// cache) that seed a replica too. `db` is a rocksdb::DB*, untyped to keep RocksDB's headers
// out of this one.
Status CheckpointTo(void* db, const std::string& dir);
}  // namespace rocks

class WriteBatch {
 public:
  WriteBatch();
  // reserve_bytes: the expected size; a large batch built by doubling would peak at three
  // times its size while it grows.
  explicit WriteBatch(size_t reserve_bytes);
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;

  void PutDocument(std::string_view tenant, uint64_t coll, std::string_view doc_id, std::string_view value);
  void DeleteDocument(std::string_view tenant, uint64_t coll, std::string_view doc_id);
  void PutChunk(std::string_view tenant, uint64_t coll, std::string_view doc_id, uint32_t n, std::string_view value);
  void DeleteChunk(std::string_view tenant, uint64_t coll, std::string_view doc_id, uint32_t n);
  // The collection's shard layout (engine/shard_layout.h), replaced whole.
  void PutShardLayout(std::string_view tenant, uint64_t coll, std::string_view value);
  // Tenants and API keys (kind 't' or 'k').
  void PutAuth(char kind, std::string_view id, std::string_view value);
  void DeleteAuth(char kind, std::string_view id);
  // Records that the update log's mutation `sequence` is applied by this batch. Batches
  // may commit out of order; the store keeps the highest.
  void RecordSequence(uint64_t sequence);
  size_t size_bytes() const;

 private:
  friend class Store;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

class Store {
 public:
  // Opens (creating if needed) the database in `dir`.
  //
  // min_free_bytes is the disk's flood mark, as Elasticsearch has one: a write that would
  // leave less free space than that on the data directory's filesystem is refused
  // (Unavailable "disk_full", HTTP 507) before RocksDB sees it, and writes resume by
  // themselves once a quarter more than that is free again. RocksDB itself must never
  // meet a full disk: a WAL append that fails leaves its writer broken (a later write, or
  // opening the database, then aborts on an assertion). Opened with less than that free,
  // the store is read-only until a restart.
  //
  // Every `idle_flush` (0: never) the store looks whether it was written since the last
  // look, and flushes its memtables when it was not (FlushIfIdle).
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& dir, uint64_t min_free_bytes = 128ull << 20,
                                               std::chrono::milliseconds idle_flush = std::chrono::seconds(1));
  ~Store();

  // Stores the record of collection `id` (the sequence of the mutation that creates it),
  // durably, with that sequence recorded as applied.
  Status CreateCollection(std::string_view tenant, std::string_view name, uint64_t id, std::string_view config);
  // Removes the record and every document and chunk of the collection, durably, with
  // `sequence` recorded as applied.
  Status DropCollection(std::string_view tenant, std::string_view name, uint64_t id, uint64_t sequence);
  StatusOr<std::vector<CollectionRecord>> ListCollections() const;
  // About how many bytes the collection's documents and chunks take on disk and in the
  // memtables (RocksDB's estimate: compressed file sizes, for pricing storage).
  uint64_t CollectionBytes(std::string_view tenant, uint64_t coll) const;

  Status Write(WriteBatch* batch, bool sync = true);
  // Off: Write() never fsyncs (the WAL still takes every batch, so a process crash loses
  // nothing). For a replica of a replicated log, whose durability is the log's: what a
  // power loss takes back is applied again from the log, from the sequence that survived.
  void set_sync_writes(bool on) { sync_writes_ = on; }
  // Makes every write so far durable (one WAL fsync): what a replica that writes without
  // syncing does before it tells the log how far it may be purged.
  Status SyncWal();
  // A consistent copy of the database in `dir` (which must not exist): RocksDB's checkpoint,
  // hard links to the table files and a copy of the rest. Seeds a new replica.
  Status Checkpoint(const std::string& dir) const;

  // The document record, or nullopt.
  StatusOr<std::optional<std::string>> GetDocument(std::string_view tenant, uint64_t coll,
                                                   std::string_view doc_id) const;
  // The shard layout last written with PutShardLayout, or nullopt (never split).
  StatusOr<std::optional<std::string>> GetShardLayout(std::string_view tenant, uint64_t coll) const;
  // Visits every document record (in id order), then every chunk record (in document, then
  // chunk order). The views are valid only during the callback.
  Status ScanDocuments(std::string_view tenant, uint64_t coll,
                       const std::function<void(std::string_view doc_id, std::string_view value)>& fn) const;
  // Visits document records in id order from the first id after `after` ("" : from the
  // start) until `fn` returns false.
  Status ScanDocumentsAfter(std::string_view tenant, uint64_t coll, std::string_view after,
                            const std::function<bool(std::string_view doc_id, std::string_view value)>& fn) const;
  // Every document with its chunk records, in id order, as of one moment (a RocksDB
  // snapshot: writes going on meanwhile are either wholly in or wholly out). Stops at the
  // first error `fn` returns.
  struct ChunkRecord {
    uint32_t ordinal;
    std::string value;  // a copy: an iterator's view lasts only until it moves on
  };
  Status ScanCollectionAtOneMoment(std::string_view tenant, uint64_t coll,
                                   const std::function<Status(std::string_view doc_id, std::string_view document,
                                                              const std::vector<ChunkRecord>& chunks)>& fn) const;
  Status ScanChunks(std::string_view tenant, uint64_t coll,
                    const std::function<void(std::string_view doc_id, uint32_t n, std::string_view value)>& fn) const;

  // The highest update-log sequence recorded by a write, or, for a store written before
  // the update log, the highest collection id it handed out.
  StatusOr<uint64_t> AppliedSequence() const;
  // Which update log the applied sequence counts in ("" until recorded: a single node, or
  // a store from before it was recorded). A node's data must never follow another log.
  StatusOr<std::string> LogIdentity() const;
  Status SetLogIdentity(std::string_view identity);  // synced

  // Visits every auth record (tenants, then keys).
  Status ScanAuth(const std::function<void(char kind, std::string_view id, std::string_view value)>& fn) const;

  // The sequence number of the last write. Equal values mean nothing was written in
  // between (it survives restarts), which is how saved derived state is validated.
  uint64_t LatestSequence() const;

  // Whether a write of about `bytes` may go to this disk now (the same flood mark as
  // Write()), for the other databases in the data directory (sessions, the LLM cache).
  Status CheckSpace(uint64_t bytes) const;
  // "ok"; "disk_full" while writes fail for want of space (they resume by themselves once
  // space is freed); "read_only" when it was opened on a full disk.
  std::string_view state() const;

  // RocksDB's own view of its size, for /metrics.
  uint64_t ApproximateBytes() const;
  // Flushes the memtables to a table file when nothing was written since the previous call
  // and they hold at least kIdleFlushBytes: a server idle after large writes (or after
  // deleting large documents, whose tombstones fill a memtable) gives that memory back,
  // and its WAL with it. True when it flushed.
  bool FlushIfIdle();
  static constexpr uint64_t kIdleFlushBytes = 1 << 20;
  // A table file with kDeletionTrigger deletions among any kDeletionWindow consecutive
  // entries is marked for compaction.
  static constexpr size_t kDeletionWindow = 128, kDeletionTrigger = 64;

  // Bytes RocksDB holds in RAM: memtables (written data not yet flushed, up to two of
  // 64 MB by default) plus table readers, for /metrics and memory accounting.
  uint64_t MemoryBytes() const;

 private:
  struct Rep;
  explicit Store(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
  std::atomic<bool> sync_writes_{true};
};

// Sessions and LLM-cache namespaces are stored under "tenant/name" (a tenant's own
// names cannot hold a '/'). Data written before 2026-12-04 stored the default tenant's
// under their bare name: this renames, in the RocksDB at `dir`, every key that starts with
// one of `prefixes` (one byte each) and whose name (up to the first '\0', or the end)
// has no '/', to the same key with "tenant/" before the name. One synced batch; a
// directory with nothing to rename is left untouched (so it runs at every start). Returns
// how many keys it renamed.
StatusOr<size_t> AdoptUnscopedKeys(const std::string& dir, std::string_view prefixes, const std::string& tenant);

}  // namespace contextd
