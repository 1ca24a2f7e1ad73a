#include "loadtest/loadtest.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "net/http_client.h"
#include "net/http_multi_client.h"

namespace contextd {

namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

// One text per line: a JSON line's `field`, or the line itself.
StatusOr<std::vector<std::string>> ReadTexts(const std::string& path, const std::string& field) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read texts file " + path, "invalid_value");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = ParseJson(line);
    const Json* v = j.ok() ? j->Find(field) : nullptr;
    out.push_back(v != nullptr && v->is_string() ? v->as_string() : line);
  }
  if (out.empty()) return InvalidArgument("texts file " + path + " holds no texts", "invalid_value");
  return out;
}

double Number(const Json& j, const char* key, double fallback) {
  const Json* v = j.Find(key);
  return v != nullptr && v->is_number() ? v->as_double() : fallback;
}

}  // namespace

StatusOr<Scenario> Scenario::FromJson(const Json& j, const std::string& base_dir) {
  if (!j.is_object()) return InvalidArgument("a scenario is a JSON object", "invalid_type");
  Scenario s;
  if (const Json* u = j.Find("url"); u != nullptr && u->is_string()) s.url = u->as_string();
  s.connections = static_cast<int>(Number(j, "connections", s.connections));
  if (s.connections < 1 || s.connections > 4096) {
    return InvalidArgument("'connections' must be 1 to 4096", "invalid_value");
  }
  s.timeout_ms = static_cast<int64_t>(Number(j, "timeout_ms", static_cast<double>(s.timeout_ms)));
  if (const Json* keys = j.Find("keys"); keys != nullptr && keys->is_array()) {
    for (const Json& k : keys->as_array()) {
      if (!k.is_string()) return InvalidArgument("'keys' holds API keys as strings", "invalid_value");
      s.keys.push_back(k.as_string());
    }
  }
  const Json* requests = j.Find("requests");
  if (requests == nullptr || !requests->is_array() || requests->as_array().empty()) {
    return InvalidArgument("'requests' must list at least one request", "missing_field");
  }
  for (const Json& r : requests->as_array()) {
    LoadRequest q;
    const Json* path = r.Find("path");
    if (path == nullptr || !path->is_string() || path->as_string().empty() || path->as_string()[0] != '/') {
      return InvalidArgument("each request needs a 'path' starting with /", "missing_field");
    }
    q.path = path->as_string();
    if (const Json* m = r.Find("method"); m != nullptr && m->is_string()) q.method = m->as_string();
    q.name = r.Find("name") != nullptr && r.Find("name")->is_string() ? r.Find("name")->as_string()
                                                                      : q.method + " " + q.path;
    q.weight = Number(r, "weight", 1);
    if (q.weight <= 0) return InvalidArgument("request '" + q.name + "': 'weight' must be positive", "invalid_value");
    if (const Json* body = r.Find("body")) q.body = body->is_string() ? body->as_string() : body->Dump();
    if (const Json* texts = r.Find("texts"); texts != nullptr && texts->is_string()) {
      std::string file = texts->as_string();
      if (!file.empty() && file[0] != '/') file = base_dir + "/" + file;
      const Json* field = r.Find("field");
      CTX_ASSIGN_OR_RETURN(q.texts,
                           ReadTexts(file, field != nullptr && field->is_string() ? field->as_string() : "text"));
    }
    if (const Json* h = r.Find("headers"); h != nullptr && h->is_object()) {
      for (const auto& [name, value] : h->as_object()) {
        if (!value.is_string())
          return InvalidArgument("request '" + q.name + "': header values are strings", "invalid_value");
        q.headers.emplace_back(name, value.as_string());
      }
    }
    if (q.body.find("{{text}}") != std::string::npos && q.texts.empty()) {
      return InvalidArgument("request '" + q.name + "' uses {{text}} but names no 'texts' file", "missing_field");
    }
    s.requests.push_back(std::move(q));
  }
  if (const Json* p = j.Find("profile"); p != nullptr && p->is_string()) s.profile = p->as_string();
  if (s.profile != "baseline" && s.profile != "stress" && s.profile != "soak") {
    return InvalidArgument("'profile' must be baseline, stress or soak", "invalid_value");
  }
  if (const Json* st = j.Find("stress"); st != nullptr && st->is_object()) {
    s.start_rate = Number(*st, "start_rate", s.start_rate);
    s.step = Number(*st, "step", s.step);
    s.step_seconds = Number(*st, "step_seconds", s.step_seconds);
    s.slo_p99_ms = Number(*st, "slo_p99_ms", s.slo_p99_ms);
    s.max_error_rate = Number(*st, "max_error_rate", s.max_error_rate);
    s.saturation_error_rate = Number(*st, "saturation_error_rate", s.saturation_error_rate);
    s.max_steps = static_cast<int>(Number(*st, "max_steps", s.max_steps));
    s.patience = static_cast<int>(Number(*st, "patience", s.patience));
    if (s.step <= 1 || s.start_rate <= 0 || s.step_seconds <= 0 || s.max_steps < 1 || s.patience < 1) {
      return InvalidArgument("'stress' needs start_rate > 0, step > 1, step_seconds > 0, max_steps >= 1, patience >= 1",
                             "invalid_value");
    }
    if (s.max_error_rate < 0 || s.saturation_error_rate < s.max_error_rate || s.saturation_error_rate > 1) {
      return InvalidArgument("'stress' needs 0 <= max_error_rate <= saturation_error_rate <= 1", "invalid_value");
    }
  }
  if (const Json* so = j.Find("soak"); so != nullptr && so->is_object()) {
    s.soak_rate = Number(*so, "rate", s.soak_rate);
    s.soak_seconds = Number(*so, "seconds", s.soak_seconds);
    s.sample_s = Number(*so, "sample_seconds", s.sample_s);
  }
  if (const Json* stages = j.Find("stages"); stages != nullptr && stages->is_array()) {
    for (const Json& st : stages->as_array()) {
      LoadStage stage;
      stage.name = st.Find("name") != nullptr && st.Find("name")->is_string()
                       ? st.Find("name")->as_string()
                       : "stage" + std::to_string(s.stages.size());
      stage.rate_to = Number(st, "rate", 0);
      stage.rate_from = Number(st, "ramp_from", stage.rate_to);
      stage.seconds = Number(st, "seconds", 0);
      if (stage.rate_to <= 0 || stage.seconds <= 0 || stage.rate_from < 0) {
        return InvalidArgument("stage '" + stage.name + "' needs a positive 'rate' and 'seconds'", "invalid_value");
      }
      s.stages.push_back(stage);
    }
  }
  if (s.profile == "baseline" && s.stages.empty()) {
    return InvalidArgument("a baseline scenario needs 'stages'", "missing_field");
  }
  return s;
}

