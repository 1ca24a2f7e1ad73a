#include "index/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>
#include <thread>

#include "common/cores.h"

namespace contextd {
namespace {

// Neighbour ids are stored with release and loaded with acquire (plain moves on x86): a
// reader that sees an id also sees the vector written before the id was published, even
// when it read the list's count before a writer rewrote the list.
inline uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// Per-thread visited marks, reset in O(1) by bumping an epoch (FAISS's VisitedTable).
class VisitedTable {
 public:
  void Prepare(size_t n) {
    // Sized by the largest graph this thread has walked; after a graph shrank far below that
    // the rest goes back (one table per worker thread adds up).
    if (marks_.size() > 2 * n + kKeep) {
      std::vector<uint16_t>(n, 0).swap(marks_);
      epoch_ = 0;
    }
    if (marks_.size() < n) marks_.resize(n, 0);
    if (++epoch_ == 0) {  // wrapped: clear once every 65535 searches
      std::fill(marks_.begin(), marks_.end(), 0);
      epoch_ = 1;
    }
  }
  bool Seen(uint32_t id) const { return marks_[id] == epoch_; }
  // Returns true the first time `id` is seen in this search.
  bool Visit(uint32_t id) {
    if (marks_[id] == epoch_) return false;
    marks_[id] = epoch_;
    return true;
  }

