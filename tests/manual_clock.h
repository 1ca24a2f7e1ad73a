// ManualClock: a Clock the test moves by hand.
#pragma once

#include <atomic>

#include "common/clock.h"

namespace contextd {

class ManualClock final : public Clock {
 public:
  int64_t NowNanos() const override { return now_ns_.load(); }
  int64_t WallMillis() const override { return 1700000000000 + now_ns_.load() / 1000000; }
  void AdvanceMs(int64_t ms) { now_ns_ += ms * 1000000; }

 private:
  std::atomic<int64_t> now_ns_{1000000000};
};

}  // namespace contextd
