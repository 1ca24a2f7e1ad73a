#include "common/cores.h"

#include <sched.h>

#include <thread>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(CoresTest, AQuotaIsRoundedUpAndNoQuotaIsZero) {
  EXPECT_EQ(CoresFromQuota(150000, 100000), 2);
  EXPECT_EQ(CoresFromQuota(100000, 100000), 1);
  EXPECT_EQ(CoresFromQuota(50000, 100000), 1);
  EXPECT_EQ(CoresFromQuota(-1, 100000), 0);  // cgroup v1: no quota
  EXPECT_EQ(CoresFromCpuMax("max 100000"), 0);
  EXPECT_EQ(CoresFromCpuMax("400000 100000"), 4);
  EXPECT_EQ(CoresFromCpuMax("250000 100000\n"), 3);
  EXPECT_EQ(CoresFromCpuMax("garbage"), 0);
  EXPECT_EQ(CoresFromCpuMax("x 100000"), 0);
}

TEST(CoresTest, TheAffinityMaskBoundsTheCores) {
  const int all = UsableCores();
  EXPECT_GE(all, 1);
  EXPECT_LE(all, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  // A thread pinned to one CPU (as taskset pins a process) may use one core.
  int pinned = 0;
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    pinned = UsableCores();
  });
  t.join();
  EXPECT_EQ(pinned, 1);
}

}  // namespace
}  // namespace contextd
