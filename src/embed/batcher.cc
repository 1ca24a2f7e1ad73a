#include "embed/batcher.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace contextd {
namespace {

size_t EstimateTokens(std::string_view text) { return text.size() / 4 + 1; }

}  // namespace

struct BatchingEmbedder::Call {
  std::vector<std::string> texts;  // owned: a caller that gives up must not leave views behind
  std::vector<float> out;
  EmbedPriority priority;
  int64_t deadline_ns = 0;  // queued texts of a call past it are dropped, not embedded
  std::string traceparent;
  Mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;  // guarded by mu
  Status status;         // guarded by mu
  std::atomic<bool> abandoned{false};
};

BatchingEmbedder::BatchingEmbedder(std::shared_ptr<const Embedder> inner, BatcherOptions options,
                                   MetricsRegistry* metrics, const std::string& label)
    : inner_(std::move(inner)), options_(options), clock_(SystemClock::Default()), metrics_(metrics) {
  if (metrics_ != nullptr) {
    batch_size_ = metrics_->GetHistogram("contextd_embed_batch_size", "Texts per batch sent to an embedder.",
                                         {{"embedder", label}}, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
    rejected_ =
        metrics_->GetCounter("contextd_embed_queue_rejected_total",
                             "Embedding requests refused because the batching queue was full.", {{"embedder", label}});
    collector_id_ = metrics_->AddCollector([this, label](std::string* out) {
      *out += "# HELP contextd_embed_queue_depth Texts waiting in an embedding batcher.\n";
      *out += "# TYPE contextd_embed_queue_depth gauge\n";
      *out += "contextd_embed_queue_depth{embedder=\"" + label + "\"} " + std::to_string(queue_depth()) + "\n";
      *out +=
          "# HELP contextd_embed_dropped_late_total Queued texts dropped because their request's deadline passed.\n";
      *out += "# TYPE contextd_embed_dropped_late_total counter\n";
      *out += "contextd_embed_dropped_late_total{embedder=\"" + label + "\"} " + std::to_string(dropped_late()) + "\n";
    });
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

BatchingEmbedder::~BatchingEmbedder() {
  if (metrics_ != nullptr) metrics_->RemoveCollector(collector_id_);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

size_t BatchingEmbedder::queue_depth() const {
  MutexLock lock(&mu_);
  return query_.size() + bulk_.size();
}

Status BatchingEmbedder::Embed(const std::vector<std::string_view>& texts, float* out) const {
  return EmbedWith(texts, EmbedOptions(), out);
}

Status BatchingEmbedder::EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options,
                                   float* out) const {
  if (texts.empty()) return Status::Ok();
  const size_t dim = static_cast<size_t>(inner_->dim());
  auto call = std::make_shared<Call>();
  call->texts.assign(texts.begin(), texts.end());
  call->out.resize(texts.size() * dim);
  call->priority = options.priority;
  call->deadline_ns = options.deadline_ns;
  call->traceparent = options.traceparent;
  call->remaining = texts.size();
  {
    MutexLock lock(&mu_);
    // A call larger than the whole queue still goes in when the queue is empty; otherwise
    // a big ingest batch could never be embedded at all.
    const size_t queued = query_.size() + bulk_.size();
    if (queued > 0 && queued + texts.size() > options_.max_queue) {
      if (rejected_ != nullptr) rejected_->Increment();
      return ResourceExhausted("the embedding queue of " + inner_->model() + " is full (" +
                                   std::to_string(options_.max_queue) + " texts); retry later",
                               "queue_full");
    }
    auto& queue = options.priority == EmbedPriority::kQuery ? query_ : bulk_;
    const int64_t now = clock_->NowNanos();
    for (size_t i = 0; i < texts.size(); ++i) {
      queue.push_back({call, i, now});
      queued_tokens_ += EstimateTokens(texts[i]);
    }
  }
  work_cv_.notify_all();
  MutexLock lock(&call->mu);
  auto done = [&]() NO_THREAD_SAFETY_ANALYSIS { return call->remaining == 0; };  // call->mu held
  if (options.deadline_ns > 0) {
    const int64_t left = options.deadline_ns - clock_->NowNanos();
    if (!lock.WaitFor(call->cv, std::chrono::nanoseconds(std::max<int64_t>(left, 0)), done)) {
      call->abandoned = true;
      return DeadlineExceeded("embedding did not finish before the request's deadline (queue of " + inner_->model() +
                              ")");
    }
  } else {
    lock.Wait(call->cv, done);
  }
  if (!call->status.ok()) return call->status;
  std::memcpy(out, call->out.data(), sizeof(float) * call->out.size());
  return Status::Ok();
}

bool BatchingEmbedder::BatchReady(int64_t now, int64_t* wait_ns) const {
  const size_t n = query_.size() + bulk_.size();
  if (n >= options_.max_batch_size || queued_tokens_ >= options_.max_batch_tokens) return true;
  int64_t oldest = INT64_MAX;
  if (!query_.empty()) oldest = query_.front().enqueued_ns;
  if (!bulk_.empty()) oldest = std::min(oldest, bulk_.front().enqueued_ns);
  const int64_t due = oldest + options_.max_wait_us * 1000;
  if (due <= now) return true;
  *wait_ns = due - now;
  return false;
}

void BatchingEmbedder::WorkerLoop() {
  const size_t dim = static_cast<size_t>(inner_->dim());
  std::vector<Item> batch;
  std::vector<float> buf;
  MutexLock lock(&mu_);
  while (true) {
    if (query_.empty() && bulk_.empty()) {
      if (stopping_) return;
      lock.Wait(work_cv_);
      continue;
    }
    int64_t wait_ns = 0;
    if (!stopping_ && !BatchReady(clock_->NowNanos(), &wait_ns)) {
      lock.WaitFor(work_cv_, std::chrono::nanoseconds(wait_ns));
      continue;
    }
    batch.clear();
    size_t tokens = 0;
    const int64_t now = clock_->NowNanos();
    for (auto* queue : {&query_, &bulk_}) {
      while (!queue->empty() && batch.size() < options_.max_batch_size) {
        const Item& item = queue->front();
        const size_t t = EstimateTokens(item.call->texts[item.index]);
        if (!batch.empty() && tokens + t > options_.max_batch_tokens) break;
        tokens += t;
        queued_tokens_ -= t;
        // A caller that gave up, or whose deadline has passed (it is about to give up),
        // gets nothing embedded: the provider's time goes to requests that can use it.
        const bool late = item.call->deadline_ns > 0 && now >= item.call->deadline_ns;
        if (!item.call->abandoned && !late) batch.push_back(item);
        if (late) dropped_late_.fetch_add(1);
        queue->pop_front();
      }
    }
    if (!query_.empty() || !bulk_.empty()) work_cv_.notify_one();  // more for another worker
    if (batch.empty()) continue;
    lock.Unlock();

    // Shortest first, so a padded forward pass pads little.
    std::sort(batch.begin(), batch.end(), [](const Item& a, const Item& b) {
      return a.call->texts[a.index].size() < b.call->texts[b.index].size();
    });
    std::vector<std::string_view> views;
    EmbedOptions opts;
    opts.priority = EmbedPriority::kBulk;
    for (const Item& item : batch) {
      views.push_back(item.call->texts[item.index]);
      if (item.call->priority == EmbedPriority::kQuery) opts.priority = EmbedPriority::kQuery;
      if (opts.traceparent.empty()) opts.traceparent = item.call->traceparent;
    }
    buf.resize(views.size() * dim);
    Status st = inner_->EmbedWith(views, opts, buf.data());
    batches_.fetch_add(1);
    if (batch_size_ != nullptr) batch_size_->Observe(static_cast<double>(batch.size()));
    for (size_t i = 0; i < batch.size(); ++i) {
      Call& call = *batch[i].call;
      MutexLock call_lock(&call.mu);
      if (st.ok()) {
        std::memcpy(call.out.data() + batch[i].index * dim, buf.data() + i * dim, sizeof(float) * dim);
      } else {
        call.status = st;
      }
      if (--call.remaining == 0) call.cv.notify_all();
    }
    lock.Lock();
  }
}

}  // namespace contextd