namespace {

struct Sample {
  int64_t due_ns = 0;
  int64_t latency_us = 0;
  int status = 0;  // 0: no reply (connection failed, timed out); -1: dropped by the client
  int stage = 0;
};

// The scenario's keep-alive connections, all driven by one thread and kept across Drive
// calls (a stress run's steps do not pay connection set-up again).
using Connections = std::unique_ptr<HttpMultiClient>;

Connections Connect(const Scenario& s, const std::string& host, int port) {
  auto out = std::make_unique<HttpMultiClient>(host, port, s.connections, s.timeout_ms);
  // Connected before the schedule starts: set-up is not the server's latency.
  (void)out->Connect("/healthz");
  return out;
}

// Sends `stages` open-loop: each request is handed to the connections when it is due,
// and waits there only for a free connection. Every scheduled request comes back as a
// sample, its latency counted from when it was due.
std::vector<Sample> Drive(const Scenario& s, Connections& connections, const std::vector<LoadStage>& stages,
                          int64_t* t0_out) {
  // Written by the connections' thread only; read after Drain().
  std::vector<Sample> done;
  // Pre-rendered bodies per request kind (split at the text placeholder).
  std::vector<std::pair<std::string, std::string>> parts;
  std::vector<bool> templated;
  for (const LoadRequest& r : s.requests) {
    const size_t at = r.body.find("{{text}}");
    templated.push_back(at != std::string::npos);
    parts.emplace_back(r.body.substr(0, at), at == std::string::npos ? "" : r.body.substr(at + 8));
  }
  // The schedule: arrivals at the stage's (ramped) rate, whatever the replies do.
  std::vector<double> cumulative;
  double total_weight = 0;
  for (const LoadRequest& r : s.requests) cumulative.push_back(total_weight += r.weight);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> pick(0, total_weight);
  std::vector<size_t> next_text(s.requests.size(), 0);
  size_t next_key = 0;
  std::vector<Sample> dropped;
  const int64_t t0 = NowNs() + 10'000'000;
  *t0_out = t0;
  int64_t stage_start = t0;
  constexpr size_t kMaxQueued = 200000;  // past it the client itself is the bottleneck
  for (size_t si = 0; si < stages.size(); ++si) {
    const LoadStage& st = stages[si];
    double offset = 0;
    while (offset < st.seconds) {
      const double rate = st.rate_from + (st.rate_to - st.rate_from) * offset / st.seconds;
      if (rate <= 0) {
        offset += 0.001;
        continue;
      }
      const int64_t due = stage_start + static_cast<int64_t>(offset * 1e9);
      const int64_t wait = due - NowNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
      offset += 1.0 / rate;
      const int stage = static_cast<int>(si);
      if (connections->pending() >= kMaxQueued) {
        dropped.push_back(Sample{due, 0, -1, stage});
        continue;
      }
      const double x = pick(rng);
      const size_t kind =
          std::min(static_cast<size_t>(std::lower_bound(cumulative.begin(), cumulative.end(), x) - cumulative.begin()),
                   s.requests.size() - 1);
      const LoadRequest& r = s.requests[kind];
      MultiRequest request{r.method, r.path, r.body, {{"Content-Type", "application/json"}}};
      if (templated[kind]) {
        std::string quoted;
        AppendJsonString(r.texts[next_text[kind]++ % r.texts.size()], &quoted);
        // The placeholder sits inside a JSON string: the text goes in without its quotes.
        request.body = parts[kind].first + quoted.substr(1, quoted.size() - 2) + parts[kind].second;
      }
      request.headers.insert(request.headers.end(), r.headers.begin(), r.headers.end());
      if (!s.keys.empty())
        request.headers.emplace_back("Authorization", "Bearer " + s.keys[next_key++ % s.keys.size()]);
      connections->Submit(std::move(request), [&done, due, stage](int status) {
        done.push_back(Sample{due, (NowNs() - due) / 1000, status, stage});
      });
    }
    stage_start += static_cast<int64_t>(st.seconds * 1e9);
  }
  connections->Drain();
  done.insert(done.end(), dropped.begin(), dropped.end());
  return done;
}

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]) / 1000.0;  // ms
}

