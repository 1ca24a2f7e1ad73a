// RedisPool: connections to one Redis server, each used by one caller at a time, made on
// demand and kept for reuse. Every command runs under the endpoint's timeout, so a Redis
// that hangs costs a caller at most that long; a connection that failed is dropped and the
// next caller makes a new one (Redis restarted, a network blip).
//
// Callers speak hiredis directly on the leased connection (only .cc files include
// hiredis: this header keeps it out of widely included ones).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

struct redisContext;

namespace contextd {

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int64_t timeout_ms = 50;  // connecting and each command
};

// "redis://HOST:PORT" (or "HOST:PORT"; the port defaults to 6379). InvalidArgument names
// what is wrong.
StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url);

class RedisPool {
 public:
  explicit RedisPool(RedisEndpoint endpoint, size_t max_idle = 16);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // One connection for the life of the lease; get() is null when Redis cannot be reached.
  // A lease marked Broken() (a command failed) drops its connection instead of returning it.
  class Lease {
   public:
    Lease(RedisPool* pool, redisContext* ctx) : pool_(pool), ctx_(ctx) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), ctx_(o.ctx_) { o.ctx_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    redisContext* get() const { return ctx_; }
    void Broken();

   private:
    RedisPool* pool_;
    redisContext* ctx_;
  };
  Lease Take();
  // PING: Unavailable when Redis does not answer within the timeout.
  Status Ping();
  const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  void Give(redisContext* ctx);

  const RedisEndpoint endpoint_;
  const size_t max_idle_;
  Mutex mu_;
  std::vector<redisContext*> idle_ GUARDED_BY(mu_);
};

}  // namespace contextd
