#include "cluster/own_records.h"

namespace contextd {

void OwnRecords::Keep(const std::string& msg_id, std::shared_ptr<const std::string> bytes, Mutation* m) {
  if (m->kind != MutationKind::kUpsertDocuments) return;
  auto kept = std::make_unique<Record>();
  kept->bytes = std::move(bytes);
  kept->mutation = std::move(*m);
  MutexLock lock(&mu_);
  records_.emplace(msg_id, std::move(kept));
}

void OwnRecords::Drop(const std::string& msg_id, const std::string* bytes) {
  std::unique_ptr<Record> dropped;  // freed outside the lock
  MutexLock lock(&mu_);
  auto it = records_.find(msg_id);
  if (it == records_.end() || it->second->bytes.get() != bytes) return;
  dropped = std::move(it->second);
  records_.erase(it);
}

std::unique_ptr<OwnRecords::Record> OwnRecords::Take(std::string_view msg_id, std::string_view data,
                                                     const RecordIndex* index) {
  const std::string id(msg_id);
  std::shared_ptr<const std::string> bytes;
  {
    MutexLock lock(&mu_);
    auto it = records_.find(id);
    if (it == records_.end()) return nullptr;
    bytes = it->second->bytes;
  }
  // Compared outside the lock (a record is up to a message, an index names more).
  if (index != nullptr ? index->size != bytes->size() || index->hash != RecordHash(*bytes) : data != *bytes) {
    return nullptr;
  }
  MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end() || it->second->bytes != bytes) return nullptr;
  std::unique_ptr<Record> out = std::move(it->second);
  records_.erase(it);
  taken_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

size_t OwnRecords::size() const {
  MutexLock lock(&mu_);
  return records_.size();
}

}  // namespace contextd
