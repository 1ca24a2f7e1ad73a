#include "common/thread_pool.h"

#include <atomic>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(3, "test");
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { ++done; });
  }
  EXPECT_EQ(done.load(), 1000);
}

TEST(ThreadPoolTest, TasksMaySubmitTasks) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(2, "test");
    pool.Submit([&] {
      pool.Submit([&] { ++done; });
      ++done;
    });
    while (done.load() < 2) std::this_thread::yield();
  }
  EXPECT_EQ(done.load(), 2);
}

}  // namespace
}  // namespace contextd
