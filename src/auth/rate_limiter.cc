#include "auth/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace contextd {
namespace {

constexpr double kNsPerMinute = 60e9;
constexpr int64_t kIdleNs = 600'000'000'000;  // ten minutes

}  // namespace

void RateLimiter::Refill(Bucket* b, int64_t limit, int64_t now_ns) const {
  if (b->fresh) {
    b->level = static_cast<double>(limit);
    b->fresh = false;
  } else if (now_ns > b->at_ns) {
    b->level =
        std::min<double>(static_cast<double>(limit),
                         b->level + static_cast<double>(limit) * static_cast<double>(now_ns - b->at_ns) / kNsPerMinute);
  }
  b->at_ns = now_ns;
}

void RateLimiter::SweepLocked(int64_t now_ns) {
  if (now_ns - last_sweep_ns_ < kIdleNs) return;
  last_sweep_ns_ = now_ns;
  for (auto* map : {&requests_, &tokens_}) {
    for (auto it = map->begin(); it != map->end();)
      it = now_ns - it->second.at_ns > kIdleNs ? map->erase(it) : std::next(it);
  }
}

RateDecision RateLimiter::Admit(const std::vector<RateScope>& scopes) {
  RateDecision d;
  const int64_t now = clock_->NowNanos();
  std::lock_guard<std::mutex> lock(mu_);
  SweepLocked(now);
  double tightest_requests = INFINITY, tightest_tokens = INFINITY;
  // First pass: would every scope admit it?
  for (const RateScope& s : scopes) {
    if (s.rpm > 0) {
      Bucket& b = requests_[s.name];
      Refill(&b, s.rpm, now);
      if (b.level < 1) {
        const double wait = (1 - b.level) * 60.0 / static_cast<double>(s.rpm);
        if (wait > d.retry_after_s) d.refused_by = s.name;
        d.retry_after_s = std::max(d.retry_after_s, wait);
        d.admitted = false;
      }
    }
    if (s.tpm > 0) {
      Bucket& b = tokens_[s.name];
      Refill(&b, s.tpm, now);
      if (b.level <= 0) {
        const double wait = (1 - b.level) * 60.0 / static_cast<double>(s.tpm);
        if (wait > d.retry_after_s) d.refused_by = s.name;
        d.retry_after_s = std::max(d.retry_after_s, wait);
        d.admitted = false;
      }
    }
  }
  // Second pass: charge all (or none) and report the tightest scope.
  for (const RateScope& s : scopes) {
    if (s.rpm > 0) {
      Bucket& b = requests_[s.name];
      if (d.admitted) b.level -= 1;
      const double room = b.level / static_cast<double>(s.rpm);
      if (room < tightest_requests) {
        tightest_requests = room;
        d.limit_requests = s.rpm;
        d.remaining_requests = std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.level)));
        d.reset_requests_s = (static_cast<double>(s.rpm) - b.level) * 60.0 / static_cast<double>(s.rpm);
      }
    }
    if (s.tpm > 0) {
      const Bucket& b = tokens_[s.name];
      const double room = b.level / static_cast<double>(s.tpm);
      if (room < tightest_tokens) {
        tightest_tokens = room;
        d.limit_tokens = s.tpm;
        d.remaining_tokens = std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.level)));
        d.reset_tokens_s = (static_cast<double>(s.tpm) - b.level) * 60.0 / static_cast<double>(s.tpm);
      }
    }
  }
  return d;
}

void RateLimiter::Settle(const std::vector<RateScope>& scopes, int64_t tokens) {
  if (tokens <= 0) return;
  const int64_t now = clock_->NowNanos();
  std::lock_guard<std::mutex> lock(mu_);
  for (const RateScope& s : scopes) {
    if (s.tpm <= 0) continue;
    Bucket& b = tokens_[s.name];
    Refill(&b, s.tpm, now);
    b.level -= static_cast<double>(tokens);
  }
}

}  // namespace contextd
