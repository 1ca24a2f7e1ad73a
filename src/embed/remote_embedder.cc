#include "embed/remote_embedder.h"

#include <strings.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "net/http_client.h"

namespace contextd {

struct RemoteEmbedder::Replica {
  std::string url;
  std::string host;
  int port = 0;
  CircuitBreaker breaker;
  std::atomic<int> outstanding{0};
  Mutex mu;
  std::vector<std::unique_ptr<HttpClient>> idle;  // kept-alive connections

  Replica(std::string u, BreakerOptions b, const Clock* clock) : url(std::move(u)), breaker(b, clock) {}

  std::unique_ptr<HttpClient> Take() {
    MutexLock lock(&mu);
    if (idle.empty()) return std::make_unique<HttpClient>(host, port);
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }
  void Give(std::unique_ptr<HttpClient> c) {
    MutexLock lock(&mu);
    if (idle.size() < 64) idle.push_back(std::move(c));
  }
};

namespace {

// The rows of a provider's answer, whatever the protocol.
StatusOr<std::vector<const Json*>> Rows(ProviderProtocol protocol, const Json& body) {
  std::vector<const Json*> rows;
  if (protocol == ProviderProtocol::kTei) {
    if (!body.is_array()) return InvalidArgument("TEI answer is not an array");
    for (const Json& r : body.as_array()) rows.push_back(&r);
    return rows;
  }
  if (protocol == ProviderProtocol::kOllama) {
    const Json* e = body.Find("embeddings");
    if (e == nullptr || !e->is_array()) return InvalidArgument("Ollama answer has no embeddings array");
    for (const Json& r : e->as_array()) rows.push_back(&r);
    return rows;
  }
  const Json* data = body.Find("data");
  if (data == nullptr || !data->is_array()) return InvalidArgument("OpenAI answer has no data array");
  rows.assign(data->as_array().size(), nullptr);
  for (size_t i = 0; i < data->as_array().size(); ++i) {
    const Json& item = data->as_array()[i];
    const Json* index = item.Find("index");
    const size_t at = index != nullptr && index->is_number() ? static_cast<size_t>(index->as_int()) : i;
    if (at >= rows.size() || rows[at] != nullptr) return InvalidArgument("OpenAI answer has bad indexes");
    rows[at] = item.Find("embedding");
    if (rows[at] == nullptr) return InvalidArgument("OpenAI answer item has no embedding");
  }
  return rows;
}

}  // namespace

StatusOr<ProviderOptions> ProviderOptions::FromJson(const std::string& name, const Json& j) {
  const std::string where = "provider '" + name + "'";
  if (!j.is_object()) return InvalidArgument(where + " must be an object");
  ProviderOptions o;
  o.name = name;
  for (const auto& [k, v] : j.as_object()) {
    if (k == "protocol" && v.is_string()) {
      const std::string& p = v.as_string();
      if (p == "openai") {
        o.protocol = ProviderProtocol::kOpenAI;
      } else if (p == "tei") {
        o.protocol = ProviderProtocol::kTei;
      } else if (p == "ollama") {
        o.protocol = ProviderProtocol::kOllama;
      } else {
        return InvalidArgument(where + ": protocol must be openai, tei or ollama");
      }
    } else if (k == "urls" && v.is_array()) {
      for (const Json& u : v.as_array()) {
        if (!u.is_string()) return InvalidArgument(where + ": urls must be strings");
        o.urls.push_back(u.as_string());
      }
    } else if (k == "model" && v.is_string()) {
      o.model = v.as_string();
    } else if (k == "api_key" && v.is_string()) {
      o.api_key = v.as_string();
    } else if (k == "matryoshka" && v.is_bool()) {
      o.matryoshka = v.as_bool();
    } else if (k == "dim") {
      int64_t d = 0;
      CTX_RETURN_IF_ERROR(ReadWholeNumber(v, where + ": dim", 1, 65536, &d));
      o.dim = static_cast<int>(d);
    } else if (k == "attempt_timeout_ms") {
      CTX_RETURN_IF_ERROR(ReadNumberAtLeast(v, where + ": " + k, 1, &o.attempt_timeout_ms));
    } else if (k == "request_timeout_ms") {
      CTX_RETURN_IF_ERROR(ReadNumberAtLeast(v, where + ": " + k, 1, &o.request_timeout_ms));
    } else if (k == "max_attempts") {
      int64_t n = 0;
      CTX_RETURN_IF_ERROR(ReadWholeNumber(v, where + ": " + k, 1, 100, &n));
      o.max_attempts = static_cast<int>(n);
    } else if (k == "backoff_base_ms") {
      CTX_RETURN_IF_ERROR(ReadNumberAtLeast(v, where + ": " + k, 0, &o.backoff_base_ms));
    } else if (k == "backoff_max_ms") {
      CTX_RETURN_IF_ERROR(ReadNumberAtLeast(v, where + ": " + k, 0, &o.backoff_max_ms));
    } else if (k == "health_interval_ms") {
      CTX_RETURN_IF_ERROR(ReadNumberAtLeast(v, where + ": " + k, 0, &o.health_interval_ms));
    } else if (k == "breaker" && v.is_object()) {
      for (const auto& [bk, bv] : v.as_object()) {
        int64_t n = 0;
        if (bk == "failure_ratio" && bv.is_number() && bv.as_double() > 0 && bv.as_double() <= 1) {
          o.breaker.failure_ratio = bv.as_double();
        } else if (bk == "consecutive_failures" || bk == "window") {
          CTX_RETURN_IF_ERROR(ReadWholeNumber(bv, where + ": breaker." + bk, 1, 1000000, &n));
          (bk == "window" ? o.breaker.window : o.breaker.consecutive_failures) = static_cast<int>(n);
        } else if (bk == "cooldown_ms") {
          CTX_RETURN_IF_ERROR(ReadNumberAtLeast(bv, where + ": breaker." + bk, 0, &o.breaker.cooldown_ms));
        } else {
          return InvalidArgument(where + ": unknown or mistyped breaker key '" + bk + "'");
        }
      }
    } else {
      return InvalidArgument(where + ": unknown or mistyped key '" + k + "'");
    }
  }
  if (o.urls.empty()) return InvalidArgument(where + " needs at least one url");
  if (o.dim <= 0) return InvalidArgument(where + " needs \"dim\", the model's vector size");
  return o;
}

RemoteEmbedder::RemoteEmbedder(ProviderOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

StatusOr<std::unique_ptr<RemoteEmbedder>> RemoteEmbedder::Create(ProviderOptions options, const Clock* clock) {
  std::unique_ptr<RemoteEmbedder> e(new RemoteEmbedder(std::move(options), clock));
  for (const std::string& url : e->options_.urls) {
    auto r = std::make_unique<Replica>(url, e->options_.breaker, clock);
    CTX_RETURN_IF_ERROR(ParseUrl(url, &r->host, &r->port));
    e->replicas_.push_back(std::move(r));
  }
  if (e->options_.health_interval_ms > 0) e->health_thread_ = std::thread([p = e.get()] { p->HealthLoop(); });
  return e;
}

RemoteEmbedder::~RemoteEmbedder() {
  {
    MutexLock lock(&health_mu_);
    stopping_ = true;
  }
  health_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
}

std::vector<RemoteEmbedder::ReplicaState> RemoteEmbedder::replicas() const {
  std::vector<ReplicaState> out;
  for (const auto& r : replicas_) out.push_back({r->url, r->breaker.state(), r->outstanding.load()});
  return out;
}

RemoteEmbedder::Replica* RemoteEmbedder::Pick(const std::vector<Replica*>& avoid) const {
  // Least outstanding among admitted replicas, preferring ones this request has not
  // failed on. The breaker's Allow() is claimed only for the chosen one, since in the
  // half-open state it hands out the single probe.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<Replica*> order;
    for (const auto& r : replicas_) {
      if (pass == 0 && std::find(avoid.begin(), avoid.end(), r.get()) != avoid.end()) continue;
      if (r->breaker.WouldAllow()) order.push_back(r.get());
    }
    std::sort(order.begin(), order.end(),
              [](const Replica* a, const Replica* b) { return a->outstanding.load() < b->outstanding.load(); });
    for (Replica* r : order) {
      if (r->breaker.Allow()) return r;
    }
  }
  return nullptr;
}

Status RemoteEmbedder::Attempt(Replica* r, const std::vector<std::string_view>& texts, const std::string& traceparent,
                               int64_t timeout_ms, float* out, int64_t* retry_after_ms) const {
  std::string body;
  const char* path = "/v1/embeddings";
  {
    Json req = Json::MakeObject();
    Json input = Json::MakeArray();
    for (auto t : texts) input.push_back(Json(t));
    if (options_.protocol == ProviderProtocol::kTei) {
      path = "/embed";
      req["inputs"] = std::move(input);
    } else {
      if (options_.protocol == ProviderProtocol::kOllama) path = "/api/embed";
      req["model"] = options_.model;
      req["input"] = std::move(input);
    }
    body = req.Dump();
  }
  HttpHeaders headers;
  if (!options_.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + options_.api_key);
  if (!traceparent.empty()) headers.emplace_back("traceparent", traceparent);
  auto client = r->Take();
  client->set_timeout_ms(timeout_ms);
  r->outstanding.fetch_add(1);
  auto res = client->Request("POST", path, body, headers);
  r->outstanding.fetch_sub(1);
  const std::string who = "provider '" + options_.name + "' replica " + r->url;
  if (!res.ok()) return Status(res.status().code(), who + ": " + res.status().message(), res.status().reason());
  r->Give(std::move(client));
  if (res->status != 200) {
    const std::string after = res->Header("Retry-After");
    if (!after.empty()) *retry_after_ms = static_cast<int64_t>(std::atof(after.c_str()) * 1000);
    const std::string msg = who + " answered HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
    // A 4xx other than 408/429 is our request's fault: retrying elsewhere cannot help.
    if (res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429) {
      return InvalidArgument(msg, "provider_rejected");
    }
    return Unavailable(msg, "provider_error");
  }
  auto parsed = ParseJson(res->body);
  if (!parsed.ok()) return Unavailable(who + " sent invalid JSON", "provider_error");
  auto rows = Rows(options_.protocol, *parsed);
  if (!rows.ok()) return Unavailable(who + ": " + rows.status().message(), "provider_error");
  if (rows->size() != texts.size()) {
    return Unavailable(who + " returned " + std::to_string(rows->size()) + " embeddings for " +
                           std::to_string(texts.size()) + " inputs",
                       "provider_error");
  }
  const size_t dim = static_cast<size_t>(options_.dim);
  for (size_t i = 0; i < rows->size(); ++i) {
    const Json* row = (*rows)[i];
    if (row == nullptr || !row->is_array() || row->as_array().size() != dim) {
      return Unavailable(who + " returned an embedding of the wrong dimension (expected " + std::to_string(dim) + ")",
                         "provider_bad_dimension");
    }
    double norm = 0;
    float* dst = out + i * dim;
    for (size_t d = 0; d < dim; ++d) {
      const Json& x = row->as_array()[d];
      if (!x.is_number()) return Unavailable(who + " returned a non-numeric embedding", "provider_error");
      dst[d] = static_cast<float>(x.as_double());
      norm += static_cast<double>(dst[d]) * dst[d];
    }
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (size_t d = 0; d < dim; ++d) dst[d] *= inv;
    }
  }
  return Status::Ok();
}

