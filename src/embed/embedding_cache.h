// The embedding cache's tiers.
//
// L1Cache: in-process, sharded LRU bounded in bytes, with a TTL. A lookup hashes to one
// shard and holds only that shard's lock for a map probe and a copy of the vector.
//
// CacheTier: a slower tier behind L1 (L2 RocksDB on this machine, L3 Redis shared by the
// replicas of contextd). Tiers are best-effort: an error in a tier is a miss and is
// counted, never a failed embedding.
//
// Thread safety: all classes here are safe for concurrent use.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "embed/cache_key.h"

namespace contextd {

class L1Cache {
 public:
  // max_bytes: bound on the vectors plus per-entry bookkeeping; ttl_ms: 0 = no expiry.
  L1Cache(size_t max_bytes, int64_t ttl_ms, const Clock* clock, size_t shards = 16);

  // Copies the vector into out (dim floats) and refreshes its recency. False on a miss, an
  // expired entry or a vector of another dimension.
  bool Get(const EmbedKey& key, int dim, float* out);
  void Put(const EmbedKey& key, int dim, const float* vec);

  size_t bytes() const;
  size_t size() const;
  uint64_t evictions() const;

 private:
  struct Entry {
    EmbedKey key;
    std::vector<float> vec;
    int64_t expires_ns;
  };
  struct Shard {
    mutable Mutex mu;
    std::list<Entry> lru GUARDED_BY(mu);  // front = most recent
    std::unordered_map<EmbedKey, std::list<Entry>::iterator, EmbedKeyHash> map GUARDED_BY(mu);
    size_t bytes GUARDED_BY(mu) = 0;
    uint64_t evictions GUARDED_BY(mu) = 0;
  };
  static size_t EntryBytes(size_t dim);
  // Drops one entry from the list, the map and the byte count. REQUIRES: s.mu held.
  static void EraseLocked(Shard& s, std::list<Entry>::iterator entry) REQUIRES(s.mu);
  Shard& ShardFor(const EmbedKey& key) { return shards_[key.hi % shards_.size()]; }
  // Sums f(shard) over the shards, each under its lock.
  template <class F>
  uint64_t SumShards(F f) const {
    uint64_t total = 0;
    for (const auto& s : shards_) {
      MutexLock lock(&s.mu);
      total += f(s);
    }
    return total;
  }

  const size_t max_shard_bytes_;
  const int64_t ttl_ns_;
  const Clock* clock_;
  std::vector<Shard> shards_;
};

class CacheTier {
 public:
  virtual ~CacheTier() = default;
  virtual std::string name() const = 0;  // "l2", "l3": the metrics label
  // For each key, copies its vector into out + i * dim and sets (*hit)[i]. Entries of
  // another dimension, expired ones and errors are misses.
  virtual void MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) = 0;
  // Stores keys.size() vectors of dim floats, best-effort.
  virtual void MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) = 0;
};

}  // namespace contextd
