#include "common/metrics.h"

#include <algorithm>
#include <cmath>

#include "common/json.h"

namespace contextd {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micros_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::sum() const { return sum_micros_.load(std::memory_order_relaxed) / 1e6; }

std::vector<double> DefaultLatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out.push_back(',');
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out.push_back('\\');
        out.push_back(c);
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(const std::string& name, const std::string& type,
                                                       const std::string& help) {
  auto& f = families_[name];
  if (f.type.empty()) {
    f.type = type;
    f.help = help;
  }
  return f;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyLocked(name, "counter", help).counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyLocked(name, "gauge", help).gauges[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                         std::vector<double> bounds) {
  MutexLock lock(&mu_);
  auto& slot = FamilyLocked(name, "histogram", help).histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

int MetricsRegistry::AddCollector(std::function<void(std::string*)> fn) {
  MutexLock lock(&mu_);
  int id = next_collector_id_++;
  collectors_[id] = std::move(fn);
  return id;
}

void MetricsRegistry::RemoveCollector(int id) {
  MutexLock lock(&mu_);
  collectors_.erase(id);
}

namespace {

// Inserts `extra` (e.g. le="0.5") into a rendered label set.
std::string WithLabel(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

std::string FormatNumber(double d) {
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  std::string s;
  AppendJsonNumber(d, &s);
  return s;
}

}  // namespace

std::string MetricsRegistry::RenderPrometheus() const {
  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + labels + " " + std::to_string(c->value()) + "\n";
    }
    for (const auto& [labels, g] : f.gauges) {
      out += name + labels + " " + std::to_string(g->value()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      auto counts = h->CumulativeCounts();
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        out += name + "_bucket" + WithLabel(labels, "le=\"" + FormatNumber(h->bounds()[i]) + "\"") + " " +
               std::to_string(counts[i]) + "\n";
      }
      out += name + "_bucket" + WithLabel(labels, "le=\"+Inf\"") + " " + std::to_string(counts.back()) + "\n";
      out += name + "_sum" + labels + " " + FormatNumber(h->sum()) + "\n";
      out += name + "_count" + labels + " " + std::to_string(counts.back()) + "\n";
    }
  }
  for (const auto& [id, fn] : collectors_) fn(&out);
  return out;
}

}  // namespace contextd
