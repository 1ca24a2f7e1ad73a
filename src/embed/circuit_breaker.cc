#include "embed/circuit_breaker.h"

#include <algorithm>

namespace contextd {

CircuitBreaker::CircuitBreaker(BreakerOptions options, const Clock* clock) : options_(options), clock_(clock) {
  outcomes_.reserve(static_cast<size_t>(std::max(options_.window, 1)));
}

bool CircuitBreaker::Allow() {
  MutexLock lock(&mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (clock_->NowNanos() < open_until_ns_) return false;
      state_ = State::kHalfOpen;
      probe_out_ = true;
      return true;
    case State::kHalfOpen:
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

bool CircuitBreaker::WouldAllow() const {
  MutexLock lock(&mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      return clock_->NowNanos() >= open_until_ns_;
    case State::kHalfOpen:
      return !probe_out_;
  }
  return false;
}

void CircuitBreaker::OnSuccess() {
  MutexLock lock(&mu_);
  consecutive_ = 0;
  if (state_ != State::kClosed) {
    state_ = State::kClosed;
    probe_out_ = false;
    outcomes_.clear();
    next_ = 0;
    return;
  }
  Record(false);
}

void CircuitBreaker::Record(bool failure) {
  const size_t window = static_cast<size_t>(std::max(options_.window, 1));
  if (outcomes_.size() < window) {
    outcomes_.push_back(failure);
  } else {
    outcomes_[next_] = failure;
    next_ = (next_ + 1) % window;
  }
}

void CircuitBreaker::OnFailure() {
  MutexLock lock(&mu_);
  if (state_ != State::kClosed) {
    Open();  // the probe failed (or a straggler from before): another cooldown
    return;
  }
  ++consecutive_;
  Record(true);
  const size_t window = static_cast<size_t>(std::max(options_.window, 1));
  const double failures = static_cast<double>(std::count(outcomes_.begin(), outcomes_.end(), true));
  if (consecutive_ >= options_.consecutive_failures ||
      (outcomes_.size() == window && failures / static_cast<double>(window) > options_.failure_ratio)) {
    Open();
  }
}

void CircuitBreaker::Open() {
  state_ = State::kOpen;
  probe_out_ = false;
  consecutive_ = 0;
  outcomes_.clear();
  next_ = 0;
  open_until_ns_ = clock_->NowNanos() + options_.cooldown_ms * 1000000;
}

CircuitBreaker::State CircuitBreaker::state() const {
  MutexLock lock(&mu_);
  return state_;
}

}  // namespace contextd