Json Latencies(std::vector<int64_t> us) {
  Json j = Json::MakeObject();
  j["count"] = static_cast<int64_t>(us.size());
  for (const auto& [name, p] :
       {std::pair{"p50_ms", 0.5}, std::pair{"p90_ms", 0.9}, std::pair{"p99_ms", 0.99}, std::pair{"p999_ms", 0.999}}) {
    j[name] = Percentile(us, p);
  }
  j["max_ms"] = us.empty() ? 0.0 : static_cast<double>(*std::max_element(us.begin(), us.end())) / 1000.0;
  return j;
}

// One stage's figures.
Json StageJson(const LoadStage& st, const std::vector<Sample>& samples, int index) {
  std::map<std::string, int64_t> statuses;
  std::vector<int64_t> all, admitted, rejected;
  for (const Sample& s : samples) {
    if (s.stage != index) continue;
    const std::string key = s.status == -1  ? "dropped_by_client"
                            : s.status == 0 ? "no_reply"
                                            : std::to_string(s.status);
    ++statuses[key];
    if (s.status <= 0) continue;
    all.push_back(s.latency_us);
    if (s.status < 300) admitted.push_back(s.latency_us);
    if (s.status == 429 || s.status == 503) rejected.push_back(s.latency_us);
  }
  int64_t sent = 0;
  for (const auto& [k, n] : statuses) sent += n;
  Json j = Json::MakeObject();
  j["name"] = st.name;
  j["offered_rate"] = st.rate_to;
  if (st.rate_from != st.rate_to) j["ramp_from"] = st.rate_from;
  j["seconds"] = st.seconds;
  j["requests"] = sent;
  j["throughput"] = static_cast<double>(all.size()) / st.seconds;
  j["goodput"] = static_cast<double>(admitted.size()) / st.seconds;
  Json codes = Json::MakeObject();
  for (const auto& [k, n] : statuses) codes[k] = n;
  j["statuses"] = std::move(codes);
  j["latency"] = Latencies(all);
  j["latency_admitted"] = Latencies(admitted);
  j["latency_rejected"] = Latencies(rejected);
  return j;
}

}  // namespace

StressReading ReadStress(const Scenario& s, const std::vector<StressStep>& steps) {
  StressReading r;
  bool broken = false;
  int stalled = 0;  // steps in a row past the p99 objective or saturated
  for (const StressStep& x : steps) {
    if (x.Fast(s)) r.capacity = std::max(r.capacity, x.goodput);
    broken = broken || !x.Held(s);
    if (!broken) r.knee_rate = x.rate;
    stalled = x.Fast(s) && x.error_rate <= s.saturation_error_rate ? 0 : stalled + 1;
  }
  r.go_on = stalled < s.patience;
  return r;
}

