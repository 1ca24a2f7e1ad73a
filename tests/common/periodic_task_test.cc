#include "common/periodic_task.h"

#include <atomic>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(PeriodicTaskTest, RunsEveryPeriodAndStopsWhenDestroyed) {
  std::atomic<int> runs{0};
  {
    PeriodicTask task(std::chrono::milliseconds(5), [&] { ++runs; });
    for (int i = 0; i < 400 && runs.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GE(runs.load(), 3);
  }
  const int at_stop = runs.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(runs.load(), at_stop) << "no run after the task is destroyed";
}

TEST(PeriodicTaskTest, DestroyingWakesALongWait) {
  const auto start = std::chrono::steady_clock::now();
  {
    PeriodicTask task(std::chrono::hours(1), [] {});
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::minutes(1));
}

}  // namespace
}  // namespace contextd
