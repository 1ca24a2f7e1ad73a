// ThreadPool: a fixed set of worker threads draining one FIFO queue.
//
// The server hands CPU-heavy and blocking work (embedding, search, synced writes) to a pool
// so that its I/O threads only parse and write bytes.
//
// Thread safety: Submit() is safe from any thread, including from inside a task.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace contextd {

class ThreadPool {
 public:
  ThreadPool(size_t threads, std::string name);
  // Runs every queued task, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t queue_depth() const;
  size_t size() const { return workers_.size(); }

 private:
  void WorkerLoop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // State below is protected by mu_.
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;

  std::vector<std::thread> workers_;
};

}  // namespace contextd