StatusOr<LoadReport> RunLoadTest(const Scenario& s) {
  std::string host;
  int port = 0;
  CTX_RETURN_IF_ERROR(ParseUrl(s.url, &host, &port));
  LoadReport report;
  Json& out = report.json;
  out = Json::MakeObject();
  out["url"] = s.url;
  out["profile"] = s.profile;
  out["connections"] = s.connections;
  Connections connections = Connect(s, host, port);
  std::vector<LoadStage> ran;
  std::vector<Sample> samples;
  int64_t t0 = 0;
  Json memory = Json::MakeArray();
  if (s.profile == "stress") {
    // Step the rate up until p99 breaks or the server saturates (ReadStress).
    Json steps = Json::MakeArray();
    std::vector<StressStep> read;
    StressReading reading;
    double rate = s.start_rate;
    for (int i = 0; i < s.max_steps && reading.go_on; ++i, rate *= s.step) {
      LoadStage st{"step" + std::to_string(i), rate, rate, s.step_seconds};
      int64_t step_t0 = 0;
      std::vector<Sample> got = Drive(s, connections, {st}, &step_t0);
      Json step = StageJson(st, got, 0);
      if (i == 0) t0 = step_t0;
      // Into the run's timeline: this step's stage, seconds after the ones before.
      for (Sample& x : got) {
        x.stage = static_cast<int>(ran.size());
        x.due_ns = x.due_ns - step_t0 + t0 + static_cast<int64_t>(i * s.step_seconds * 1e9);
      }
      samples.insert(samples.end(), got.begin(), got.end());
      ran.push_back(st);
      StressStep& x = read.emplace_back();
      x.rate = rate;
      x.goodput = step["goodput"].as_double();
      x.p99_ms = step["latency"]["p99_ms"].as_double();
      x.error_rate = 1.0 - x.goodput * st.seconds / std::max(1.0, static_cast<double>(step["requests"].as_int()));
      step["held"] = x.Held(s);
      steps.push_back(std::move(step));
      reading = ReadStress(s, read);
    }
    out["knee_rate"] = reading.knee_rate;
    out["capacity_rps"] = reading.capacity;
    out["slo_p99_ms"] = s.slo_p99_ms;
    out["max_error_rate"] = s.max_error_rate;
    out["saturation_error_rate"] = s.saturation_error_rate;
    out["steps"] = std::move(steps);
  } else {
    ran = s.profile == "soak" ? std::vector<LoadStage>{{"soak", s.soak_rate, s.soak_rate, s.soak_seconds}} : s.stages;
    std::atomic<bool> running{true};
    std::thread sampler;
    if (s.profile == "soak") {
      // The server's resident memory from /metrics, every sample_s.
      sampler = std::thread([&] {
        HttpClient client(host, port);
        client.set_timeout_ms(5000);
        const int64_t start = NowNs();
        while (running.load()) {
          if (auto m = client.Get("/metrics"); m.ok()) {
            const size_t at = m->body.find("\nprocess_resident_memory_bytes ");
            if (at != std::string::npos) {
              Json point = Json::MakeObject();
              point["t_s"] = static_cast<double>(NowNs() - start) / 1e9;
              point["rss_bytes"] = static_cast<int64_t>(std::strtoll(m->body.c_str() + at + 31, nullptr, 10));
              memory.push_back(std::move(point));
            }
          }
          for (int i = 0; i < static_cast<int>(s.sample_s * 10) && running.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      });
    }
    samples = Drive(s, connections, ran, &t0);
    running = false;
    if (sampler.joinable()) sampler.join();
    Json stages = Json::MakeArray();
    for (size_t i = 0; i < ran.size(); ++i) stages.push_back(StageJson(ran[i], samples, static_cast<int>(i)));
    out["stages"] = std::move(stages);
    if (s.profile == "soak") out["memory"] = std::move(memory);
  }
  // Per second, by when requests were due.
  double seconds = 0;
  for (const LoadStage& st : ran) seconds += st.seconds;
  const size_t n = static_cast<size_t>(std::ceil(seconds));
  std::vector<std::vector<int64_t>> lat(n);
  std::vector<std::array<double, 5>> series(n, std::array<double, 5>{0, 0, 0, 0, 0});
  for (const Sample& x : samples) {
    const int64_t sec = (x.due_ns - t0) / 1'000'000'000;
    if (sec < 0 || static_cast<size_t>(sec) >= n) continue;
    auto& row = series[static_cast<size_t>(sec)];
    row[0] += 1;
    if (x.status >= 200 && x.status < 300)
      row[1] += 1;
    else
      row[2] += 1;
    if (x.status > 0) lat[static_cast<size_t>(sec)].push_back(x.latency_us);
  }
  Json per_second = Json::MakeArray();
  for (size_t i = 0; i < n; ++i) {
    series[i][3] = Percentile(lat[i], 0.5);
    series[i][4] = Percentile(lat[i], 0.99);
    Json p = Json::Array{series[i][0], series[i][1], series[i][2], series[i][3], series[i][4]};
    per_second.push_back(std::move(p));
  }
  out["per_second_columns"] = Json(Json::Array{"offered", "ok", "errors", "p50_ms", "p99_ms"});
  out["per_second"] = std::move(per_second);
  report.series = std::move(series);
  return report;
}

}  // namespace contextd
