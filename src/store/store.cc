#include "store/store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>
#include <algorithm>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/mutex.h"
#include "common/periodic_task.h"

namespace contextd {
namespace {

void AppendBE64(std::string* s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
void AppendBE32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
uint64_t ReadBE(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}

std::string MetaKey(std::string_view tenant, std::string_view name) {
  std::string k = "m";
  k.append(tenant);
  k.push_back('\0');
  k.append(name);
  return k;
}

std::string CollPrefix(std::string_view tenant, uint64_t coll) {
  std::string k = "d";
  k.append(tenant);
  k.push_back('\0');
  AppendBE64(&k, coll);
  return k;
}

std::string DocKey(std::string_view tenant, uint64_t coll, std::string_view doc_id) {
  std::string k = CollPrefix(tenant, coll);
  k.push_back('D');
  k.append(doc_id);
  return k;
}

std::string ChunkKey(std::string_view tenant, uint64_t coll, std::string_view doc_id, uint32_t n) {
  std::string k = CollPrefix(tenant, coll);
  k.push_back('C');
  k.append(doc_id);
  k.push_back('\0');
  AppendBE32(&k, n);
  return k;
}

// The smallest key greater than every key starting with `prefix`.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char c = static_cast<unsigned char>(prefix.back());
    if (c != 0xff) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Internal("storage: " + what + ": " + s.ToString(), "storage_error");
}

const char kNextIdKey[] = "xnext_collection_id";
const char kAppliedKey[] = "xapplied_sequence";
const char kLogIdentityKey[] = "xlog_identity";

std::string EncodeBE64(uint64_t v) {
  std::string s;
  AppendBE64(&s, v);
  return s;
}

// Keeps the highest of the be64 values merged into a key: concurrent batches record their
// sequences in whatever order RocksDB commits them, and the maximum is what restarts need.
class MaxMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* out,
             rocksdb::Logger*) const override {
    uint64_t best = value.size() == 8 ? ReadBE(std::string_view(value.data(), 8), 0, 8) : 0;
    if (existing != nullptr && existing->size() == 8)
      best = std::max(best, ReadBE(std::string_view(existing->data(), 8), 0, 8));
    *out = EncodeBE64(best);
    return true;
  }
  const char* Name() const override { return "contextd.max_be64"; }
};

}  // namespace

struct WriteBatch::Rep {
  explicit Rep(size_t reserve_bytes) : batch(reserve_bytes) {}
  rocksdb::WriteBatch batch;
};

WriteBatch::WriteBatch() : WriteBatch(0) {}
WriteBatch::WriteBatch(size_t reserve_bytes) : rep_(std::make_unique<Rep>(reserve_bytes)) {}
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;

void WriteBatch::PutDocument(std::string_view tenant, uint64_t coll, std::string_view doc_id, std::string_view value) {
  rep_->batch.Put(DocKey(tenant, coll, doc_id), rocksdb::Slice(value.data(), value.size()));
}
void WriteBatch::DeleteDocument(std::string_view tenant, uint64_t coll, std::string_view doc_id) {
  rep_->batch.Delete(DocKey(tenant, coll, doc_id));
}
void WriteBatch::PutChunk(std::string_view tenant, uint64_t coll, std::string_view doc_id, uint32_t n,
                          std::string_view value) {
  rep_->batch.Put(ChunkKey(tenant, coll, doc_id, n), rocksdb::Slice(value.data(), value.size()));
}
void WriteBatch::DeleteChunk(std::string_view tenant, uint64_t coll, std::string_view doc_id, uint32_t n) {
  rep_->batch.Delete(ChunkKey(tenant, coll, doc_id, n));
}
void WriteBatch::PutShardLayout(std::string_view tenant, uint64_t coll, std::string_view value) {
  rep_->batch.Put(CollPrefix(tenant, coll) + "L", rocksdb::Slice(value.data(), value.size()));
}
void WriteBatch::PutAuth(char kind, std::string_view id, std::string_view value) {
  rep_->batch.Put(std::string("a") + kind + std::string(id), rocksdb::Slice(value.data(), value.size()));
}
void WriteBatch::DeleteAuth(char kind, std::string_view id) {
  rep_->batch.Delete(std::string("a") + kind + std::string(id));
}
void WriteBatch::RecordSequence(uint64_t sequence) { rep_->batch.Merge(kAppliedKey, EncodeBE64(sequence)); }
size_t WriteBatch::size_bytes() const { return rep_->batch.GetDataSize(); }

