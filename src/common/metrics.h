// MetricsRegistry: counters, gauges and histograms rendered in the Prometheus text format.
//
// Metric objects are created once (registration takes a lock) and updated lock-free on the
// hot path; callers keep the returned pointers, which stay valid for the registry's life.
// Values that already live elsewhere (collection sizes) are reported by collectors, which
// run at scrape time.
//
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace contextd {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Increment(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  // bounds: ascending upper bounds of the buckets; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Cumulative counts per bound, then the total count last.
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 buckets
  std::atomic<uint64_t> sum_micros_{0};              // sum in millionths, so it can be atomic
};

// Latency buckets in seconds, 50us .. 10s.
std::vector<double> DefaultLatencyBuckets();

class MetricsRegistry {
 public:
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                          std::vector<double> bounds = DefaultLatencyBuckets());

  // A collector appends complete Prometheus text (with # HELP/# TYPE) at scrape time.
  // It must stay callable until the registry is destroyed or RemoveCollector(id) returns.
  int AddCollector(std::function<void(std::string*)> fn);
  void RemoveCollector(int id);

  std::string RenderPrometheus() const;

 private:
  struct Family {
    std::string type;  // counter | gauge | histogram
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // by rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyLocked(const std::string& name, const std::string& type, const std::string& help) REQUIRES(mu_);

  mutable Mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, Family> families_ GUARDED_BY(mu_);
  std::map<int, std::function<void(std::string*)>> collectors_ GUARDED_BY(mu_);
  int next_collector_id_ GUARDED_BY(mu_) = 1;
};

// Renders {k="v",...} with Prometheus escaping; empty string for no labels.
std::string RenderLabels(const Labels& labels);

}  // namespace contextd
