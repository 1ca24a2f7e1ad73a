// FakeProvider: a real HTTP embedding provider for tests and benchmarks, speaking the
// OpenAI (/v1/embeddings), TEI (/embed) and Ollama (/api/embed) protocols. Each text's
// vector is a deterministic function of the text (FakeVector), so callers can check that
// every answer is the right one, in the right order. It can be told to fail (500), hang,
// answer 429 with Retry-After, or return vectors of the wrong size, and it counts calls.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/json.h"
#include "net/http_server.h"

namespace contextd {

// The unnormalised vector the fake returns for `text`.
inline std::vector<float> FakeVector(std::string_view text, int dim) {
  std::vector<float> v(static_cast<size_t>(dim));
  for (int d = 0; d < dim; ++d) {
    v[d] = static_cast<float>(Hash64(text, static_cast<uint64_t>(d)) % 2001) / 1000.0f - 1.0f;
  }
  return v;
}

inline std::vector<float> FakeUnitVector(std::string_view text, int dim) {
  auto v = FakeVector(text, dim);
  double n = 0;
  for (float x : v) n += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

class FakeProvider {
 public:
  enum class Mode { kOk, kFail, kHang, kTooMany, kWrongDim };

  // per_call_us: latency of every call, whatever its size. serial: the provider computes
  // one call at a time (a model on one accelerator), so calls queue behind each other.
  explicit FakeProvider(int dim, int64_t per_call_us = 0, bool serial = false)
      : dim_(dim), per_call_us_(per_call_us), serial_(serial) {
    HttpServerOptions o;
    o.port = 0;
    o.io_threads = 2;
    server_ = std::make_unique<HttpServer>(
        o, [this](HttpRequest req, Responder respond) { Handle(std::move(req), std::move(respond)); });
    if (!server_->Start().ok()) std::abort();
    timer_ = std::thread([this] { TimerLoop(); });
  }
  ~FakeProvider() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    timer_cv_.notify_all();
    timer_.join();
    server_->Stop();
  }

  // The traceparent header of the last embedding call ("" when it had none).
  std::string last_traceparent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_traceparent_;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void set_mode(Mode m) { mode_ = m; }
  void set_retry_after(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    retry_after_ = std::move(s);
  }
  // Fail this many calls with the current failure mode, then serve normally.
  void fail_next(int n, Mode m) {
    fail_left_ = n;
    fail_mode_ = m;
  }
  int calls() const { return calls_; }
  int texts() const { return texts_; }
  std::vector<int64_t> call_times_ms() {
    std::lock_guard<std::mutex> lock(mu_);
    return call_times_ms_;
  }

 private:
  void Handle(HttpRequest req, Responder respond) {
    ++calls_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!health_probe(req)) last_traceparent_ = req.Header("traceparent");
      call_times_ms_.push_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
              .count());
    }
    Mode mode = mode_;
    if (fail_left_.load() > 0 && fail_left_.fetch_sub(1) > 0) mode = fail_mode_;
    HttpResponse res;
    if (health_probe(req)) mode = mode == Mode::kTooMany ? Mode::kOk : mode;
    if (mode == Mode::kFail) {
      res.status = 500;
      res.body = "{\"error\":\"injected failure\"}";
      return respond(std::move(res));
    }
    if (mode == Mode::kTooMany) {
      res.status = 429;
      std::lock_guard<std::mutex> lock(mu_);
      res.headers.emplace_back("Retry-After", retry_after_);
      res.body = "{\"error\":\"slow down\"}";
      return respond(std::move(res));
    }
    auto body = ParseJson(req.body);
    const Json* input = nullptr;
    if (body.ok()) input = body->Find(req.path == "/embed" ? "inputs" : "input");
    if (input == nullptr || !input->is_array()) {
      res.status = 400;
      res.body = "{\"error\":\"bad request\"}";
      return respond(std::move(res));
    }
    texts_ += static_cast<int>(input->as_array().size());
    const int dim = mode == Mode::kWrongDim ? dim_ + 1 : dim_;
    std::string out;
    std::vector<std::string> rows;
    for (const Json& t : input->as_array()) {
      std::string row = "[";
      auto v = FakeVector(t.is_string() ? t.as_string() : "", dim);
      for (int d = 0; d < dim; ++d) {
        if (d) row += ",";
        AppendJsonNumber(v[d], &row);
      }
      rows.push_back(row + "]");
    }
    if (req.path == "/embed") {
      out = "[";
      for (size_t i = 0; i < rows.size(); ++i) out += (i ? "," : "") + rows[i];
      out += "]";
    } else if (req.path == "/api/embed") {
      out = "{\"embeddings\":[";
      for (size_t i = 0; i < rows.size(); ++i) out += (i ? "," : "") + rows[i];
      out += "]}";
    } else {
      // OpenAI: data in reverse order, so a client that ignores "index" gets it wrong.
      out = "{\"data\":[";
      for (size_t k = 0; k < rows.size(); ++k) {
        size_t i = rows.size() - 1 - k;
        out += (k ? "," : "") + std::string("{\"index\":") + std::to_string(i) + ",\"embedding\":" + rows[i] + "}";
      }
      out += "]}";
    }
    res.body = std::move(out);
    const int64_t delay_us = mode == Mode::kHang ? 1500000 : per_call_us_;
    if (delay_us == 0) return respond(std::move(res));
    // Answered later by the timer thread: the I/O thread stays free for other connections.
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto start = std::chrono::steady_clock::now();
      if (serial_ && mode != Mode::kHang) start = std::max(start, next_free_);
      const auto due = start + std::chrono::microseconds(delay_us);
      if (serial_ && mode != Mode::kHang) next_free_ = due;
      delayed_.push_back({due, std::move(res), std::move(respond)});
    }
    timer_cv_.notify_all();
  }
  void TimerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      // Answers still pending at shutdown are sent at once.
      if (stopping_ && delayed_.empty()) return;
      if (delayed_.empty()) {
        timer_cv_.wait(lock);
        continue;
      }
      auto first = std::min_element(delayed_.begin(), delayed_.end(),
                                    [](const Delayed& a, const Delayed& b) { return a.due < b.due; });
      if (!stopping_ && first->due > std::chrono::steady_clock::now()) {
        // A copy: wait_until reads its deadline while unlocked, when a push_back may have
        // moved the vector (found by AddressSanitizer).
        const auto due = first->due;
        timer_cv_.wait_until(lock, due);
        continue;
      }
      Delayed d = std::move(*first);
      delayed_.erase(first);
      lock.unlock();
      d.respond(std::move(d.res));
      lock.lock();
    }
  }
  static bool health_probe(const HttpRequest& req) { return req.body.find("health check") != std::string::npos; }

  const int dim_;
  const int64_t per_call_us_;
  const bool serial_;
  std::chrono::steady_clock::time_point next_free_{};  // guarded by mu_
  std::unique_ptr<HttpServer> server_;
  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<int> fail_left_{0};
  std::atomic<Mode> fail_mode_{Mode::kFail};
  std::atomic<int> calls_{0};
  std::atomic<int> texts_{0};
  mutable std::mutex mu_;
  std::string retry_after_ = "0";
  std::string last_traceparent_;
  std::vector<int64_t> call_times_ms_;
  struct Delayed {
    std::chrono::steady_clock::time_point due;
    HttpResponse res;
    Responder respond;
  };
  std::vector<Delayed> delayed_;  // guarded by mu_
  bool stopping_ = false;
  std::condition_variable timer_cv_;
  std::thread timer_;
};

}  // namespace contextd
