// SharedRateLimiter: rate limits shared by every node pointed at one Redis, so a tenant's
// 6000 requests a minute are 6000 across the cluster, not 6000 per node.
//
// Each decision is one Lua script run atomically by Redis (EVAL): it refills the scopes'
// token buckets from Redis's own clock (TIME, so nodes' clocks never disagree), checks
// every scope, and charges all or none, exactly as RateLimiter does in memory. A bucket is
// a hash {l: level, a: refilled at, us} under "<prefix>{<tenant>}:<scope>:r|t"; the
// braces make every key of one request hash to one slot, so it runs on Redis Cluster too.
// Idle buckets expire after ten minutes (a full bucket is what a missing one means).
//
// Requests in flight (max_inflight) stay per node: only a request's end frees a place, and
// a node that dies must not leave places taken in Redis.
//
// Redis unreachable (down, or slower than its timeout): the node falls back to local
// buckets holding its share of each limit (limit / nodes, nodes as the injected function
// says at that moment), marks its decisions degraded (the server sends
// x-contextd-limits-degraded: 1, and the gauge contextd_rate_limits_degraded is 1), and
// tries Redis again after retry_ms. A request admitted in one mode and settled in the
// other settles where the limiter is then: an approximation for the seconds of a switch.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/rate_limiter.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "redis/redis_pool.h"

namespace contextd {

struct SharedRateLimitOptions {
  RedisEndpoint redis;
  std::string prefix = "contextd:rl:";
  // After Redis failed, decisions stay local this long before Redis is tried again.
  int64_t retry_ms = 1000;
};

class SharedRateLimiter final : public RateLimits {
 public:
  // nodes: how many nodes share the limits (at least 1 is assumed); metrics may be null.
  SharedRateLimiter(SharedRateLimitOptions options, const Clock* clock, std::function<size_t()> nodes,
                    MetricsRegistry* metrics);

  RateDecision Admit(const std::vector<RateScope>& scopes) override;
  RateDecision Reserve(const std::vector<RateScope>& scopes, int64_t tokens) override;
  void Refund(const std::vector<RateScope>& scopes) override;
  void Settle(const std::vector<RateScope>& scopes, int64_t tokens) override;
  bool may_block() const override { return true; }

  // Deciding locally because Redis failed (until the next successful try).
  bool degraded() const { return degraded_.load(); }

 private:
  enum class Op { kAdmit, kReserve, kRefund, kSettle };
  // Runs `op` in Redis over the scopes with a rate limit; false when Redis did not answer
  // (the caller decides locally).
  bool RunScript(Op op, const std::vector<RateScope>& scopes, int64_t amount, RateDecision* d);
  // The scopes as this node's share while degraded: each limit divided by the nodes.
  std::vector<RateScope> LocalShare(const std::vector<RateScope>& scopes) const;
  bool TryRedis();
  void MarkDown();

  const SharedRateLimitOptions options_;
  const Clock* clock_;
  const std::function<size_t()> nodes_;
  RedisPool pool_;
  RateLimiter inflight_;  // max_inflight only, always here
  RateLimiter fallback_;  // the node's share while Redis is unreachable
  std::atomic<bool> degraded_{false};
  std::atomic<int64_t> retry_at_ns_{0};
  Gauge* degraded_gauge_ = nullptr;
  Counter* errors_ = nullptr;
};

}  // namespace contextd
