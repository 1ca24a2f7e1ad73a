#include "common/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

#include "common/memory.h"

namespace contextd {

ThreadPool::ThreadPool(size_t threads, std::string name, Options options) : options_(options) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
    std::string thread_name = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(workers_.back().native_handle(), thread_name.c_str());
  }
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task, int lane) {
  lane = std::clamp(lane, 0, kLanes - 1);
  {
    MutexLock lock(&mu_);
    queue_[lane].push_back(std::move(task));
    ++queued_;
    lane_depth_[lane].store(queue_[lane].size(), std::memory_order_relaxed);
  }
  cv_.notify_one();
}

size_t ThreadPool::queue_depth() const {
  MutexLock lock(&mu_);
  return queued_;
}

size_t ThreadPool::queue_depth_through(int lane) const {
  lane = std::clamp(lane, 0, kLanes - 1);
  size_t n = 0;
  for (int l = 0; l <= lane; ++l) n += lane_depth_[l].load(std::memory_order_relaxed);
  return n;
}

void ThreadPool::WorkerLoop() {
  const int64_t quantum_ns = std::chrono::nanoseconds(options_.quantum).count();
  int64_t busy_since = options_.clock->NowNanos();
  bool cached = false;  // ran a task since its last cache flush
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      auto ready = [this]() NO_THREAD_SAFETY_ANALYSIS { return stopping_ || queued_ > 0; };  // mu_ held
      if (!ready()) {
        if (cached && options_.idle_flush.count() > 0 && !lock.WaitFor(cv_, options_.idle_flush, ready)) {
          lock.Unlock();
          FlushThreadCache();
          cache_flushes_.fetch_add(1, std::memory_order_relaxed);
          cached = false;
          lock.Lock();
        }
        lock.Wait(cv_, ready);
        busy_since = options_.clock->NowNanos();  // it slept: the others had their turn
      }
      if (queued_ == 0) return;  // stopping and drained
      for (int l = 0; l < kLanes; ++l) {
        if (queue_[l].empty()) continue;
        task = std::move(queue_[l].front());
        queue_[l].pop_front();
        lane_depth_[l].store(queue_[l].size(), std::memory_order_relaxed);
        break;
      }
      --queued_;
    }
    task();
    cached = true;
    if (quantum_ns <= 0) continue;
    const int64_t now = options_.clock->NowNanos();
    if (now - busy_since < quantum_ns) continue;
    // Free when nothing else is runnable here: the kernel hands the CPU straight back.
    sched_yield();
    yields_.fetch_add(1, std::memory_order_relaxed);
    busy_since = options_.clock->NowNanos();
  }
}

}  // namespace contextd