namespace {

bool IsNoSpace(const rocksdb::Status& s) {
  return s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos;
}

uint64_t FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) return UINT64_MAX;  // unknown: do not refuse
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace

struct Store::Rep {
  std::unique_ptr<rocksdb::DB> db;
  Mutex meta_mu;  // serialises collection create/drop (id allocation)
  std::string dir;
  uint64_t min_free = 0;
  bool read_only = false;                               // opened with less than min_free
  Mutex idle_mu;                                        // one idle look at a time
  uint64_t idle_seen_sequence GUARDED_BY(idle_mu) = 0;  // the last write's sequence at the previous look
  // Below the flood mark: writes are refused until min_free * 1.25 is free again.
  std::atomic<bool> full{false};
  // RocksDB met a full disk anyway (something else filled it between checks): its WAL
  // writer is broken, so writes stop until a restart.
  std::atomic<bool> broken{false};
  // FlushIfIdle every idle_flush; started by Open. Last: stopped before the state it reads.
  std::unique_ptr<PeriodicTask> idle;

  // What the memtables hold (written data not yet in a table file).
  uint64_t MemtableBytes() const {
    uint64_t mem = 0;
    db->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
    return mem;
  }

  Status DiskFull(uint64_t free_bytes) const {
    return Unavailable("storage: the disk is full (" + std::to_string(free_bytes >> 20) + " MB free, " +
                           std::to_string(min_free >> 20) +
                           " MB kept in reserve); reads go on, writes resume once space is freed",
                       "disk_full");
  }
  // Refuses a write of `bytes` while the disk is at its flood mark (see Store::Open).
  Status CheckSpace(uint64_t bytes) {
    if (read_only) {
      return Unavailable("storage: the server started on a full disk and is read-only; free space and restart it",
                         "disk_full");
    }
    if (broken.load()) {
      return Unavailable("storage: the disk filled up under the database; free space and restart the server",
                         "disk_full");
    }
    const uint64_t free_bytes = FreeBytes(dir);
    const uint64_t need = min_free + bytes * 2;  // the WAL, then the flush
    if (full.load()) {
      if (free_bytes < need + min_free / 4) return DiskFull(free_bytes);
      full = false;
      spdlog::info("storage: {} MB free again; writes resume", free_bytes >> 20);
    }
    if (free_bytes < need) {
      if (!full.exchange(true))
        spdlog::error("storage: {} MB free, below the {} MB reserve; writes stop until space is freed",
                      free_bytes >> 20, min_free >> 20);
      return DiskFull(free_bytes);
    }
    return Status::Ok();
  }
  // Every write goes through here.
  Status Commit(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, const char* what) {
    CTX_RETURN_IF_ERROR(CheckSpace(batch->GetDataSize()));
    rocksdb::Status s = db->Write(wo, batch);
    if (s.ok()) return Status::Ok();
    if (IsNoSpace(s)) {
      if (!broken.exchange(true)) spdlog::error("storage: the disk filled up under the database: {}", s.ToString());
      return DiskFull(FreeBytes(dir));
    }
    return FromRocks(s, what);
  }
};

Store::Store(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
// The idle task first: it reads the database.
Store::~Store() { rep_->idle.reset(); }

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, uint64_t min_free_bytes,
                                             std::chrono::milliseconds idle_flush) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.compression = rocksdb::kZSTD;
  options.merge_operator = std::make_shared<MaxMergeOperator>();
  // Recover everything that reached the WAL, and refuse to open over real corruption
  // rather than silently dropping acknowledged writes.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // A table file written mostly of deletions (a large document deleted, its chunks' records
  // with it) is compacted soon, not when the level fills: the deleted data's disk space,
  // and the memory of its table readers, come back.
  options.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(kDeletionWindow, kDeletionTrigger));
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  auto rep = std::make_unique<Rep>();
  rep->dir = std::filesystem::exists(dir) ? dir : std::filesystem::path(dir).parent_path().string();
  rep->min_free = min_free_bytes;
  if (const uint64_t free_bytes = FreeBytes(rep->dir);
      std::filesystem::exists(dir + "/CURRENT") && free_bytes < min_free_bytes) {
    spdlog::error(
        "storage: {} has {} MB free, below the {} MB reserve; opening read-only (writes answer 507 until a "
        "restart with space)",
        dir, free_bytes >> 20, min_free_bytes >> 20);
    rep->read_only = true;
  }
  rocksdb::Status s =
      rep->read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &db) : rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return Internal("storage: cannot open " + dir + ": " + s.ToString(), "storage_error");
  rep->db.reset(db);
  rep->dir = dir;
  auto store = std::unique_ptr<Store>(new Store(std::move(rep)));
  if (idle_flush.count() > 0 && !store->rep_->read_only) {
    store->rep_->idle = std::make_unique<PeriodicTask>(idle_flush, [s = store.get()] { (void)s->FlushIfIdle(); });
  }
  return store;
}

