#include "embed/embedding_cache.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace contextd {

L1Cache::L1Cache(size_t max_bytes, int64_t ttl_ms, const Clock* clock, size_t shards)
    : max_shard_bytes_(max_bytes / std::max<size_t>(shards, 1)),
      ttl_ns_(ttl_ms * 1000000),
      clock_(clock),
      shards_(std::max<size_t>(shards, 1)) {}

size_t L1Cache::EntryBytes(size_t dim) {
  // The vector plus list node, map node and bucket: close enough to what malloc hands out.
  return dim * sizeof(float) + 96;
}

void L1Cache::EraseLocked(Shard& s, std::list<Entry>::iterator entry) {
  s.bytes -= EntryBytes(entry->vec.size());
  s.map.erase(entry->key);
  s.lru.erase(entry);
}

bool L1Cache::Get(const EmbedKey& key, int dim, float* out) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  Entry& e = *it->second;
  if ((ttl_ns_ > 0 && clock_->NowNanos() >= e.expires_ns) || e.vec.size() != static_cast<size_t>(dim)) {
    EraseLocked(s, it->second);
    return false;
  }
  std::memcpy(out, e.vec.data(), sizeof(float) * e.vec.size());
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return true;
}

void L1Cache::Put(const EmbedKey& key, int dim, const float* vec) {
  const size_t bytes = EntryBytes(static_cast<size_t>(dim));
  if (bytes > max_shard_bytes_) return;
  const int64_t expires = ttl_ns_ > 0 ? clock_->NowNanos() + ttl_ns_ : INT64_MAX;
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) EraseLocked(s, it->second);
  while (!s.lru.empty() && s.bytes + bytes > max_shard_bytes_) {
    EraseLocked(s, std::prev(s.lru.end()));
    ++s.evictions;
  }
  s.lru.push_front({key, std::vector<float>(vec, vec + dim), expires});
  s.map.emplace(key, s.lru.begin());
  s.bytes += bytes;
}

size_t L1Cache::bytes() const {
  return SumShards([](const Shard& s) NO_THREAD_SAFETY_ANALYSIS { return s.bytes; });  // s.mu held
}

size_t L1Cache::size() const {
  return SumShards([](const Shard& s) NO_THREAD_SAFETY_ANALYSIS { return s.map.size(); });  // s.mu held
}

uint64_t L1Cache::evictions() const {
  return SumShards([](const Shard& s) NO_THREAD_SAFETY_ANALYSIS { return s.evictions; });  // s.mu held
}

}  // namespace contextd
