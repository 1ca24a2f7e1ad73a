#include "auth/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <span>

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
  MutexLock lock(&mu_);
  SweepLocked(now);
  // First pass: would every scope admit it? A request needs one request and a positive
  // token balance.
  const auto check = [&](Bucket& b, int64_t limit, double need, const std::string& scope) {
    Refill(&b, limit, now);
    if (b.level >= need && b.level > 0) return;
    const double wait = (need - b.level + (need == 0 ? 1 : 0)) * 60.0 / static_cast<double>(limit);
    if (wait > d.retry_after_s) d.refused_by = scope;
    d.retry_after_s = std::max(d.retry_after_s, wait);
    d.admitted = false;
  };
  for (const RateScope& s : scopes) {
    if (s.rpm > 0) check(requests_[s.name], s.rpm, 1, s.name);
    if (s.tpm > 0) check(tokens_[s.name], s.tpm, 0, s.name);
    if (s.max_inflight > 0 && inflight_[s.name] >= s.max_inflight && d.admitted) {
      // Only a request ending frees a place: retry soon.
      d.admitted = false;
      d.inflight = true;
      d.refused_by = s.name;
      d.retry_after_s = std::max(d.retry_after_s, 1.0);
    }
  }
  // Second pass: charge all (or none).
  for (const RateScope& s : scopes) {
    if (s.rpm > 0 && d.admitted) requests_[s.name].level -= 1;
    if (s.max_inflight > 0 && d.admitted) ++inflight_[s.name];
  }
  ReportLocked(scopes, &d);
  return d;
}

void ReportTightest(const std::vector<RateScope>& scopes, std::span<const double> requests,
                    std::span<const double> tokens, RateDecision* d) {
  double tightest_requests = INFINITY, tightest_tokens = INFINITY;
  const auto report = [](double level, int64_t limit, double* tightest, int64_t* limit_out, int64_t* remaining,
                         double* reset_s) {
    const double room = level / static_cast<double>(limit);
    if (room >= *tightest) return;
    *tightest = room;
    *limit_out = limit;
    *remaining = std::max<int64_t>(0, static_cast<int64_t>(std::floor(level)));
    *reset_s = (static_cast<double>(limit) - level) * 60.0 / static_cast<double>(limit);
  };
  for (size_t i = 0; i < scopes.size(); ++i) {
    const RateScope& s = scopes[i];
    if (s.rpm > 0) {
      report(requests[i], s.rpm, &tightest_requests, &d->limit_requests, &d->remaining_requests, &d->reset_requests_s);
    }
    if (s.tpm > 0) {
      report(tokens[i], s.tpm, &tightest_tokens, &d->limit_tokens, &d->remaining_tokens, &d->reset_tokens_s);
    }
  }
}

void RateLimiter::ReportLocked(const std::vector<RateScope>& scopes, RateDecision* d) {
  // A request has a scope or three: its levels live on the stack.
  constexpr size_t kInline = 8;
  double inline_levels[2 * kInline];
  std::vector<double> heap;
  double* levels = inline_levels;
  if (scopes.size() > kInline) {
    heap.resize(2 * scopes.size());
    levels = heap.data();
  }
  const size_t n = scopes.size();
  for (size_t i = 0; i < n; ++i) {
    levels[i] = scopes[i].rpm > 0 ? requests_[scopes[i].name].level : 0;
    levels[n + i] = scopes[i].tpm > 0 ? tokens_[scopes[i].name].level : 0;
  }
  ReportTightest(scopes, {levels, n}, {levels + n, n}, d);
}

bool RefuseTooLarge(const std::vector<RateScope>& scopes, int64_t tokens, RateDecision* d) {
  for (const RateScope& s : scopes) {
    if (s.tpm > 0 && tokens > s.tpm) {
      // No wait makes room for it: the bucket never holds more than its limit.
      d->admitted = false;
      d->too_large = true;
      d->refused_by = s.name;
      d->limit_tokens = s.tpm;
      return true;
    }
  }
  return false;
}

RateDecision RateLimiter::Reserve(const std::vector<RateScope>& scopes, int64_t tokens) {
  RateDecision d;
  const int64_t now = clock_->NowNanos();
  MutexLock lock(&mu_);
  const double need = static_cast<double>(std::max<int64_t>(tokens, 0));
  if (RefuseTooLarge(scopes, tokens, &d)) return d;
  for (const RateScope& s : scopes) {
    if (s.tpm <= 0) continue;
    Bucket& b = tokens_[s.name];
    Refill(&b, s.tpm, now);
    if (b.level >= need) continue;
    const double wait = (need - b.level) * 60.0 / static_cast<double>(s.tpm);
    if (wait > d.retry_after_s) d.refused_by = s.name;
    d.retry_after_s = std::max(d.retry_after_s, wait);
    d.admitted = false;
  }
  for (const RateScope& s : scopes) {
    if (d.admitted && s.tpm > 0) tokens_[s.name].level -= need;
    // Refused: the request Admit() charged is given back, so it costs nothing.
    if (!d.admitted) GiveBackRequestLocked(s);
  }
  ReportLocked(scopes, &d);
  return d;
}

void RateLimiter::GiveBackRequestLocked(const RateScope& s) {
  if (s.rpm <= 0) return;
  Bucket& b = requests_[s.name];
  b.level = std::min<double>(static_cast<double>(s.rpm), b.level + 1);
}

void RateLimiter::EndInflightLocked(const RateScope& s) {
  if (s.max_inflight <= 0) return;
  auto it = inflight_.find(s.name);
  if (it != inflight_.end() && --it->second <= 0) inflight_.erase(it);
}

void RateLimiter::Refund(const std::vector<RateScope>& scopes) {
  MutexLock lock(&mu_);
  for (const RateScope& s : scopes) {
    GiveBackRequestLocked(s);
    EndInflightLocked(s);
  }
}

void RateLimiter::Settle(const std::vector<RateScope>& scopes, int64_t tokens) {
  const int64_t now = clock_->NowNanos();
  MutexLock lock(&mu_);
  for (const RateScope& s : scopes) EndInflightLocked(s);
  if (tokens == 0) return;
  for (const RateScope& s : scopes) {
    if (s.tpm <= 0) continue;
    Bucket& b = tokens_[s.name];
    Refill(&b, s.tpm, now);
    b.level = std::min<double>(static_cast<double>(s.tpm), b.level - static_cast<double>(tokens));
  }
}

}  // namespace contextd
