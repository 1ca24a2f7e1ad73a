// Save and load of HnswIndex. File layout (little-endian, as the host):
//   "CTXHNSW1" | u32 dim | u32 metric | u32 M | u32 int8 | u64 tag | u64 nodes | i64 entry |
//   i32 max_level | then per node: u32 label, i8 level (-1: a removed node's free id), u8 flags (1: deleted, 2: not
//   linked yet; "CTXHNSW1" files have no 2), the level-0 record,
//   level * (1 + M) u32 of upper links, and (int8 mode) dim f32 | u64 XXH3 of all before.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "index/hnsw_index.h"

namespace contextd {
namespace {

constexpr char kMagic[8] = {'C', 'T', 'X', 'H', 'N', 'S', 'W', '2'};
constexpr size_t kMagicVersion = 7;  // the byte that differs from version 1's files, still read
constexpr uint8_t kDeleted = 1, kUnlinked = 2;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Get(T* v) {
    if (pos_ + sizeof(T) > data_.size()) return false;
    std::memcpy(v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(void* dst, size_t n) {
    if (pos_ + n > data_.size()) return false;
    std::memcpy(dst, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

Status Corrupt(const std::string& path, const std::string& why) {
  return FailedPrecondition("graph file " + path + ": " + why, "graph_file_invalid");
}

}  // namespace

Status HnswIndex::Save(const std::string& path, uint64_t tag) const {
  std::vector<uint8_t> pending_ids;  // by id: 1 when stored and not linked
  {
    MutexLock guard(&unlinked_mu_);
    // Nodes LinkPending() is linking have half-written links: not a state to keep.
    if (unlinked_ids_.size() != unlinked()) return FailedPrecondition("graph is being linked", "graph_busy");
    for (uint32_t id : unlinked_ids_) {
      if (pending_ids.size() <= id) pending_ids.resize(id + 1, 0);
      pending_ids[id] = 1;
    }
  }
  std::unique_lock<std::shared_mutex> lock(grow_mu_);
  const uint64_t nodes = next_id_.load();
  std::string out;
  out.reserve(64 + nodes * (record_bytes_ + 8));
  out.append(kMagic, sizeof(kMagic));
  Put<uint32_t>(&out, static_cast<uint32_t>(dim_));
  Put<uint32_t>(&out, static_cast<uint32_t>(metric_));
  Put<uint32_t>(&out, static_cast<uint32_t>(params_.M));
  Put<uint32_t>(&out, params_.int8 ? 1 : 0);
  Put<uint64_t>(&out, tag);
  Put<uint64_t>(&out, nodes);
  Put<int64_t>(&out, entry_.load());
  Put<int32_t>(&out, max_level_.load());
  for (uint32_t id = 0; id < nodes; ++id) {
    const int8_t level = levels_[id].load();
    Put<uint32_t>(&out, labels_[id]);
    Put<int8_t>(&out, level);
    const bool pending = id < pending_ids.size() && pending_ids[id] != 0;
    Put<uint8_t>(&out,
                 static_cast<uint8_t>((deleted_flags_[id].load() != 0 ? kDeleted : 0) | (pending ? kUnlinked : 0)));
    out.append(records_.get() + static_cast<size_t>(id) * record_bytes_, record_bytes_);
    if (level > 0) {
      out.append(reinterpret_cast<const char*>(upper_[id].get()),
                 static_cast<size_t>(level) * (1 + params_.M) * sizeof(uint32_t));
    }
    if (params_.int8) out.append(reinterpret_cast<const char*>(VectorOf(id)), sizeof(float) * dim_);
  }
  Put<uint64_t>(&out, Hash64(out));

  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cannot write " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Internal("cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) return Internal("cannot install " + path);
  return Status::Ok();
}

StatusOr<std::unique_ptr<HnswIndex>> HnswIndex::Load(const std::string& path, int dim, Metric metric, HnswParams params,
                                                     uint64_t* tag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("no graph file at " + path, "graph_file_missing");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  if (data.size() < sizeof(kMagic) + 8 || std::memcmp(data.data(), kMagic, kMagicVersion) != 0 ||
      (data[kMagicVersion] != '1' && data[kMagicVersion] != '2')) {
    return Corrupt(path, "bad magic or truncated");
  }
  uint64_t stored_sum;
  std::memcpy(&stored_sum, data.data() + data.size() - 8, 8);
  std::string_view body(data.data(), data.size() - 8);
  if (Hash64(body) != stored_sum) return Corrupt(path, "checksum mismatch (truncated or corrupt)");

  Reader r(body.substr(sizeof(kMagic)));
  uint32_t f_dim, f_metric, f_m, f_int8;
  uint64_t nodes;
  int64_t entry;
  int32_t max_level;
  if (!r.Get(&f_dim) || !r.Get(&f_metric) || !r.Get(&f_m) || !r.Get(&f_int8) || !r.Get(tag) || !r.Get(&nodes) ||
      !r.Get(&entry) || !r.Get(&max_level)) {
    return Corrupt(path, "truncated header");
  }
  if (static_cast<int>(f_dim) != dim || f_metric != static_cast<uint32_t>(metric) ||
      static_cast<int>(f_m) != params.M || (f_int8 != 0) != params.int8) {
    return Corrupt(path, "built with other settings");
  }
  auto index = std::make_unique<HnswIndex>(dim, metric, params);
  // Sizes come from the file: bound them by what the file can hold before allocating.
  if (nodes > r.remaining() / (sizeof(uint32_t) + 2 + index->record_bytes_)) {
    return Corrupt(path, "more nodes than the file holds");
  }
  // Labels are slots, near the node count; a label far past it would size the label map
  // by the file's word (a graph refused is rebuilt from the store, never lost).
  const uint64_t max_label = nodes * 64 + (1u << 20);
  index->Reserve(std::max<uint64_t>(nodes, 1));
  size_t deleted = 0;
  std::vector<uint32_t> freed, unlinked;
  // The index is not shared yet: the lock is uncontended and keeps the analysis whole.
  MutexLock labels(&index->label_mu_);
  for (uint32_t id = 0; id < nodes; ++id) {
    uint32_t label;
    int8_t level;
    uint8_t flags;
    if (!r.Get(&label) || !r.Get(&level) || !r.Get(&flags) || level < -1 || level > 30 || label > max_label ||
        flags > (kDeleted | kUnlinked) ||
        !r.Bytes(index->records_.get() + static_cast<size_t>(id) * index->record_bytes_, index->record_bytes_)) {
      return Corrupt(path, "truncated node " + std::to_string(id));
    }
    if (level > 0) {
      const size_t n = static_cast<size_t>(level) * (1 + params.M);
      index->upper_[id].reset(new uint32_t[n]);
      index->upper_bytes_ += n * sizeof(uint32_t);
      if (!r.Bytes(index->upper_[id].get(), n * sizeof(uint32_t))) return Corrupt(path, "truncated links");
    }
    if (params.int8 && !r.Bytes(index->VectorOf(id), sizeof(float) * dim)) return Corrupt(path, "truncated vector");
    const uint8_t is_deleted = flags & kDeleted;
    index->labels_[id] = label;
    index->levels_[id].store(level);
    index->deleted_flags_[id].store(is_deleted);
    if ((flags & kUnlinked) != 0 && level >= 0) unlinked.push_back(id);
    if (level < 0) {
      freed.push_back(id);  // removed by RepairDeleted(), free for reuse
    } else if (is_deleted) {
      ++deleted;
    } else {
      if (index->internal_of_.size() <= label) index->internal_of_.resize(label + 1, kNone);
      index->internal_of_[label] = id;
    }
  }
  if (r.remaining() != 0 || entry >= static_cast<int64_t>(nodes) ||
      (entry >= 0 && index->levels_[static_cast<uint32_t>(entry)].load() != max_level)) {
    return Corrupt(path, "inconsistent contents");
  }
  // Every stored neighbour id must name a node present on that level, or a search could
  // read out of bounds.
  for (uint32_t id = 0; id < nodes; ++id) {
    for (int l = 0; l <= index->levels_[id].load(); ++l) {
      const uint32_t* links = index->Links(id, l);
      const size_t cap = l == 0 ? index->max_m0_ : static_cast<size_t>(params.M);
      if (links[0] > cap) return Corrupt(path, "bad neighbour count");
      for (uint32_t i = 1; i <= links[0]; ++i) {
        if (links[i] >= nodes || index->levels_[links[i]].load() < l) return Corrupt(path, "bad neighbour id");
      }
    }
  }
  index->next_id_ = static_cast<uint32_t>(nodes);
  index->count_ = nodes - freed.size();
  {
    MutexLock lock(&index->free_mu_);
    index->free_ids_.assign(freed.rbegin(), freed.rend());
  }
  index->deleted_ = deleted;
  if (!unlinked.empty()) {
    MutexLock lock(&index->unlinked_mu_);
    index->unlinked_count_ = unlinked.size();
    index->unlinked_ids_ = std::move(unlinked);
  }
  index->entry_ = entry;
  index->max_level_ = max_level;
  return index;
}

}  // namespace contextd