 private:
  static constexpr size_t kKeep = 1 << 16;
  std::vector<uint16_t> marks_;
  uint16_t epoch_ = 0;
};

thread_local VisitedTable tls_visited;

class SpinGuard {
 public:
  explicit SpinGuard(std::atomic_flag& f) : f_(f) {
    while (f_.test_and_set(std::memory_order_acquire)) {
      while (f_.test(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~SpinGuard() { f_.clear(std::memory_order_release); }

 private:
  std::atomic_flag& f_;
};

}  // namespace

HnswIndex::HnswIndex(int dim, Metric metric, HnswParams params)
    : dim_(dim),
      metric_(metric),
      params_(params),
      max_m0_(static_cast<size_t>(2 * params.M)),
      code_stride_((static_cast<size_t>(dim) + 15) / 16 * 16),
      record_bytes_((1 + 2 * static_cast<size_t>(params.M)) * sizeof(uint32_t) +
                    (params.int8 ? code_stride_ + 2 * sizeof(float) : sizeof(float) * dim)),
      level_mult_(1.0 / std::log(std::max(2, params.M))),
      full_(std::make_unique<MappedBuffer>(params.int8 ? params.vector_dir : "")),
      rng_state_(params.seed | 1) {
  Reserve(1024);
}

HnswIndex::~HnswIndex() = default;

float HnswIndex::Distance(const float* a, const float* b) const {
  switch (metric_) {
    case Metric::kL2:
      return L2Squared(a, b, dim_);
    case Metric::kCosine:
      return 1.0f - DotProduct(a, b, dim_);
    case Metric::kDot:
      return -DotProduct(a, b, dim_);
  }
  return 0;
}

void HnswIndex::Distances(const float* q, const float* const* rows, size_t n, float* out) const {
  if (metric_ == Metric::kL2) return L2SquaredGather(q, rows, n, dim_, out);
  DotProductGather(q, rows, n, dim_, out);
  const float sign = metric_ == Metric::kCosine ? 1.0f : 0.0f;  // cosine: 1 - dot; dot: -dot
  for (size_t i = 0; i < n; ++i) out[i] = sign - out[i];
}

uint32_t* HnswIndex::Links0(uint32_t id) const {
  return reinterpret_cast<uint32_t*>(records_.get() + static_cast<size_t>(id) * record_bytes_);
}

float* HnswIndex::VectorOf(uint32_t id) const {
  if (params_.int8) return reinterpret_cast<float*>(full_->data()) + static_cast<size_t>(id) * dim_;
  return reinterpret_cast<float*>(records_.get() + static_cast<size_t>(id) * record_bytes_ +
                                  (1 + max_m0_) * sizeof(uint32_t));
}

const int8_t* HnswIndex::CodesOf(uint32_t id) const {
  return reinterpret_cast<const int8_t*>(records_.get() + static_cast<size_t>(id) * record_bytes_ +
                                         (1 + max_m0_) * sizeof(uint32_t));
}

float HnswIndex::ScaleOf(uint32_t id) const {
  float v;
  std::memcpy(&v, CodesOf(id) + code_stride_, sizeof(v));
  return v;
}

float HnswIndex::SqNormOf(uint32_t id) const {
  float v;
  std::memcpy(&v, CodesOf(id) + code_stride_ + sizeof(float), sizeof(v));
  return v;
}

uint32_t* HnswIndex::Links(uint32_t id, int level) const {
  if (level == 0) return Links0(id);
  return upper_[id].get() + static_cast<size_t>(level - 1) * (1 + params_.M);
}

int HnswIndex::RandomLevel() {
  MutexLock lock(&rng_mu_);
  // xorshift64*: cheap and good enough for level draws.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  const uint64_t r = rng_state_ * 2685821657736338717ULL;
  const double u = (static_cast<double>(r >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
  return std::min(static_cast<int>(-std::log(u) * level_mult_), 30);
}

void HnswIndex::Reserve(size_t capacity) {
  std::unique_lock<std::shared_mutex> lock(grow_mu_);
  if (capacity > capacity_) ResizeLocked(capacity);
}

void HnswIndex::ResizeLocked(size_t capacity) {
  const size_t keep = std::min(capacity, capacity_);
  std::unique_ptr<char[]> records(new char[capacity * record_bytes_]);
  if (keep > 0) std::memcpy(records.get(), records_.get(), keep * record_bytes_);
  if (params_.int8) {
    const size_t bytes = capacity * dim_ * sizeof(float);
    if (!full_->Resize(bytes)) {
      // The disk is full: keep going in RAM rather than fail an insert.
      auto ram = std::make_unique<MappedBuffer>();
      if (!ram->Resize(bytes)) throw std::bad_alloc();
      std::memcpy(ram->data(), full_->data(), std::min(bytes, full_->size()));
      full_ = std::move(ram);
    }
  }
  std::unique_ptr<std::atomic<int8_t>[]> levels(new std::atomic<int8_t>[capacity]);
  std::unique_ptr<std::atomic<uint8_t>[]> deleted(new std::atomic<uint8_t>[capacity]);
  for (size_t i = 0; i < capacity; ++i) {
    levels[i].store(i < keep ? levels_[i].load() : int8_t{-1}, std::memory_order_relaxed);
    deleted[i].store(i < keep ? deleted_flags_[i].load() : uint8_t{0}, std::memory_order_relaxed);
  }
  // No writer holds a node lock while we hold grow_mu_ exclusively.
  locks_.reset(new std::atomic_flag[capacity]);
  for (size_t i = 0; i < capacity; ++i) locks_[i].clear();
  std::unique_ptr<uint32_t[]> labels(new uint32_t[capacity]);
  if (keep > 0) std::memcpy(labels.get(), labels_.get(), keep * sizeof(uint32_t));
  labels_ = std::move(labels);
  records_ = std::move(records);
  levels_ = std::move(levels);
  deleted_flags_ = std::move(deleted);
  upper_.resize(capacity);
  if (capacity < capacity_) upper_.shrink_to_fit();
  capacity_ = capacity;
}

void HnswIndex::TrimFreeTailLocked() {
  uint32_t top = 0;  // one past the highest node in the graph
  for (uint32_t id = std::min<uint32_t>(next_id_.load(), static_cast<uint32_t>(capacity_)); id-- > 0;) {
    if (levels_[id].load() >= 0) {
      top = id + 1;
      break;
    }
  }
  // Below a quarter full, down to half: a graph must double again before it can shrink
  // again, so churn around one size never resizes back and forth.
  constexpr size_t kMinFreedBytes = 1 << 20;
  if (top >= capacity_ / 4 || (capacity_ - 2 * size_t{top}) * record_bytes_ < kMinFreedBytes) return;
  ResizeLocked(2 * size_t{top});
  next_id_.store(top);
  MutexLock lock(&free_mu_);
  free_ids_.erase(std::remove_if(free_ids_.begin(), free_ids_.end(), [top](uint32_t id) { return id >= top; }),
                  free_ids_.end());
}

bool HnswIndex::Contains(uint32_t label) const {
  MutexLock lock(&label_mu_);
  return label < internal_of_.size() && internal_of_[label] != kNone;
}

bool HnswIndex::CopyVector(uint32_t label, float* out) const {
  uint32_t id;
  {
    MutexLock lock(&label_mu_);
    if (label >= internal_of_.size() || internal_of_[label] == kNone) return false;
    id = internal_of_[label];
  }
  std::shared_lock<std::shared_mutex> lock(grow_mu_);  // records_ are replaced only under it
  std::memcpy(out, VectorOf(id), sizeof(float) * dim_);
  return true;
}

void HnswIndex::MarkDeleted(uint32_t label) {
  std::shared_lock<std::shared_mutex> writing(write_mu_);
  MarkDeletedLocked(label);
}

void HnswIndex::MarkDeletedLocked(uint32_t label) {
  uint32_t id;
  {
    MutexLock lock(&label_mu_);
    if (label >= internal_of_.size() || internal_of_[label] == kNone) return;
    id = internal_of_[label];
    internal_of_[label] = kNone;
  }
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  if (deleted_flags_[id].exchange(1) == 0) deleted_.fetch_add(1);
}

std::vector<HnswIndex::Candidate> HnswIndex::SearchLayer(const float* q, uint32_t entry, size_t ef, int level) const {
  VisitedTable& visited = tls_visited;
  visited.Prepare(capacity_);
  // As in Walk: heaps over per-thread vectors, and a node's unvisited neighbours gathered
  // and prefetched, then scored in one batched call.
  thread_local std::vector<Candidate> frontier;  // min-heap: nearest first
  thread_local std::vector<Candidate> best;      // max-heap: farthest first
  thread_local std::vector<uint32_t> fresh;
  thread_local std::vector<const float*> rows;
  thread_local std::vector<float> dists;
  const auto nearer_first = std::greater<Candidate>();
  const float d0 = Distance(q, VectorOf(entry));
  frontier.assign(1, {d0, entry});
  best.assign(1, {d0, entry});
  visited.Visit(entry);
  while (!frontier.empty()) {
    const Candidate c = frontier.front();
    if (c.dist > best.front().dist && best.size() >= ef) break;
    std::pop_heap(frontier.begin(), frontier.end(), nearer_first);
    frontier.pop_back();
    const uint32_t* links = Links(c.id, level);
    const uint32_t n = LoadAcquire(links);
    fresh.clear();
    rows.clear();
    for (uint32_t i = 1; i <= n; ++i) {
      const uint32_t nb = LoadAcquire(links + i);
      if (!visited.Visit(nb)) continue;
      const float* v = VectorOf(nb);
      __builtin_prefetch(v);
      __builtin_prefetch(reinterpret_cast<const char*>(v) + 64);
      fresh.push_back(nb);
      rows.push_back(v);
    }
    dists.resize(fresh.size());
    Distances(q, rows.data(), fresh.size(), dists.data());
    for (size_t f = 0; f < fresh.size(); ++f) {
      const uint32_t nb = fresh[f];
      const float d = dists[f];
      if (best.size() < ef || d < best.front().dist) {
        frontier.push_back({d, nb});
        std::push_heap(frontier.begin(), frontier.end(), nearer_first);
        best.push_back({d, nb});
        std::push_heap(best.begin(), best.end());
        if (best.size() > ef) {
          std::pop_heap(best.begin(), best.end());
          best.pop_back();
        }
      }
    }
  }
  return best;  // a copy: the caller keeps it while the per-thread heaps are reused
}

void HnswIndex::SelectNeighbors(std::vector<Candidate>* candidates, size_t m) const {
  std::sort(candidates->begin(), candidates->end());
  if (candidates->size() <= m) return;
  std::vector<Candidate> kept;
  kept.reserve(m);
  for (const Candidate& c : *candidates) {
    if (kept.size() >= m) break;
    bool diverse = true;
    for (const Candidate& k : kept) {
      if (Distance(VectorOf(c.id), VectorOf(k.id)) < c.dist) {
        diverse = false;
        break;
      }
    }
    if (diverse) kept.push_back(c);
  }
  *candidates = std::move(kept);
}

void HnswIndex::SetOwnLinks(uint32_t id, int level, std::vector<Candidate>* candidates) {
  SelectNeighbors(candidates, static_cast<size_t>(params_.M));
  SpinGuard guard(locks_[id]);
  uint32_t* links = Links(id, level);
  for (size_t i = 0; i < candidates->size(); ++i) StoreRelease(links + 1 + i, (*candidates)[i].id);
  StoreRelease(links, static_cast<uint32_t>(candidates->size()));
}

void HnswIndex::LinkBack(uint32_t id, int level, const std::vector<Candidate>& neighbours) {
  const size_t max_links = level == 0 ? max_m0_ : static_cast<size_t>(params_.M);
  for (const Candidate& c : neighbours) {
    SpinGuard guard(locks_[c.id]);
    uint32_t* links = Links(c.id, level);
    const uint32_t n = LoadAcquire(links);
    if (n < max_links) {
      StoreRelease(links + 1 + n, id);
      StoreRelease(links, n + 1);
      continue;
    }
    // Full: re-select among the old neighbours and the new node.
    std::vector<Candidate> pool;
    pool.reserve(n + 1);
    const float* base = VectorOf(c.id);
    pool.push_back({Distance(base, VectorOf(id)), id});
    for (uint32_t i = 1; i <= n; ++i) {
      const uint32_t x = LoadAcquire(links + i);
      pool.push_back({Distance(base, VectorOf(x)), x});
    }
    SelectNeighbors(&pool, max_links);
    for (size_t i = 0; i < pool.size(); ++i) StoreRelease(links + 1 + i, pool[i].id);
    StoreRelease(links, static_cast<uint32_t>(pool.size()));
  }
}

uint32_t HnswIndex::AllocateId() {
  {
    MutexLock lock(&free_mu_);
    if (!free_ids_.empty()) {
      const uint32_t id = free_ids_.back();
      free_ids_.pop_back();
      return id;
    }
  }
  return next_id_.fetch_add(1);
}

void HnswIndex::Add(uint32_t label, const float* vector) {
  std::shared_lock<std::shared_mutex> writing(write_mu_);
  MarkDeletedLocked(label);  // an update: the old node becomes a tombstone
  const uint32_t id = AllocateId();
  {
    std::shared_lock<std::shared_mutex> probe(grow_mu_);
    if (id >= capacity_) {
      probe.unlock();
      std::unique_lock<std::shared_mutex> lock(grow_mu_);
      if (id >= capacity_) ResizeLocked(std::max<size_t>(capacity_ * 2, id + 1));
    }
  }
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  labels_[id] = label;
  const int level = RandomLevel();
  float* v = VectorOf(id);
  std::memcpy(v, vector, sizeof(float) * dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(v, dim_);
  if (params_.int8) {
    int8_t* codes = const_cast<int8_t*>(CodesOf(id));
    const float scale = QuantizeInt8(v, dim_, code_stride_, codes);
    const float sqnorm = DotProduct(v, v, dim_);
    std::memcpy(codes + code_stride_, &scale, sizeof(scale));
    std::memcpy(codes + code_stride_ + sizeof(float), &sqnorm, sizeof(sqnorm));
  }
  StoreRelease(Links0(id), 0);
  if (level > 0) {
    const size_t n = static_cast<size_t>(level) * (1 + params_.M);
    upper_[id].reset(new uint32_t[n]());
    upper_bytes_.fetch_add(n * sizeof(uint32_t), std::memory_order_relaxed);
  }
  deleted_flags_[id].store(0, std::memory_order_relaxed);
  const bool link = link_adds_.load(std::memory_order_relaxed);
  if (!link) {
    // Stored only: counted as unlinked before it is visible, so no search walks past it.
    MutexLock guard(&unlinked_mu_);
    unlinked_ids_.push_back(id);
    unlinked_count_.fetch_add(1, std::memory_order_release);
  }
  levels_[id].store(static_cast<int8_t>(level), std::memory_order_release);
  if (link) LinkNode(id, level);
  count_.fetch_add(1);
  Publish(label, id);
}

size_t HnswIndex::LinkPending(const std::atomic<bool>& stop) {
  std::shared_lock<std::shared_mutex> writing(write_mu_);  // no repair meanwhile
  std::vector<uint32_t> ids;
  {
    MutexLock guard(&unlinked_mu_);
    ids.swap(unlinked_ids_);
  }
  size_t linked = 0;
  for (; linked < ids.size() && !stop; ++linked) {
    {
      std::shared_lock<std::shared_mutex> lock(grow_mu_);
      LinkNode(ids[linked], levels_[ids[linked]].load(std::memory_order_acquire));
    }
    unlinked_count_.fetch_sub(1, std::memory_order_release);
  }
  if (linked < ids.size()) {
    MutexLock guard(&unlinked_mu_);
    unlinked_ids_.insert(unlinked_ids_.end(), ids.begin() + static_cast<std::ptrdiff_t>(linked), ids.end());
  }
  return linked;
}

void HnswIndex::LinkNode(uint32_t id, int level) {
  const float* v = VectorOf(id);
  int64_t entry;
  int max_level;
  {
    MutexLock guard(&entry_mu_);
    entry = entry_.load();
    max_level = max_level_.load();
    if (entry < 0) {
      entry_ = id;
      max_level_ = level;
      return;
    }
  }
  uint32_t cur = static_cast<uint32_t>(entry);
  float cur_dist = Distance(v, VectorOf(cur));
  Descend(v, max_level, level, &cur, &cur_dist);
  // Every level's own list is written before any node links here: a node reachable with a
  // lower list still empty would hand concurrent inserters a dead end, and the links they
  // add to it would be overwritten when its own list is written (found as nodes that no
  // search reaches, a few per thousand under two concurrent writers).
  const int top = std::min(level, max_level);
  std::vector<std::vector<Candidate>> chosen(static_cast<size_t>(top) + 1);
  for (int l = top; l >= 0; --l) {
    std::vector<Candidate>& found = chosen[static_cast<size_t>(l)];
    found = SearchLayer(v, cur, static_cast<size_t>(params_.ef_construction), l);
    cur = std::min_element(found.begin(), found.end())->id;
    SetOwnLinks(id, l, &found);
  }
  for (int l = top; l >= 0; --l) LinkBack(id, l, chosen[static_cast<size_t>(l)]);
  if (level > max_level) {
    MutexLock guard(&entry_mu_);
    if (level > max_level_.load()) {
      entry_ = id;
      max_level_ = level;
    }
  }
}

void HnswIndex::RepairList(uint32_t id, int level, const std::vector<uint8_t>& dead) {
  const size_t max_links = level == 0 ? max_m0_ : static_cast<size_t>(params_.M);
  uint32_t* links = Links(id, level);
  const uint32_t n = LoadAcquire(links);
  std::vector<uint32_t> kept, gone;
  for (uint32_t i = 1; i <= n; ++i) {
    const uint32_t x = LoadAcquire(links + i);
    (dead[x] ? gone : kept).push_back(x);
  }
  if (gone.empty()) return;
  // Candidates: the removed neighbours' live neighbours on this level, closest first.
  const float* base = VectorOf(id);
  std::vector<Candidate> pool;
  for (uint32_t d : gone) {
    if (levels_[d].load(std::memory_order_relaxed) < level) continue;
    const uint32_t* dl = Links(d, level);
    const uint32_t dn = LoadAcquire(dl);
    for (uint32_t i = 1; i <= dn; ++i) {
      const uint32_t x = LoadAcquire(dl + i);
      if (x == id || dead[x] || std::find(kept.begin(), kept.end(), x) != kept.end()) continue;
      pool.push_back({Distance(base, VectorOf(x)), x});
    }
  }
  std::sort(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
  });
  pool.erase(std::unique(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) { return a.id == b.id; }),
             pool.end());
  // The heuristic against the neighbours kept: skip a candidate that a kept neighbour is
  // closer to than this node is (it is reachable through that neighbour already).
  for (const Candidate& c : pool) {
    if (kept.size() >= max_links) break;
    bool diverse = true;
    for (uint32_t k : kept) {
      if (Distance(VectorOf(c.id), VectorOf(k)) < c.dist) {
        diverse = false;
        break;
      }
    }
    if (diverse) kept.push_back(c.id);
  }
  SpinGuard guard(locks_[id]);
  for (size_t i = 0; i < kept.size(); ++i) StoreRelease(links + 1 + i, kept[i]);
  StoreRelease(links, static_cast<uint32_t>(kept.size()));
}

size_t HnswIndex::RepairDeleted() {
  std::unique_lock<std::shared_mutex> writing(write_mu_);  // no Add() or LinkPending() meanwhile
  std::vector<uint32_t> removed;
  size_t upper_freed = 0;
  {
    std::shared_lock<std::shared_mutex> lock(grow_mu_);
    const uint32_t nodes = std::min<uint32_t>(next_id_.load(), static_cast<uint32_t>(capacity_));
    std::vector<uint8_t> dead(nodes, 0), unlinked(nodes, 0);
    for (uint32_t id = 0; id < nodes; ++id) {
      if (levels_[id].load() >= 0 && deleted_flags_[id].load()) {
        dead[id] = 1;
        removed.push_back(id);
      }
    }
    if (removed.empty()) return 0;
    {
      // Stored nodes that were deleted go with the rest (nothing links to them); the
      // stored ones left must never become the entry point.
      MutexLock guard(&unlinked_mu_);
      const size_t before = unlinked_ids_.size();
      unlinked_ids_.erase(std::remove_if(unlinked_ids_.begin(), unlinked_ids_.end(),
                                         [&](uint32_t id) { return id < nodes && dead[id] != 0; }),
                          unlinked_ids_.end());
      unlinked_count_.fetch_sub(before - unlinked_ids_.size(), std::memory_order_release);
      for (uint32_t id : unlinked_ids_) unlinked[id] = 1;
    }
    // A removed entry point hands over to the linked live node on the highest level.
    {
      MutexLock guard(&entry_mu_);
      if (entry_ >= 0 && dead[static_cast<uint32_t>(entry_.load())]) {
        int64_t best = -1;
        int best_level = -1;
        for (uint32_t id = 0; id < nodes; ++id) {
          const int l = levels_[id].load();
          if (!dead[id] && !unlinked[id] && l > best_level) {
            best = id;
            best_level = l;
          }
        }
        entry_ = best;
        max_level_ = best_level;
      }
    }
    // Each node's list is rewritten by one thread under its own lock; lists read meanwhile
    // may be mid-rewrite, which (as for searches) only changes which candidates are seen.
    std::atomic<uint32_t> next{0};
    auto work = [&] {
      constexpr uint32_t kBatch = 256;
      for (uint32_t b = next.fetch_add(kBatch); b < nodes; b = next.fetch_add(kBatch)) {
        for (uint32_t id = b; id < std::min(nodes, b + kBatch); ++id) {
          if (dead[id]) continue;
          for (int l = levels_[id].load(); l >= 0; --l) RepairList(id, l, dead);
        }
      }
    };
    std::vector<std::thread> helpers;
    for (int t = 1, cores = UsableCores(); t < cores; ++t) helpers.emplace_back(work);
    work();
    for (auto& h : helpers) h.join();
    for (uint32_t id : removed) {
      upper_freed += static_cast<size_t>(levels_[id].load()) * (1 + params_.M) * sizeof(uint32_t);
      levels_[id].store(-1, std::memory_order_release);
    }
  }
  // Searches that started before the lists changed may still hold removed ids; taking the
  // grow lock waits them out, after which nothing can reach the removed nodes.
  std::unique_lock<std::shared_mutex> quiesce(grow_mu_);
  for (uint32_t id : removed) upper_[id].reset();
  upper_bytes_.fetch_sub(upper_freed, std::memory_order_relaxed);
  count_.fetch_sub(removed.size());
  deleted_.fetch_sub(removed.size());
  {
    MutexLock lock(&free_mu_);
    // Lowest ids last, so they are reused first (keeps the arrays dense).
    free_ids_.insert(free_ids_.end(), removed.rbegin(), removed.rend());
  }
  // Large inserts deleted again would otherwise hold their capacity for good.
  TrimFreeTailLocked();
  return removed.size();
}

void HnswIndex::Descend(const float* q, int from_level, int to_level, uint32_t* cur, float* cur_dist) const {
  for (int l = from_level; l > to_level; --l) {
    for (bool moved = true; moved;) {
      moved = false;
      const uint32_t* links = Links(*cur, l);
      const uint32_t n = LoadAcquire(links);
      for (uint32_t i = 1; i <= n; ++i) {
        const uint32_t nb = LoadAcquire(links + i);
        const float d = Distance(q, VectorOf(nb));
        if (d < *cur_dist) {
          *cur_dist = d;
          *cur = nb;
          moved = true;
        }
      }
    }
  }
}

void HnswIndex::Publish(uint32_t label, uint32_t id) {
  MutexLock lock(&label_mu_);
  if (internal_of_.size() <= label) internal_of_.resize(std::max<size_t>(label + 1, internal_of_.size() * 2), kNone);
  internal_of_[label] = id;
}

std::vector<ScoredSlot> HnswIndex::Search(const float* query, size_t k, size_t ef, const SlotFilter& filter) const {
  // The graph does not reach every node.
  if (unlinked() > 0) return ExactScan(query, k, [&](uint32_t label) { return !filter || filter(label); });
  if (!filter)
    return Walk(
        query, k, ef, [](uint32_t) { return true; }, /*two_hop=*/false);
  return Walk(
      query, k, ef, [&](uint32_t label) { return filter(label); }, /*two_hop=*/false);
}

std::vector<ScoredSlot> HnswIndex::SearchFiltered(const float* query, size_t k, size_t ef,
                                                  const SlotBitset& allowed) const {
  const size_t matches = allowed.Count();
  if (matches == 0 || k == 0) return {};
  if (unlinked() > 0) return ExactSearch(query, k, &allowed);
  const size_t live = size();
  // Few matches are sparse in the graph (a walk would visit most of it to find them) and
  // cheap to score one by one, exactly.
  if (static_cast<double>(matches) <= kExactFraction * static_cast<double>(live) ||
      matches <= params_.filter_exact_matches || matches <= ef) {
    return ExactSearch(query, k, &allowed);
  }
  auto accept = [&](uint32_t label) { return allowed.Test(label); };
  auto hits = Walk(query, k, ef, accept, /*two_hop=*/static_cast<double>(matches) < kTwoHopFraction * live);
  // The matches may form islands the walk could not reach from the entry point.
  if (hits.size() < k) return ExactSearch(query, k, &allowed);
  return hits;
}

std::vector<ScoredSlot> HnswIndex::ExactSearch(const float* query, size_t k, const SlotBitset* allowed) const {
  if (allowed == nullptr) return ExactScan(query, k, [](uint32_t) { return true; });
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  std::vector<float> qv(query, query + dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(qv.data(), dim_);
  std::vector<Candidate> found;
  auto score = [&](uint32_t id) {
    if (!deleted_flags_[id].load(std::memory_order_relaxed)) found.push_back({Distance(qv.data(), VectorOf(id)), id});
  };
  std::vector<uint32_t> ids;
  {
    MutexLock guard(&label_mu_);
    allowed->ForEach([&](uint32_t label) NO_THREAD_SAFETY_ANALYSIS {  // label_mu_ held
      if (label < internal_of_.size() && internal_of_[label] != kNone) ids.push_back(internal_of_[label]);
    });
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i + 4 < ids.size()) __builtin_prefetch(VectorOf(ids[i + 4]));
    score(ids[i]);
  }
  return TopHits(&found, k);
}

template <typename Accept>
std::vector<ScoredSlot> HnswIndex::ExactScan(const float* query, size_t k, const Accept& accept) const {
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  std::vector<float> qv(query, query + dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(qv.data(), dim_);
  std::vector<Candidate> found;
  const uint32_t n = std::min<uint32_t>(next_id_.load(), static_cast<uint32_t>(capacity_));
  for (uint32_t id = 0; id < n; ++id) {
    if (levels_[id].load(std::memory_order_acquire) < 0 || deleted_flags_[id].load(std::memory_order_relaxed)) continue;
    if (accept(labels_[id])) found.push_back({Distance(qv.data(), VectorOf(id)), id});
  }
  return TopHits(&found, k);
}

std::vector<ScoredSlot> HnswIndex::TopHits(std::vector<Candidate>* candidates, size_t k) const {
  std::vector<Candidate>& found = *candidates;
  const size_t keep = std::min(k, found.size());
  // Equal distances are ordered by label, not by internal id: ids follow the order of
  // insertion, which a parallel build does not fix, so replicas (and restarts) holding the
  // same chunks would otherwise keep different ones of a tie.
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(keep), found.end(),
                    [&](const Candidate& a, const Candidate& b) {
                      return a.dist != b.dist ? a.dist < b.dist : labels_[a.id] < labels_[b.id];
                    });
  found.resize(keep);
  return ToHits(found);
}

std::vector<ScoredSlot> HnswIndex::ToHits(const std::vector<Candidate>& sorted) const {
  std::vector<ScoredSlot> out(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const float dist = sorted[i].dist;
    const float score = metric_ == Metric::kL2       ? -std::sqrt(std::max(0.0f, dist))
                        : metric_ == Metric::kCosine ? 1.0f - dist
                                                     : -dist;
    out[i] = {score, labels_[sorted[i].id]};
  }
  return out;
}

template <typename Accept>
std::vector<ScoredSlot> HnswIndex::Walk(const float* query, size_t k, size_t ef, const Accept& accept_label,
                                        bool two_hop) const {
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  int64_t entry;
  int max_level;
  {
    MutexLock guard(&entry_mu_);
    entry = entry_.load();
    max_level = max_level_.load();
  }
  if (entry < 0 || k == 0) return {};
  std::vector<float> qv(query, query + dim_);
  if (metric_ == Metric::kCosine) NormalizeInPlace(qv.data(), dim_);
  const float* q = qv.data();

  uint32_t cur = static_cast<uint32_t>(entry);
  float cur_dist = Distance(q, VectorOf(cur));
  Descend(q, max_level, 0, &cur, &cur_dist);

  // Level 0: tombstoned and filtered-out nodes are never results. By default they still
  // route (they enter the frontier); with two_hop (a selective filter) they are looked
  // through instead: their accepted neighbours become candidates (ACORN-1), so the walk
  // stays inside the matching subgraph rather than wading through non-matches. The walk
  // ends when the frontier cannot improve a full result set.
  ef = std::max(ef, k);
  auto accept = [&](uint32_t id) {
    return !deleted_flags_[id].load(std::memory_order_relaxed) && accept_label(labels_[id]);
  };
  // int8 mode scores nodes from their codes: q.v ~ qscale * scale * (q8 . v8).
  thread_local std::vector<int8_t> q8;
  thread_local std::vector<int16_t> q16;
  float qscale = 0, qnorm = 0;
  if (params_.int8) {
    q8.resize(code_stride_);
    q16.resize(code_stride_);
    qscale = QuantizeInt8(q, dim_, code_stride_, q8.data());
    for (size_t j = 0; j < code_stride_; ++j) q16[j] = q8[j];
    qnorm = DotProduct(q, q, dim_);
  }
  auto from_int8_dot = [&](uint32_t id, int32_t raw) {
    const float dot = qscale * ScaleOf(id) * static_cast<float>(raw);
    switch (metric_) {
      case Metric::kL2:
        return qnorm + SqNormOf(id) - 2 * dot;
      case Metric::kCosine:
        return 1.0f - dot;
      case Metric::kDot:
        return -dot;
    }
    return 0.0f;
  };
  auto distance = [&](uint32_t id) {
    if (!params_.int8) return Distance(q, VectorOf(id));
    int32_t raw;
    DotInt8Batch(q16.data(), CodesOf(id), 1, code_stride_, &raw);
    return from_int8_dot(id, raw);
  };
  VisitedTable& visited = tls_visited;
  visited.Prepare(capacity_);
  // Heaps over per-thread vectors: no allocation per query once warm.
  thread_local std::vector<Candidate> frontier;  // min-heap by distance
  thread_local std::vector<Candidate> best;      // max-heap by distance, accepted nodes only
  thread_local std::vector<uint32_t> fresh;      // a node's unvisited neighbours
  thread_local std::vector<const int8_t*> fresh_rows;
  thread_local std::vector<int32_t> fresh_dots;
  thread_local std::vector<const float*> fresh_vectors;
  thread_local std::vector<float> fresh_dists;
  frontier.clear();
  best.clear();
  const auto nearer_first = std::greater<Candidate>();
  cur_dist = distance(cur);
  frontier.push_back({cur_dist, cur});
  if (accept(cur)) best.push_back({cur_dist, cur});
  visited.Visit(cur);
  float bound = best.empty() ? std::numeric_limits<float>::max() : cur_dist;
  // Keeps the neighbour and the row it is scored from (codes or vector), and prefetches it.
  auto gather = [&](uint32_t nb) {
    fresh.push_back(nb);
    const char* p;
    if (params_.int8) {
      fresh_rows.push_back(CodesOf(nb));
      p = reinterpret_cast<const char*>(fresh_rows.back());
    } else {
      fresh_vectors.push_back(VectorOf(nb));
      p = reinterpret_cast<const char*>(fresh_vectors.back());
    }
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
  };
  while (!frontier.empty()) {
    const Candidate c = frontier.front();
    if (c.dist > bound && best.size() >= ef) break;
    std::pop_heap(frontier.begin(), frontier.end(), nearer_first);
    frontier.pop_back();
    // Gather the unvisited neighbours and prefetch them all before scoring any: their
    // records are scattered, and overlapping the misses is most of the speed.
    const uint32_t* links = Links0(c.id);
    const uint32_t n = LoadAcquire(links);
    fresh.clear();
    fresh_rows.clear();
    fresh_vectors.clear();
    for (uint32_t i = 1; i <= n; ++i) {
      const uint32_t nb = LoadAcquire(links + i);
      if (!visited.Visit(nb)) continue;
      if (!two_hop || accept(nb)) {
        gather(nb);
        continue;
      }
      const uint32_t* links2 = Links0(nb);
      const uint32_t n2 = LoadAcquire(links2);
      for (uint32_t j = 1; j <= n2 && fresh.size() < 2 * max_m0_; ++j) {
        const uint32_t nb2 = LoadAcquire(links2 + j);
        // Rejected two-hop nodes stay unvisited: another path may still look through them.
        if (visited.Seen(nb2) || !accept(nb2)) continue;
        visited.Visit(nb2);
        gather(nb2);
      }
    }
    // One kernel call scores all of them, four rows per pass.
    if (params_.int8) {
      fresh_dots.resize(fresh.size());
      DotInt8Gather(q16.data(), fresh_rows.data(), fresh.size(), code_stride_, fresh_dots.data());
    } else {
      fresh_dists.resize(fresh.size());
      Distances(q, fresh_vectors.data(), fresh.size(), fresh_dists.data());
    }
    for (size_t f = 0; f < fresh.size(); ++f) {
      const uint32_t nb = fresh[f];
      const float d = params_.int8 ? from_int8_dot(nb, fresh_dots[f]) : fresh_dists[f];
      if (best.size() < ef || d < bound) {
        frontier.push_back({d, nb});
        std::push_heap(frontier.begin(), frontier.end(), nearer_first);
        if (accept(nb)) {
          best.push_back({d, nb});
          std::push_heap(best.begin(), best.end());
          if (best.size() > ef) {
            std::pop_heap(best.begin(), best.end());
            best.pop_back();
          }
          bound = best.front().dist;
        }
      }
    }
  }
  std::vector<Candidate> found(best.begin(), best.end());
  std::sort(found.begin(), found.end());
  if (params_.int8) {
    // Rescore the best few by the int8 estimate with the fp32 vectors: int8 error is ~1e-3
    // of a distance, far less than the gap between a true top-k hit and the 4k-th.
    found.resize(std::min(found.size(), std::max(k * kRescoreFactor, k + 16)));
    for (Candidate& c : found) c.dist = Distance(q, VectorOf(c.id));
    std::sort(found.begin(), found.end());
  }
  if (found.size() > k) found.resize(k);
  return ToHits(found);
}

size_t HnswIndex::mapped_bytes() const {
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  return params_.int8 && full_->file_backed() ? full_->size() : 0;
}

size_t HnswIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(grow_mu_);
  size_t bytes = capacity_ * (record_bytes_ + 2 + sizeof(std::atomic_flag) + sizeof(void*) + sizeof(uint32_t));
  if (params_.int8 && !full_->file_backed()) bytes += full_->size();
  return bytes + upper_bytes_.load(std::memory_order_relaxed);
}

}  // namespace contextd
