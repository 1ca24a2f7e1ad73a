// RemoteEmbedder: an embedding provider reached over HTTP, as a named pool of replica URLs
// that all serve the same model. Speaks the OpenAI (POST /v1/embeddings), Hugging Face
// TEI (POST /embed) and Ollama (POST /api/embed) protocols.
//
// Per request: the replica with the fewest outstanding requests among those whose circuit
// breaker admits one (a replica that just failed this request is avoided while another is
// available); each attempt is limited to min(attempt timeout, time left before the
// request's deadline); failures (transport errors, timeouts, 5xx, 429, malformed or
// wrong-sized answers) are retried with exponential backoff and full jitter, or after the
// replica's Retry-After when it sent one. When no replica admits requests the caller gets
// Unavailable at once instead of waiting. A background thread probes every replica
// (active health check) so a recovered replica closes its breaker without a user request
// having to be the probe.
//
// Vectors are L2-normalised on receipt, as Embedder promises.
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/mutex.h"
#include "common/status.h"
#include "embed/circuit_breaker.h"
#include "embed/embedder.h"

namespace contextd {

class HttpClient;

enum class ProviderProtocol { kOpenAI, kTei, kOllama };

struct ProviderOptions {
  std::string name;  // how collections refer to it: "provider:NAME"
  ProviderProtocol protocol = ProviderProtocol::kOpenAI;
  std::vector<std::string> urls;  // http://host:port of each replica
  std::string model;              // sent to OpenAI and Ollama; part of the cache identity
  int dim = 0;
  std::string api_key;  // sent as "Authorization: Bearer ..." when set
  // The model was trained so that vector prefixes are embeddings too (text-embedding-3,
  // nomic-embed v1.5): /v1/embeddings may then answer a smaller "dimensions".
  bool matryoshka = false;
  int64_t attempt_timeout_ms = 2000;
  int64_t request_timeout_ms = 10000;  // overall, when the caller gives no deadline
  int max_attempts = 4;
  int64_t backoff_base_ms = 10;
  int64_t backoff_max_ms = 1000;
  int64_t health_interval_ms = 1000;  // 0 = no active health checks
  BreakerOptions breaker;

  // From the server config: {"protocol":"openai"|"tei"|"ollama","urls":[..],"model":..,
  // "dim":N, optional "api_key", "matryoshka", "attempt_timeout_ms", "request_timeout_ms",
  // "max_attempts", "backoff_base_ms", "backoff_max_ms", "health_interval_ms",
  // "breaker":{"consecutive_failures","failure_ratio","window","cooldown_ms"}}.
  static StatusOr<ProviderOptions> FromJson(const std::string& name, const Json& j);
};

class RemoteEmbedder final : public Embedder {
 public:
  struct ReplicaState {
    std::string url;
    CircuitBreaker::State state;
    int outstanding;
  };

  static StatusOr<std::unique_ptr<RemoteEmbedder>> Create(ProviderOptions options, const Clock* clock);
  ~RemoteEmbedder() override;

  std::string model() const override { return "provider:" + options_.name + "/" + options_.model; }
  bool waits() const override { return true; }
  int dim() const override { return options_.dim; }
  bool truncatable() const override { return options_.matryoshka; }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override;
  Status EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options, float* out) const override;

  const ProviderOptions& options() const { return options_; }
  std::vector<ReplicaState> replicas() const;
  uint64_t attempts() const { return attempts_.load(); }
  uint64_t retries() const { return retries_.load(); }

 private:
  struct Replica;
  RemoteEmbedder(ProviderOptions options, const Clock* clock);
  // One HTTP exchange with one replica. *retry_after_ms is set from a Retry-After header.
  Status Attempt(Replica* r, const std::vector<std::string_view>& texts, const std::string& traceparent,
                 int64_t timeout_ms, float* out, int64_t* retry_after_ms) const;
  Replica* Pick(const std::vector<Replica*>& avoid) const;
  void HealthLoop();

  const ProviderOptions options_;
  const Clock* clock_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  mutable std::atomic<uint64_t> attempts_{0};
  mutable std::atomic<uint64_t> retries_{0};

  Mutex health_mu_;
  std::condition_variable health_cv_;
  bool stopping_ GUARDED_BY(health_mu_) = false;
  std::thread health_thread_;
};

}  // namespace contextd
