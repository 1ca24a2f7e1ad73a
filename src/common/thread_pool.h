// ThreadPool: a fixed set of worker threads draining FIFO queues in lanes of priority: a
// worker takes the oldest task of the first lane that has one (lane 0 first), so the
// server's interactive requests pass its default ones, and both pass batch work.
//
// The server hands CPU-heavy and blocking work (embedding, search, synced writes) to a pool
// so that its I/O threads only parse and write bytes.
//
// A worker that keeps finding work never blocks, and the kernel then lets it run for a
// whole time slice (milliseconds) while the threads it woke meanwhile (the server's I/O
// threads, the clients on the same host) wait behind it. With a quantum, a worker that has
// run tasks for that long without sleeping yields the CPU at the next task boundary, the
// way Seastar's reactor polls I/O after its task quota. Measured on the 2-core bench box
// (BENCHMARKS.md, issue 2): hybrid queries at 32 clients kept p99 near 4 ms where it was
// 6-7 ms without.
//
// Idle workers are woken last-idle-first: a task goes to the worker that finished most
// recently. Woken first-in-first-out (one condition variable for all), a burst of eight
// tasks walks through every worker of a 64-thread pool over time, and each worker then
// keeps its own allocator cache, touched stack pages and allocator arena; woken
// last-in-first-out, the same few workers take a light load, warm, and the rest stay
// cold.
//
// Thread safety: Submit() is safe from any thread, including from inside a task.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"

namespace contextd {

class ThreadPool {
 public:
  struct Options {
    // Busy time after which a worker yields between tasks; zero never yields.
    std::chrono::microseconds quantum{0};
    // A worker that ran tasks and then finds none for this long flushes its allocator
    // cache once (FlushThreadCache), so idle workers do not each keep blocks cached from
    // the last large request; zero never does. Cheap: once per idle spell, not per task.
    std::chrono::milliseconds idle_flush{1000};
    const Clock* clock = SystemClock::Default();
  };
  ThreadPool(size_t threads, std::string name) : ThreadPool(threads, std::move(name), Options()) {}
  ThreadPool(size_t threads, std::string name, Options options);
  // Runs every queued task, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  static constexpr int kLanes = 3;
  // lane: 0 (first) to kLanes - 1; out of range is clamped.
  void Submit(std::function<void()> task, int lane = 0);
  // Tasks waiting, in every lane.
  size_t queue_depth() const;
  // Tasks a task submitted now to `lane` would wait behind: those in lanes 0..lane.
  size_t queue_depth_through(int lane) const;
  size_t size() const { return workers_.size(); }
  // Workers waiting for a task.
  size_t idle_workers() const;
  // Times a worker yielded for the quantum.
  uint64_t yields() const { return yields_.load(std::memory_order_relaxed); }
  // Times a worker flushed its allocator cache after going idle.
  uint64_t cache_flushes() const { return cache_flushes_.load(std::memory_order_relaxed); }

 private:
  void WorkerLoop(size_t id);

  const Options options_;
  std::atomic<uint64_t> yields_{0};
  std::atomic<uint64_t> cache_flushes_{0};

  mutable Mutex mu_;
  // One per worker: Submit() wakes the worker on top of idle_, and only that one.
  std::unique_ptr<std::condition_variable[]> wake_;
  // State below is protected by mu_.
  std::vector<size_t> idle_ GUARDED_BY(mu_);  // waiting workers, the latest to wait last
  std::vector<char> woken_ GUARDED_BY(mu_);   // per worker: taken off idle_ by Submit()
  std::deque<std::function<void()>> queue_[kLanes] GUARDED_BY(mu_);
  size_t queued_ GUARDED_BY(mu_) = 0;
  // Each lane's length, written under mu_ and read without it: admission asks on every
  // request, and must not contend with the workers for mu_.
  std::atomic<size_t> lane_depth_[kLanes] = {};
  bool stopping_ GUARDED_BY(mu_) = false;

  std::vector<std::thread> workers_;
};

}  // namespace contextd
