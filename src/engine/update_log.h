// The update log: every write is a Mutation committed to a log, and state changes only by
// applying committed mutations, in the log's order, through one apply path.
//
//   writer ──(embed, chunk: Mutation)──> UpdateLog::Commit ──> MutationApplier::Apply
//
// The applier (the Engine) is a deterministic state machine: the same mutations in the
// same order give the same documents, vectors and keyword statistics on every replica,
// and applying a mutation at or below its applied sequence changes nothing, so a replica
// restarted at any point replays the log from its applied sequence and converges.
//
// On one node the log is LocalUpdateLog: RocksDB already is a durable log, so the apply's
// synced store write (which records the mutation's sequence) is the append, with no extra
// write or fsync. A replicated log (JetStream, cluster mode) commits to its stream first
// and applies what the stream delivers, on every node.
//
// Thread safety: all classes here are safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include <set>
#include "common/mutex.h"

#include "common/request_context.h"
#include "common/status.h"
#include "engine/mutation.h"

namespace contextd {

// What applying one mutation changed, for the writer's usage accounting and reply.
struct ApplyResult {
  int64_t bytes_written = 0;  // bytes of the store batch
  size_t documents = 0;
  size_t chunks = 0;
  size_t session_turns = 0;  // a turn appended: the session's turns after it
  size_t cache_deleted = 0;  // cache entries deleted
};

class MutationApplier {
 public:
  virtual ~MutationApplier() = default;
  // Applies `m` (its sequence set). A mutation that cannot apply (its collection dropped,
  // a name already taken) changes nothing but still counts as applied, and returns the
  // same error on every replica. Mutations with different sequences may be applied
  // concurrently; they must not touch the same document (the log orders those).
  // A failure to write (Internal, Unavailable: the disk, not the mutation) leaves `m`
  // unapplied: the applied sequence stays below it until it is applied again or skipped.
  virtual Status Apply(Mutation m, ApplyResult* result) = 0;
  // Gives up a sequence that failed to write and will not be retried (the local log,
  // whose writer was told), so the applied sequence can pass it.
  virtual void Skip(uint64_t sequence) = 0;
  // Every mutation at or below it has been applied (and is durable here, unless the
  // applier writes without syncing: see SyncApplied).
  virtual uint64_t applied_sequence() const = 0;
  // Makes every apply so far durable here and returns the sequence that covers: the log
  // may forget what is at or below it once every replica has said so. For an applier whose
  // every write is synced, that is applied_sequence().
  virtual StatusOr<uint64_t> SyncApplied() { return applied_sequence(); }
  // Which log applied_sequence() counts in ("" when none was recorded), so a replica's
  // state is never carried onto another log (a recreated cluster's, another cluster's).
  virtual StatusOr<std::string> log_identity() const { return std::string(); }
  virtual Status set_log_identity(const std::string& identity) { return Status::Ok(); }
};

class UpdateLog {
 public:
  virtual ~UpdateLog() = default;
  // Begins delivering committed mutations to the applier (a replicated log applies what
  // its stream delivers; the local log applies inside Commit and needs no start). The
  // Engine calls it once its collections are loaded.
  virtual Status Start() { return Status::Ok(); }
  // Commits `m` (consumed), sets its sequence, and returns once it is applied on this node, so the
  // writer reads its own write; the status is the apply's. The request's deadline and
  // shutdown cut-off are checked before anything is committed: an error from that check
  // means the write did not happen.
  virtual Status Commit(const RequestContext& ctx, Mutation* m, ApplyResult* result) = 0;
  // Whether this node proposes the maintenance every node then applies (shard splits):
  // one node of a cluster does, so that they are not all computing the same proposal.
  virtual bool LeadsMaintenance() const { return true; }
};

// True for errors that every replica applying the mutation reaches the same way (the
// mutation is rejected, and counts as applied); false for failures of this node.
bool IsRejection(const Status& st);

// The single-node log. Sequences come from a counter that starts past everything the
// store has applied; concurrent commits apply concurrently, so their synced store writes
// share WAL syncs as before.
class LocalUpdateLog : public UpdateLog {
 public:
  // observer: called with each mutation as it is committed, before it is applied (tests
  // record the stream).
  LocalUpdateLog(MutationApplier* applier, uint64_t last_sequence,
                 std::function<void(const Mutation&)> observer = nullptr);
  Status Commit(const RequestContext& ctx, Mutation* m, ApplyResult* result) override;

 private:
  MutationApplier* const applier_;
  std::atomic<uint64_t> last_;
  const std::function<void(const Mutation&)> observer_;
};

// The applied sequence of mutations that may finish out of order: the highest sequence at
// or below which every mutation has been applied. Sequences that never reach it (gaps a
// log left) hold it back; a local log has none.
class AppliedSequence {
 public:
  explicit AppliedSequence(uint64_t start) : watermark_(start) {}
  // True when `seq` is neither applied nor being applied: the caller applies it, then
  // calls Finish(seq). False for a repeat (a replay, a redelivery), which must change nothing.
  bool Begin(uint64_t seq);
  // applied: false when the apply failed to write; the sequence may then begin again.
  void Finish(uint64_t seq, bool applied = true);
  uint64_t value() const;
  // Waits until value() >= seq; false when `timeout` passed first.
  bool WaitFor(uint64_t seq, std::chrono::milliseconds timeout) const;

 private:
  mutable Mutex mu_;
  mutable std::condition_variable_any advanced_;
  uint64_t watermark_ GUARDED_BY(mu_);
  std::set<uint64_t> running_ GUARDED_BY(mu_);
  std::set<uint64_t> done_ GUARDED_BY(mu_);  // finished, above the watermark
};

}  // namespace contextd
