// SharedRateLimiter: rate limits shared by every node pointed at one Redis, so a tenant's
// 6000 requests a minute are 6000 across the cluster, not 6000 per node.
//
// Each decision is one Lua script run atomically by Redis (EVALSHA): it refills the
// scopes' token buckets from Redis's own clock (TIME, so nodes' clocks never disagree),
// checks every scope, and charges all or none, exactly as RateLimiter does in memory. A
// scope is one hash {rl, ra, tl, ta: request and token levels and when each was refilled,
// in us} under "<prefix>{<tenant>}:<scope>"; the braces put every key of one request in
// one slot, so it runs on Redis Cluster too. Idle scopes expire after ten minutes (a full
// bucket is what a missing one means).
//
// One request costs one round trip, and no thread waits for it: AdmitAsync() and the
// fire-and-forget Settle()/Refund() queue their scripts for the limiter's own thread,
// which pipelines everything queued on one connection and hands each decision to its
// callback. Under load one round trip carries many decisions. Reserve() (declared tokens,
// from inside a handler) waits for its own round trip.
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
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/rate_limiter.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "redis/redis_pool.h"

namespace contextd {

struct SharedRateLimitOptions {
  RedisEndpoint redis;
  std::string prefix = "contextd:rl:";
  // After Redis failed, decisions stay local this long before Redis is tried again.
  int64_t retry_ms = 1000;
  // The most scripts one pipelined round trip carries.
  size_t max_batch = 256;
};

class SharedRateLimiter final : public RateLimits {
 public:
  // nodes: how many nodes share the limits (at least 1 is assumed); metrics may be null.
  SharedRateLimiter(SharedRateLimitOptions options, const Clock* clock, std::function<size_t()> nodes,
                    MetricsRegistry* metrics);
  // Decides what is still queued, then stops the limiter's thread.
  ~SharedRateLimiter() override;

  RateDecision Admit(const std::vector<RateScope>& scopes) override;
  void AdmitAsync(const std::vector<RateScope>& scopes, std::function<void(const RateDecision&)> done) override;
  RateDecision Reserve(const std::vector<RateScope>& scopes, int64_t tokens) override;
  void Refund(const std::vector<RateScope>& scopes) override;
  void Settle(const std::vector<RateScope>& scopes, int64_t tokens) override;
  bool may_block() const override { return true; }

  // Deciding locally because Redis failed (until the next successful try).
  bool degraded() const { return degraded_.load(); }
  // Waits until everything queued so far (settles, refunds, admits) is decided.
  void Drain();

 private:
  enum class Op { kAdmit, kReserve, kRefund, kSettle };
  struct Pending {
    Op op = Op::kAdmit;
    std::vector<RateScope> scopes;  // those with a rate limit
    int64_t amount = 0;
    std::vector<RateScope> inflight;                // admit: the places it took, given back if refused
    std::function<void(const RateDecision&)> done;  // null: nobody waits (settle, refund)
  };

  // Decides `batch` in one pipelined round trip (or locally while Redis is down) and fills
  // `out` in the same order.
  void DecideBatch(const std::vector<Pending*>& batch, std::vector<RateDecision>* out);
  // The per-node part of admitting (places in flight): the decision when nothing is left
  // for Redis, else nullopt with `p` holding the script to run.
  std::optional<RateDecision> StartAdmit(const std::vector<RateScope>& scopes, Pending* p);
  RateDecision DecideLocally(const Pending& p);
  RateDecision Decide(Pending p);  // one, on the caller's thread
  void Enqueue(Pending p);
  void Loop();
  bool TryRedis();
  void MarkDown();

  const SharedRateLimitOptions options_;
  const Clock* clock_;
  const std::function<size_t()> nodes_;
  const std::string sha_;  // the script's SHA-1, for EVALSHA
  RedisPool pool_;
  RateLimiter inflight_;  // max_inflight only, always here
  RateLimiter fallback_;  // the node's share while Redis is unreachable
  std::atomic<bool> degraded_{false};
  std::atomic<int64_t> retry_at_ns_{0};
  Gauge* degraded_gauge_ = nullptr;
  Counter* errors_ = nullptr;

  Mutex mu_;
  std::condition_variable queued_;
  std::condition_variable idle_;
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  size_t deciding_ GUARDED_BY(mu_) = 0;  // taken from the queue, not yet decided
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace contextd