Status Store::CreateCollection(std::string_view tenant, std::string_view name, uint64_t id, std::string_view config) {
  MutexLock lock(&rep_->meta_mu);
  rocksdb::WriteBatch batch;
  // Kept past every id, so AppliedSequence() covers ids either way.
  batch.Merge(kNextIdKey, EncodeBE64(id + 1));
  batch.Merge(kAppliedKey, EncodeBE64(id));
  std::string record = EncodeBE64(id);
  record.append(config);
  batch.Put(MetaKey(tenant, name), record);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return rep_->Commit(wo, &batch, "create collection");
}

StatusOr<uint64_t> Store::AppliedSequence() const {
  uint64_t applied = 0;
  for (const char* key : {kAppliedKey, kNextIdKey}) {
    std::string value;
    rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) continue;
    CTX_RETURN_IF_ERROR(FromRocks(s, "read applied sequence"));
    if (value.size() != 8) return Internal("storage: corrupt sequence record", "storage_error");
    uint64_t v = ReadBE(value, 0, 8);
    // next_collection_id is one past the last id handed out.
    applied = std::max(applied, key == kNextIdKey && v > 0 ? v - 1 : v);
  }
  return applied;
}

StatusOr<std::string> Store::LogIdentity() const {
  std::string value;
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), kLogIdentityKey, &value);
  if (s.IsNotFound()) return std::string();
  CTX_RETURN_IF_ERROR(FromRocks(s, "read the log identity"));
  return value;
}

Status Store::SetLogIdentity(std::string_view identity) {
  rocksdb::WriteBatch batch;
  batch.Put(kLogIdentityKey, rocksdb::Slice(identity.data(), identity.size()));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return rep_->Commit(wo, &batch, "record the log identity");
}

Status Store::DropCollection(std::string_view tenant, std::string_view name, uint64_t id, uint64_t sequence) {
  MutexLock lock(&rep_->meta_mu);
  rocksdb::WriteBatch batch;
  batch.Merge(kAppliedKey, EncodeBE64(sequence));
  batch.Delete(MetaKey(tenant, name));
  std::string prefix = CollPrefix(tenant, id);
  batch.DeleteRange(rep_->db->DefaultColumnFamily(), prefix, PrefixEnd(prefix));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  CTX_RETURN_IF_ERROR(rep_->Commit(wo, &batch, "drop collection"));
  // Reclaim the space in the background of this call; failure only costs disk.
  std::string end = PrefixEnd(prefix);
  rocksdb::Slice b(prefix), e(end);
  (void)rep_->db->CompactRange(rocksdb::CompactRangeOptions(), &b, &e);
  return Status::Ok();
}

StatusOr<std::vector<CollectionRecord>> Store::ListCollections() const {
  std::vector<CollectionRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("m"); it->Valid() && it->key().starts_with("m"); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string_view value(it->value().data(), it->value().size());
    size_t nul = key.find('\0');
    if (nul == std::string_view::npos || value.size() < 8) {
      return Internal("storage: corrupt collection record", "storage_error");
    }
    CollectionRecord r;
    r.tenant = std::string(key.substr(1, nul - 1));
    r.name = std::string(key.substr(nul + 1));
    r.id = ReadBE(value, 0, 8);
    r.config = std::string(value.substr(8));
    out.push_back(std::move(r));
  }
  CTX_RETURN_IF_ERROR(FromRocks(it->status(), "list collections"));
  return out;
}

Status Store::Write(WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync && sync_writes_.load(std::memory_order_relaxed);
  return rep_->Commit(wo, &batch->rep_->batch, "write batch");
}

StatusOr<std::optional<std::string>> Store::GetDocument(std::string_view tenant, uint64_t coll,
                                                        std::string_view doc_id) const {
  std::string value;
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), DocKey(tenant, coll, doc_id), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  CTX_RETURN_IF_ERROR(FromRocks(s, "get document"));
  return std::optional<std::string>(std::move(value));
}

StatusOr<std::optional<std::string>> Store::GetShardLayout(std::string_view tenant, uint64_t coll) const {
  std::string value;
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), CollPrefix(tenant, coll) + "L", &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  CTX_RETURN_IF_ERROR(FromRocks(s, "get shard layout"));
  return std::optional<std::string>(std::move(value));
}

