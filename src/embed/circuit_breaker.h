// CircuitBreaker: stops sending requests to a replica that keeps failing, and lets one
// probe through after a cooldown to find out whether it recovered.
//
//   closed --(N consecutive failures, or failure ratio over the last W calls)--> open
//   open --(cooldown passed; Allow() lets one probe through)--> half-open
//   half-open --(probe succeeds)--> closed;  --(probe fails)--> open again
//
// Time comes from an injected Clock so tests drive the cooldown.
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"

namespace contextd {

struct BreakerOptions {
  int consecutive_failures = 5;
  double failure_ratio = 0.5;  // over the last `window` calls, once that many were seen
  int window = 20;
  int64_t cooldown_ms = 2000;
};

class CircuitBreaker {
 public:
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  CircuitBreaker(BreakerOptions options, const Clock* clock);

  // Whether a request may go to the replica now. In the open state after the cooldown this
  // moves to half-open and admits exactly one request (the probe) until it reports back.
  bool Allow();
  void OnSuccess();
  void OnFailure();
  State state() const;
  // Whether Allow() would admit a request now, without claiming the probe.
  bool WouldAllow() const;

 private:
  void Open() REQUIRES(mu_);
  void Record(bool failure) REQUIRES(mu_);  // into the window ring

  const BreakerOptions options_;
  const Clock* clock_;
  mutable Mutex mu_;
  State state_ GUARDED_BY(mu_) = State::kClosed;
  int consecutive_ GUARDED_BY(mu_) = 0;
  std::vector<bool> outcomes_ GUARDED_BY(mu_);  // ring of the last `window` results (true = failure)
  size_t next_ GUARDED_BY(mu_) = 0;
  int64_t open_until_ns_ GUARDED_BY(mu_) = 0;
  bool probe_out_ GUARDED_BY(mu_) = false;
};

}  // namespace contextd
