// RedisTier: the shared L3 embedding cache, so every contextd replica pointed at one Redis
// computes each text once between them. Values are the raw float32 vector under
// "<prefix><16-byte key>", written with SET .. EX ttl (pipelined) and read with MGET.
//
// Best-effort like every tier: when Redis is down or slow (timeout_ms), a lookup is a miss
// and a store is dropped; errors are counted and the connection is re-made on next use.
// Thread safety: safe for concurrent use (a small pool of connections).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "embed/embedding_cache.h"
#include "redis/redis_pool.h"

namespace contextd {

struct RedisTierOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int64_t ttl_s = 7 * 24 * 3600;
  int64_t timeout_ms = 50;
  std::string prefix = "contextd:emb:";
};

class RedisTier final : public CacheTier {
 public:
  explicit RedisTier(RedisTierOptions options);
  ~RedisTier() override;

  std::string name() const override { return "l3"; }
  void MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) override;
  void MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) override;
  uint64_t errors() const { return errors_.load(); }

 private:
  const RedisTierOptions options_;
  RedisPool pool_;
  std::atomic<uint64_t> errors_{0};
};

}  // namespace contextd