namespace {

// A RocksDB iterator over the keys under `prefix` (bounded above, so it ends with the
// prefix), at `moment` when one is given. rest(): the key after the prefix.
class PrefixIterator {
 public:
  PrefixIterator(rocksdb::DB* db, std::string prefix, const rocksdb::Snapshot* moment = nullptr)
      : prefix_(std::move(prefix)), end_(PrefixEnd(prefix_)), upper_(end_) {
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_;
    ro.snapshot = moment;
    it_.reset(db->NewIterator(ro));
  }
  PrefixIterator(const PrefixIterator&) = delete;  // upper_ points into end_
  PrefixIterator& operator=(const PrefixIterator&) = delete;

  // To the first key at or after prefix + rest.
  void Seek(std::string_view rest = "") { it_->Seek(prefix_ + std::string(rest)); }
  bool Valid() const { return it_->Valid(); }
  void Next() { it_->Next(); }
  std::string_view rest() const {
    return std::string_view(it_->key().data() + prefix_.size(), it_->key().size() - prefix_.size());
  }
  std::string_view value() const { return std::string_view(it_->value().data(), it_->value().size()); }
  Status status(const char* what) const { return FromRocks(it_->status(), what); }

 private:
  const std::string prefix_;
  const std::string end_;
  const rocksdb::Slice upper_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// Visits every key under `prefix` in order with the rest of the key after the prefix.
// fn returns false to stop with a corruption error.
Status ScanPrefix(rocksdb::DB* db, const std::string& prefix, const char* what,
                  const std::function<bool(std::string_view rest, std::string_view value)>& fn) {
  PrefixIterator it(db, prefix);
  for (it.Seek(); it.Valid(); it.Next()) {
    if (!fn(it.rest(), it.value()))
      return Internal(std::string("storage: corrupt key during ") + what, "storage_error");
  }
  return it.status(what);
}

}  // namespace

Status Store::ScanDocuments(std::string_view tenant, uint64_t coll,
                            const std::function<void(std::string_view, std::string_view)>& fn) const {
  return ScanPrefix(rep_->db.get(), CollPrefix(tenant, coll) + "D", "scan documents",
                    [&](std::string_view doc_id, std::string_view value) {
                      fn(doc_id, value);
                      return true;
                    });
}

Status Store::ScanDocumentsAfter(std::string_view tenant, uint64_t coll, std::string_view after,
                                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  PrefixIterator it(rep_->db.get(), CollPrefix(tenant, coll) + "D");
  // Ids hold no NUL (validated upstream): the first key after `after` is `after` + "\0".
  for (it.Seek(after.empty() ? std::string() : std::string(after) + '\0'); it.Valid(); it.Next()) {
    if (!fn(it.rest(), it.value())) break;
  }
  return it.status("scan documents");
}

Status Store::ScanCollectionAtOneMoment(
    std::string_view tenant, uint64_t coll,
    const std::function<Status(std::string_view, std::string_view, const std::vector<ChunkRecord>&)>& fn) const {
  rocksdb::DB* db = rep_->db.get();
  const rocksdb::Snapshot* moment = db->GetSnapshot();
  Status result = Status::Ok();
  {
    PrefixIterator d(db, CollPrefix(tenant, coll) + "D", moment), c(db, CollPrefix(tenant, coll) + "C", moment);
    // Chunk keys are doc_id \0 ordinal:be32, so both lists run in the same document order.
    c.Seek();
    std::vector<ChunkRecord> held;
    for (d.Seek(); d.Valid() && result.ok(); d.Next()) {
      const std::string_view id = d.rest();
      held.clear();
      for (; c.Valid(); c.Next()) {
        const std::string_view rest = c.rest();
        if (rest.size() < 5) {
          result = Internal("storage: corrupt key during a snapshot scan", "storage_error");
          break;
        }
        const std::string_view owner = rest.substr(0, rest.size() - 5);
        if (owner < id) continue;  // a chunk without its document: not part of any
        if (owner != id) break;
        held.push_back({static_cast<uint32_t>(ReadBE(rest, rest.size() - 4, 4)), std::string(c.value())});
      }
      if (result.ok()) result = fn(id, d.value(), held);
    }
    if (result.ok()) result = d.status("snapshot scan");
    if (result.ok()) result = c.status("snapshot scan");
  }
  db->ReleaseSnapshot(moment);
  return result;
}

Status Store::ScanChunks(std::string_view tenant, uint64_t coll,
                         const std::function<void(std::string_view, uint32_t, std::string_view)>& fn) const {
  // rest = doc_id \0 ordinal:be32
  return ScanPrefix(rep_->db.get(), CollPrefix(tenant, coll) + "C", "scan chunks",
                    [&](std::string_view rest, std::string_view value) {
                      if (rest.size() < 5) return false;
                      fn(rest.substr(0, rest.size() - 5), static_cast<uint32_t>(ReadBE(rest, rest.size() - 4, 4)),
                         value);
                      return true;
                    });
}

namespace rocks {
Status CheckpointTo(void* db, const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(static_cast<rocksdb::DB*>(db), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Flushed first (log_size_for_flush 0): the copy is table files and a manifest, no WAL.
  if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  return FromRocks(s, "checkpoint into " + dir);
}
}  // namespace rocks

Status Store::Checkpoint(const std::string& dir) const { return rocks::CheckpointTo(rep_->db.get(), dir); }

Status Store::SyncWal() { return FromRocks(rep_->db->SyncWAL(), "syncing the write-ahead log"); }

uint64_t Store::LatestSequence() const { return rep_->db->GetLatestSequenceNumber(); }

uint64_t Store::ApproximateBytes() const {
  uint64_t v = 0;
  rep_->db->GetIntProperty("rocksdb.total-sst-files-size", &v);
  return v + rep_->MemtableBytes();
}

uint64_t Store::CollectionBytes(std::string_view tenant, uint64_t coll) const {
  const std::string start = CollPrefix(tenant, coll), end = PrefixEnd(start);
  rocksdb::Range range(start, end);
  uint64_t size = 0;
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  if (!rep_->db->GetApproximateSizes(options, rep_->db->DefaultColumnFamily(), &range, 1, &size).ok()) return 0;
  return size;
}

bool Store::FlushIfIdle() {
  MutexLock lock(&rep_->idle_mu);
  const uint64_t seq = LatestSequence();
  if (seq != rep_->idle_seen_sequence) {
    rep_->idle_seen_sequence = seq;  // written since the last look: not idle
    return false;
  }
  const uint64_t mem = rep_->MemtableBytes();
  // A flush needs room for its table file (CheckSpace also refuses on a full disk).
  if (mem < kIdleFlushBytes || !rep_->CheckSpace(mem).ok()) return false;
  rocksdb::FlushOptions fo;
  fo.allow_write_stall = true;
  const rocksdb::Status s = rep_->db->Flush(fo);
  if (!s.ok()) spdlog::warn("storage: flushing the idle memtables failed: {}", s.ToString());
  return s.ok();
}

uint64_t Store::MemoryBytes() const {
  uint64_t readers = 0;
  rep_->db->GetIntProperty("rocksdb.estimate-table-readers-mem", &readers);
  return rep_->MemtableBytes() + readers;
}

Status Store::ScanAuth(const std::function<void(char, std::string_view, std::string_view)>& fn) const {
  return ScanPrefix(rep_->db.get(), "a", "scan auth records", [&](std::string_view rest, std::string_view value) {
    if (rest.empty()) return false;
    fn(rest[0], rest.substr(1), value);
    return true;
  });
}

Status Store::CheckSpace(uint64_t bytes) const { return rep_->CheckSpace(bytes); }

std::string_view Store::state() const {
  if (rep_->read_only) return "read_only";
  return rep_->full.load() || rep_->broken.load() ? "disk_full" : "ok";
}

StatusOr<size_t> AdoptUnscopedKeys(const std::string& dir, std::string_view prefixes, const std::string& tenant) {
  if (!std::filesystem::exists(dir)) return size_t{0};  // a new data directory
  rocksdb::Options options;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return Internal("cannot open " + dir + " to migrate it: " + s.ToString(), "storage_error");
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteBatch batch;
  size_t renamed = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (char prefix : prefixes) {
    const std::string p(1, prefix);
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      const std::string key = it->key().ToString();
      const size_t name_end = std::min(key.find('\0'), key.size());
      if (key.substr(1, name_end - 1).find('/') != std::string::npos) continue;
      batch.Put(p + tenant + "/" + key.substr(1), it->value());
      batch.Delete(key);
      ++renamed;
    }
  }
  if (!it->status().ok()) return Internal("cannot read " + dir + ": " + it->status().ToString(), "storage_error");
  if (renamed == 0) return renamed;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db->Write(wo, &batch);
  if (!s.ok()) return Internal("cannot migrate " + dir + ": " + s.ToString(), "storage_error");
  return renamed;
}

}  // namespace contextd
