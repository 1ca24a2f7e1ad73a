// BatchingEmbedder: dynamic batching in front of an embedder whose cost is per call (a
// remote provider, a transformer forward pass).
//
// Callers' texts join a queue; a worker takes a batch when max_batch_size texts or
// max_batch_tokens (estimated as bytes / 4) are waiting, or when the oldest has waited
// max_wait_us. Query texts are taken before bulk (ingestion) texts. A batch is sorted by
// length before it goes out, so a padded forward pass wastes little; results return to
// each caller in its own order. The queue is bounded: a caller whose texts do not fit gets
// ResourceExhausted ("queue_full", HTTP 429 with Retry-After) at once, and one whose
// deadline passes while it waits gets DeadlineExceeded; its queued texts are then skipped.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "embed/embedder.h"

namespace contextd {

struct BatcherOptions {
  int64_t max_wait_us = 2000;
  size_t max_batch_size = 64;
  size_t max_batch_tokens = 16384;
  size_t max_queue = 8192;  // texts waiting, both priorities together
  int workers = 4;          // batches in flight at once
};

class BatchingEmbedder final : public Embedder {
 public:
  // metrics may be null; `label` names this batcher in them.
  BatchingEmbedder(std::shared_ptr<const Embedder> inner, BatcherOptions options, MetricsRegistry* metrics,
                   const std::string& label);
  ~BatchingEmbedder() override;

  std::string model() const override { return inner_->model(); }
  bool waits() const override { return true; }
  int dim() const override { return inner_->dim(); }
  bool truncatable() const override { return inner_->truncatable(); }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override;
  Status EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options, float* out) const override;

  size_t queue_depth() const;
  uint64_t batches() const { return batches_.load(); }
  // Queued texts dropped because their request's deadline had passed.
  uint64_t dropped_late() const { return dropped_late_.load(); }

 private:
  struct Call;
  struct Item {
    std::shared_ptr<Call> call;
    size_t index;  // into the call's texts
    int64_t enqueued_ns;
  };
  void WorkerLoop();
  // REQUIRES: mu_ held. Whether a batch is ready now; else *wait_ns is how long until the
  // oldest item's max_wait runs out.
  bool BatchReady(int64_t now, int64_t* wait_ns) const REQUIRES(mu_);

  std::shared_ptr<const Embedder> inner_;
  const BatcherOptions options_;
  const Clock* clock_;
  Histogram* batch_size_ = nullptr;
  Counter* rejected_ = nullptr;

  mutable Mutex mu_;
  mutable std::condition_variable work_cv_;
  mutable std::deque<Item> query_ GUARDED_BY(mu_);
  mutable std::deque<Item> bulk_ GUARDED_BY(mu_);
  mutable size_t queued_tokens_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  mutable std::atomic<uint64_t> batches_{0};
  mutable std::atomic<uint64_t> dropped_late_{0};
  std::vector<std::thread> workers_;
  int collector_id_ = -1;
  MetricsRegistry* metrics_;
};

}  // namespace contextd
