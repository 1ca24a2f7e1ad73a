// OwnRecords: the upserts a node published to the update log and has not had back from the
// stream yet, by message id. When such a record is delivered here, the node applies the
// mutation it made rather than a decode of the record: decompressing and decoding were
// 13% of the applying thread's work on the node taking an ingest, and a large record's
// parts would be fetched back. A record is taken only when the bytes delivered (or a
// large record's index: their size and hash) are exactly the ones published; the writer
// drops what was not taken once its commit returns.
//
// Thread safety: every method is safe for concurrent use.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cluster/record_parts.h"
#include "common/mutex.h"
#include "engine/mutation.h"

namespace contextd {

class OwnRecords {
 public:
  struct Record {
    std::shared_ptr<const std::string> bytes;  // as published (compressed or not)
    Mutation mutation;
  };

  // The writer's side, before publishing: keeps the upsert `*m` (moved out) to apply when
  // `bytes` come back under `msg_id`. Other kinds are left alone (an upsert's in-memory and
  // decoded forms are proven to build the same state), and so is a write whose id another
  // write in flight holds (a client's concurrent retry: only the first is kept).
  void Keep(const std::string& msg_id, std::shared_ptr<const std::string> bytes, Mutation* m);
  // The writer's side, once its commit returns: forgets what it kept under `msg_id` with
  // these `bytes`, if not taken (a duplicate whose first write was applied long ago, a
  // publish or wait that failed).
  void Drop(const std::string& msg_id, const std::string* bytes);
  // The delivery's side: what was kept under `msg_id`, when the record delivered (`data`
  // whole, or the record `index` names) is exactly what was published; else null, and
  // the record is decoded as any other node would.
  std::unique_ptr<Record> Take(std::string_view msg_id, std::string_view data, const RecordIndex* index);

  // Deliveries that took their record.
  uint64_t taken() const { return taken_.load(std::memory_order_relaxed); }
  // Records kept and not yet taken or dropped.
  size_t size() const;

 private:
  mutable Mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Record>> records_ GUARDED_BY(mu_);
  std::atomic<uint64_t> taken_{0};
};

}  // namespace contextd
