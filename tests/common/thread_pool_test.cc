#include "common/thread_pool.h"

#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "manual_clock.h"

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

// One task at a time goes to the worker that finished last: a light load keeps the same
// warm thread (its allocator cache and stack) instead of walking through all of them.
TEST(ThreadPoolTest, ALightLoadStaysOnTheWorkerThatRanLast) {
  ThreadPool pool(8, "test");
  const auto all_idle = [&] {
    while (pool.idle_workers() < pool.size()) std::this_thread::yield();
  };
  std::set<std::thread::id> ran_on;
  for (int i = 0; i < 50; ++i) {
    all_idle();
    std::atomic<bool> done{false};
    std::thread::id id;
    pool.Submit([&] {
      id = std::this_thread::get_id();
      done = true;
    });
    while (!done.load()) std::this_thread::yield();
    ran_on.insert(id);
  }
  EXPECT_EQ(ran_on.size(), 1u);
}

// Tasks that each wait for all the others to start need every worker awake at once.
TEST(ThreadPoolTest, AsManyTasksAsWorkersRunTogether) {
  constexpr int kWorkers = 6;
  ThreadPool pool(kWorkers, "test");
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> started{0}, finished{0};
    for (int i = 0; i < kWorkers; ++i) {
      pool.Submit([&] {
        ++started;
        while (started.load() < kWorkers) std::this_thread::yield();
        ++finished;
      });
    }
    while (finished.load() < kWorkers) std::this_thread::yield();
    EXPECT_EQ(started.load(), kWorkers);
  }
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

// The quantum is busy time since the worker last slept or yielded: tasks that together run
// past it earn one yield, and a pool without a quantum never yields.
TEST(ThreadPoolTest, YieldsOnceBusyForTheQuantum) {
  ManualClock clock;
  ThreadPool::Options options;
  options.quantum = std::chrono::milliseconds(2);
  options.clock = &clock;
  std::atomic<int> done{0};
  {
    ThreadPool pool(1, "test", options);
    // Queued behind a gate so the worker never sleeps between them.
    std::atomic<bool> open{false};
    pool.Submit([&] {
      while (!open.load()) std::this_thread::yield();
    });
    for (int i = 0; i < 6; ++i) {
      pool.Submit([&] {
        clock.AdvanceMs(1);
        ++done;
      });
    }
    std::atomic<bool> last{false};
    pool.Submit([&] { last = true; });  // runs once the sixth task's yield is counted
    open = true;
    while (!last.load()) std::this_thread::yield();
    // 6 ms of work in one busy stretch: a yield after every 2 ms.
    EXPECT_EQ(pool.yields(), 3u);
  }
  options.quantum = std::chrono::microseconds(0);
  ThreadPool plain(1, "test", options);
  std::atomic<int> ran{0};
  for (int i = 0; i < 4; ++i) {
    plain.Submit([&] {
      clock.AdvanceMs(5);
      ++ran;
    });
  }
  while (ran.load() < 4) std::this_thread::yield();
  EXPECT_EQ(plain.yields(), 0u);
}

// A worker that ran work and then idles flushes its allocator cache once per idle spell:
// not while tasks keep coming, not again while it stays idle, and never before it ran work.
TEST(ThreadPoolTest, AWorkerFlushesItsCacheOnceAfterGoingIdle) {
  ThreadPool::Options options;
  options.idle_flush = std::chrono::milliseconds(20);
  ThreadPool pool(1, "test", options);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(pool.cache_flushes(), 0u);  // idle from the start: nothing cached to flush
  auto run_and_wait_for_flush = [&](uint64_t flushes) {
    std::atomic<bool> ran{false};
    pool.Submit([&] { ran = true; });
    while (!ran.load()) std::this_thread::yield();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pool.cache_flushes() < flushes && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(pool.cache_flushes(), flushes);
  };
  run_and_wait_for_flush(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // five idle periods
  EXPECT_EQ(pool.cache_flushes(), 1u);
  run_and_wait_for_flush(2);

  options.idle_flush = std::chrono::milliseconds(0);
  ThreadPool never(1, "test", options);
  std::atomic<bool> ran{false};
  never.Submit([&] { ran = true; });
  while (!ran.load()) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(never.cache_flushes(), 0u);
}

}  // namespace
}  // namespace contextd