Status RemoteEmbedder::Embed(const std::vector<std::string_view>& texts, float* out) const {
  return EmbedWith(texts, EmbedOptions(), out);
}

Status RemoteEmbedder::EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options,
                                 float* out) const {
  if (texts.empty()) return Status::Ok();
  const int64_t now = clock_->NowNanos();
  int64_t deadline = now + options_.request_timeout_ms * 1000000;
  if (options.deadline_ns > 0) deadline = std::min(deadline, options.deadline_ns);
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::vector<Replica*> failed;
  Status last = Unavailable("provider '" + options_.name + "': no attempt made");
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    const int64_t left_ms = (deadline - clock_->NowNanos()) / 1000000;
    if (left_ms <= 0) {
      return DeadlineExceeded("provider '" + options_.name + "': deadline passed after " + std::to_string(attempt) +
                              " attempts; last error: " + last.message());
    }
    Replica* r = Pick(failed);
    if (r == nullptr) {
      return Unavailable(
          "provider '" + options_.name + "': every replica's circuit breaker is open; last error: " + last.message(),
          "provider_unavailable");
    }
    attempts_.fetch_add(1);
    if (attempt > 0) retries_.fetch_add(1);
    int64_t retry_after_ms = -1;
    Status st =
        Attempt(r, texts, options.traceparent, std::min(options_.attempt_timeout_ms, left_ms), out, &retry_after_ms);
    if (st.ok()) {
      r->breaker.OnSuccess();
      return st;
    }
    if (st.code() == StatusCode::kInvalidArgument) {
      r->breaker.OnSuccess();  // the replica is fine; the request is not
      return st;
    }
    r->breaker.OnFailure();
    failed.push_back(r);
    last = st;
    if (attempt + 1 == options_.max_attempts) break;
    // Full jitter: uniform in [0, min(max, base * 2^attempt)], unless the replica said
    // when to come back. Another replica may be free sooner; Pick() prefers those.
    int64_t wait_ms = retry_after_ms;
    if (wait_ms < 0) {
      const int64_t cap = std::min(options_.backoff_max_ms, options_.backoff_base_ms << std::min(attempt, 20));
      wait_ms = cap > 0 ? std::uniform_int_distribution<int64_t>(0, cap)(rng) : 0;
    }
    if (clock_->NowNanos() + wait_ms * 1000000 >= deadline) {
      return DeadlineExceeded("provider '" + options_.name + "': no time left to retry; last error: " + last.message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
  return Unavailable("provider '" + options_.name + "': " + std::to_string(options_.max_attempts) +
                         " attempts failed; last error: " + last.message(),
                     "provider_unavailable");
}

void RemoteEmbedder::HealthLoop() {
  const std::vector<std::string_view> probe = {"health check"};
  std::vector<float> out(static_cast<size_t>(options_.dim));
  MutexLock lock(&health_mu_);
  while (!stopping_) {
    lock.WaitFor(health_cv_, std::chrono::milliseconds(options_.health_interval_ms));
    if (stopping_) break;
    lock.Unlock();
    for (const auto& r : replicas_) {
      // A closed replica is checked too, so a dead one is found before users hit it; an
      // open one only once its cooldown allows the probe.
      if (r->breaker.state() != CircuitBreaker::State::kClosed && !r->breaker.Allow()) continue;
      int64_t ignored = 0;
      Status st = Attempt(r.get(), probe, "", options_.attempt_timeout_ms, out.data(), &ignored);
      if (st.ok()) {
        r->breaker.OnSuccess();
      } else {
        r->breaker.OnFailure();
      }
    }
    lock.Lock();
  }
}

}  // namespace contextd
