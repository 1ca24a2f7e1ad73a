// RateLimiter: token buckets per scope (a tenant, a key, a user), checked together.
//
// A bucket of a per-minute limit holds at most `limit` and refills at limit/60 per second.
// Admit() checks every scope a request is subject to and either charges all of them or
// none, so a request refused by its key's limit costs its tenant nothing. Tokens are
// charged before the work from what the request declares (Reserve: all scopes or none, and
// a declaration larger than a bucket can ever hold is refused as such), and settled after
// it (Settle) against what it used: a bucket may go negative, and the scope then waits
// until it refills.
//
// Time comes from the injected clock (tests step it); buckets idle for ten minutes are
// dropped, since a full bucket is what a missing one means.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"

namespace contextd {

struct RateScope {
  std::string name;          // "tenant:acme", "key:0123..", "user:acme/u42"
  int64_t rpm = 0;           // 0: no request limit in this scope
  int64_t tpm = 0;           // 0: no token limit
  int64_t max_inflight = 0;  // 0: no bound on requests running at once
  std::string tenant;        // the tenant the scope belongs to (keys shared limits by it)
};

struct RateDecision {
  bool admitted = true;
  double retry_after_s = 0;  // when refused: until every scope could admit it
  // The tightest scope's figures, for the x-ratelimit-* headers; limit 0 when none applies.
  int64_t limit_requests = 0, remaining_requests = 0;
  double reset_requests_s = 0;  // until that bucket is full again
  int64_t limit_tokens = 0, remaining_tokens = 0;
  double reset_tokens_s = 0;
  std::string refused_by;  // the scope that refused
  bool inflight = false;   // refused for requests in flight, not for the rate
  bool too_large = false;  // Reserve: more tokens than refused_by's bucket ever holds
  bool degraded = false;   // shared limits unreachable: decided by this node's share alone
};

// Fills d's x-ratelimit-* figures with the tightest scope's: requests[i] and tokens[i] are
// scope i's bucket levels (ignored where the scope has no such limit).
void ReportTightest(const std::vector<RateScope>& scopes, std::span<const double> requests,
                    std::span<const double> tokens, RateDecision* d);

// A reservation of `tokens` that some scope's token bucket can never hold (it holds at most
// its per-minute limit): fills `d` as a too_large refusal naming that scope and returns
// true; false when every bucket could hold it.
bool RefuseTooLarge(const std::vector<RateScope>& scopes, int64_t tokens, RateDecision* d);

// What the server asks of rate limits, whether kept on this node (RateLimiter) or shared
// by several through Redis (SharedRateLimiter).
class RateLimits {
 public:
  virtual ~RateLimits() = default;
  // One request, needing a request and (to be admitted) a positive token balance in each
  // scope.
  virtual RateDecision Admit(const std::vector<RateScope>& scopes) = 0;
  // Charges an admitted request's declared `tokens` to every scope's token bucket, when
  // each holds that many; otherwise charges none and gives back the request Admit()
  // charged (a refused request costs nothing). retry_after_s: until every bucket could.
  virtual RateDecision Reserve(const std::vector<RateScope>& scopes, int64_t tokens) = 0;
  // Gives back what Admit() charged an admitted request that was then not served (shed
  // before it started), and ends its time in flight.
  virtual void Refund(const std::vector<RateScope>& scopes) = 0;
  // Charges `tokens` more (used beyond what was reserved; negative: gives back the unused
  // part of a reservation) to each scope's token bucket, and ends the request's time in
  // flight.
  virtual void Settle(const std::vector<RateScope>& scopes, int64_t tokens) = 0;
  // Admit(), with the decision handed to `done` instead of returned: at once, on this
  // thread, by default; later, on the limiter's own thread, where deciding waits on the
  // network (no worker or I/O thread waits for Redis).
  virtual void AdmitAsync(const std::vector<RateScope>& scopes, std::function<void(const RateDecision&)> done) {
    done(Admit(scopes));
  }
  // True when Admit() may wait on the network: the server then uses AdmitAsync().
  virtual bool may_block() const { return false; }
};

// The limits of one node, in its memory.
class RateLimiter final : public RateLimits {
 public:
  explicit RateLimiter(const Clock* clock) : clock_(clock) {}

  RateDecision Admit(const std::vector<RateScope>& scopes) override;
  RateDecision Reserve(const std::vector<RateScope>& scopes, int64_t tokens) override;
  void Refund(const std::vector<RateScope>& scopes) override;
  void Settle(const std::vector<RateScope>& scopes, int64_t tokens) override;

 private:
  struct Bucket {
    double level = 0;
    int64_t at_ns = 0;
    bool fresh = true;
  };
  // Refills `b` (capacity `limit` per minute) to now.
  void Refill(Bucket* b, int64_t limit, int64_t now_ns) const;
  // Gives one request back to the scope's request bucket (up to its limit).
  void GiveBackRequestLocked(const RateScope& s) REQUIRES(mu_);
  // One request of the scope fewer in flight.
  void EndInflightLocked(const RateScope& s) REQUIRES(mu_);
  // The x-ratelimit-* figures of the tightest scopes.
  void ReportLocked(const std::vector<RateScope>& scopes, RateDecision* d) REQUIRES(mu_);
  void SweepLocked(int64_t now_ns) REQUIRES(mu_);

  const Clock* clock_;
  Mutex mu_;
  std::unordered_map<std::string, Bucket> requests_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Bucket> tokens_ GUARDED_BY(mu_);
  std::unordered_map<std::string, int64_t> inflight_ GUARDED_BY(mu_);  // scopes with a bound
  int64_t last_sweep_ns_ GUARDED_BY(mu_) = 0;
};

}  // namespace contextd
