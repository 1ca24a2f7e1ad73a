// contextd loadtest: an open-loop load generator. Requests are sent at a set arrival rate
// whatever the server does, and each one's latency is measured from the moment it was due,
// so a slow server cannot hide its queueing behind a slow client (coordinated omission).
//
// A scenario (JSON) names a weighted mix of requests with bodies drawn from text files,
// API keys used in turn, the connections to use, and either stages (rate, seconds, an
// optional ramp) or a profile: "stress" steps the rate up until the latency objective
// breaks or the server saturates, and reports the knee and the capacity; "soak" holds a
// rate for hours and samples
// the server's memory from /metrics.
//
// Thread safety: Run is called once per LoadTest.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "net/http.h"

namespace contextd {

struct LoadRequest {
  std::string name, method = "GET", path;
  double weight = 1;
  // The body with "{{text}}" (when present) replaced by a text drawn in turn from `texts`,
  // JSON-escaped.
  std::string body;
  std::vector<std::string> texts;
  HttpHeaders headers;  // sent with every one (a deadline: X-Request-Timeout-Ms)
};

struct LoadStage {
  std::string name;
  double rate_from = 0, rate_to = 0;  // requests per second, ramped linearly
  double seconds = 0;
};

struct Scenario {
  std::string url;
  int connections = 64;
  int64_t timeout_ms = 30000;
  std::vector<std::string> keys;
  std::vector<LoadRequest> requests;
  std::vector<LoadStage> stages;
  std::string profile = "baseline";  // baseline (the stages), stress, soak
  // stress: start_rate * step^i for step_seconds each, at most max_steps steps, read by
  // ReadStress (below): the knee (p99 within slo_p99_ms, errors within max_error_rate) and
  // the capacity (the most goodput served within slo_p99_ms), stepping until p99 breaks or
  // the errors pass saturation_error_rate.
  double start_rate = 100, step = 1.25, step_seconds = 10, slo_p99_ms = 100, max_error_rate = 0.01;
  double saturation_error_rate = 0.1;
  // Consecutive steps that must break (p99, or saturation) before stepping stops: one
  // stall of a shared machine can put a short step's p99 over the objective.
  int patience = 1;
  int max_steps = 20;
  // soak: one stage at `rate` for `seconds`, the server's memory sampled every sample_s.
  double soak_rate = 100, soak_seconds = 3600, sample_s = 10;

  // Parses a scenario; text files are read relative to `base_dir`. InvalidArgument names
  // the member that is wrong.
  static StatusOr<Scenario> FromJson(const Json& j, const std::string& base_dir);
};

// The stress profile's reading of the steps run so far. The knee is the last rate before the
// first step that broke the objective (p99 over slo_p99_ms, or errors over max_error_rate).
// The capacity is the most goodput any step served within slo_p99_ms: a server that sheds
// a little by design (a queue-delay rule rejecting 1-2% well before it saturates) passes
// the error budget long before its goodput stops rising, and ten times a knee read there
// is not ten times what it can serve. Stepping goes on while p99 holds and the errors stay
// under saturation_error_rate (or until `patience` steps in a row did not).
struct StressStep {
  double rate = 0, goodput = 0, error_rate = 0, p99_ms = 0;
  // Within the latency objective; and within the error budget too (the knee's test).
  bool Fast(const Scenario& s) const { return p99_ms <= s.slo_p99_ms; }
  bool Held(const Scenario& s) const { return Fast(s) && error_rate <= s.max_error_rate; }
};
struct StressReading {
  double knee_rate = 0, capacity = 0;
  bool go_on = true;
};
StressReading ReadStress(const Scenario& s, const std::vector<StressStep>& steps);

// What happened, per stage and per second (the chart's series), as JSON.
struct LoadReport {
  Json json;
  // Per second: offered rate, 2xx per second, errors per second, p50 and p99 in ms.
  std::vector<std::array<double, 5>> series;
};

// Runs the scenario against its url. The run's figures come back even when every request
// failed (the server down is a finding, not an error); only a malformed url is an error.
StatusOr<LoadReport> RunLoadTest(const Scenario& s);

// Draws the per-second series as a PNG (rate blue, goodput green, p50 orange, p99 red,
// errors black; each series scaled to its own maximum, which the report's "chart" lists).
std::string RenderChartPng(const LoadReport& report, int width = 960, int height = 480);

}  // namespace contextd
