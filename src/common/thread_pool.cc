#include "common/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

#include "common/memory.h"

namespace contextd {

ThreadPool::ThreadPool(size_t threads, std::string name, Options options) : options_(options) {
  if (threads == 0) threads = 1;
  wake_ = std::make_unique<std::condition_variable[]>(threads);
  {
    MutexLock lock(&mu_);
    woken_.assign(threads, 0);
    idle_.reserve(threads);
  }
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
    std::string thread_name = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(workers_.back().native_handle(), thread_name.c_str());
  }
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (size_t i = 0; i < workers_.size(); ++i) wake_[i].notify_one();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task, int lane) {
  lane = std::clamp(lane, 0, kLanes - 1);
  size_t wake = workers_.size();  // none: every worker is busy and will look again
  {
    MutexLock lock(&mu_);
    queue_[lane].push_back(std::move(task));
    ++queued_;
    lane_depth_[lane].store(queue_[lane].size(), std::memory_order_relaxed);
    if (!idle_.empty()) {
      wake = idle_.back();
      idle_.pop_back();
      woken_[wake] = 1;
    }
  }
  if (wake < workers_.size()) wake_[wake].notify_one();
}

size_t ThreadPool::queue_depth() const {
  MutexLock lock(&mu_);
  return queued_;
}

size_t ThreadPool::idle_workers() const {
  MutexLock lock(&mu_);
  return idle_.size();
}

size_t ThreadPool::queue_depth_through(int lane) const {
  lane = std::clamp(lane, 0, kLanes - 1);
  size_t n = 0;
  for (int l = 0; l <= lane; ++l) n += lane_depth_[l].load(std::memory_order_relaxed);
  return n;
}

void ThreadPool::WorkerLoop(size_t id) {
  const int64_t quantum_ns = std::chrono::nanoseconds(options_.quantum).count();
  int64_t busy_since = options_.clock->NowNanos();
  bool cached = false;  // ran a task since its last cache flush
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      // Until a task is here. Woken but beaten to the task by a busy worker, it waits again,
      // back on top of the idle stack.
      while (!stopping_ && queued_ == 0) {
        woken_[id] = 0;
        idle_.push_back(id);
        auto ready = [this, id]() NO_THREAD_SAFETY_ANALYSIS { return woken_[id] || stopping_; };  // mu_ held
        if (cached && options_.idle_flush.count() > 0 && !lock.WaitFor(wake_[id], options_.idle_flush, ready)) {
          lock.Unlock();
          FlushThreadCache();
          cache_flushes_.fetch_add(1, std::memory_order_relaxed);
          cached = false;
          lock.Lock();
        }
        lock.Wait(wake_[id], ready);
        // Stopping: it may still be on the stack; nobody pops it again.
        if (!woken_[id]) idle_.erase(std::find(idle_.begin(), idle_.end(), id));
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
