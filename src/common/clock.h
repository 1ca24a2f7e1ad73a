// Clock: injectable time source (Envoy style) so tests can control time.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>

namespace contextd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in nanoseconds; only differences are meaningful.
  virtual int64_t NowNanos() const = 0;
  // Wall-clock time in milliseconds since the Unix epoch.
  virtual int64_t WallMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // The process-wide real clock.
  static const Clock* Default() {
    static const SystemClock clock;
    return &clock;
  }
};

}  // namespace contextd
