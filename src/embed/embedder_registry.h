// EmbedderRegistry: resolves the embedder names collections and /v1/embeddings use to
// embedder instances, loading model files and building provider pools once.
//
//   "glove"          GloVe SIF average, in-process; the feature-hashing fallback when its
//                    vectors are missing (logged at start-up and reported by model(), so
//                    nobody mistakes it for GloVe)
//   "hash"           feature hashing, in-process
//   "native:ORG/NAME" a BERT-family sentence-transformers model run in-process (encoder/),
//                    from MODELS_DIR/ORG/NAME or, when the name is an absolute path, that
//                    directory; loaded on first use, behind the cache and the batcher
//   "provider:NAME"  a remote provider pool from the server config, behind the embedding
//                    service: CachingEmbedder(L1, L2, L3) -> BatchingEmbedder -> RemoteEmbedder
//
// In-process embedders are not cached: computing a GloVe vector costs about what a cache
// lookup does.
//
// Thread safety: immutable after construction; safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "embed/batcher.h"
#include "embed/embedder.h"
#include "embed/embedder_catalog.h"
#include "embed/embedding_cache.h"
#include "embed/redis_tier.h"
#include "embed/remote_embedder.h"

namespace contextd {

// Per-model settings of native models, from the config's "embedding":{"native":{NAME:{..}}}.
struct NativeModelOptions {
  bool int8 = false;                          // "quantize": "int8" | "none"
  std::optional<std::string> query_prefix;    // default: "query: " for e5 models, else none
  std::optional<std::string> passage_prefix;  // default: "passage: " for e5 models
};

struct EmbedServiceOptions {
  size_t l1_bytes = 256ull << 20;
  int64_t l1_ttl_ms = 24 * 3600 * 1000;
  int64_t l2_ttl_s = 30 * 24 * 3600;  // used by whoever opens the L2 tier
  bool l2 = true;
  std::optional<RedisTierOptions> redis;  // L3, off unless configured
  BatcherOptions batch;
  std::vector<ProviderOptions> providers;
  std::map<std::string, NativeModelOptions> native;

  // From the server config's "embedding" object: {"cache":{"l1_bytes","l1_ttl_ms",
  // "l2":bool,"l2_ttl_s","redis":{"host","port","ttl_s","timeout_ms"}},
  // "batch":{"max_wait_us","max_batch_size","max_batch_tokens","max_queue","workers"},
  // "providers":{NAME:{...ProviderOptions::FromJson}}}.
  static StatusOr<EmbedServiceOptions> FromJson(const Json& j);
};

class EmbedderRegistry : public EmbedderCatalog {
 public:
  // models_dir: where scripts/setup put the converted vectors (models/glove/...).
  explicit EmbedderRegistry(const std::string& models_dir);
  // With the embedding service: providers and cache tiers. `l2` may be null; metrics may
  // be null. Fails when a provider cannot be set up (a bad URL).
  static StatusOr<std::unique_ptr<EmbedderRegistry>> Create(const std::string& models_dir,
                                                            const EmbedServiceOptions& options,
                                                            std::shared_ptr<CacheTier> l2, MetricsRegistry* metrics,
                                                            const Clock* clock);
  ~EmbedderRegistry() override;

  // The embedder for a collection's "embedder" setting. InvalidArgument for unknown names.
  StatusOr<std::shared_ptr<const Embedder>> Resolve(const std::string& name) const override;
  // The embedder that produced vectors of `model`, if it is loaded here.
  std::shared_ptr<const Embedder> ByModel(const std::string& model) const override;

  // Every name Resolve() accepts without loading anything (native models once loaded),
  // with its embedder, in name order: what GET /v1/models lists.
  std::vector<std::pair<std::string, std::shared_ptr<const Embedder>>> List() const override;

  static std::string GlovePath(const std::string& models_dir);
  // What /v1/embeddings and /embed use when the request names no model: the first
  // configured provider, else "glove".
  const std::string& default_name() const override { return default_name_; }

 private:
  void AddBuiltins(const std::string& models_dir);
  void RenderMetrics(std::string* out) const;

  std::map<std::string, std::shared_ptr<const Embedder>> by_name_;
  std::map<std::string, std::shared_ptr<const Embedder>> by_model_;
  std::vector<std::shared_ptr<const RemoteEmbedder>> providers_;
  std::string default_name_ = "glove";
  // Native models load on first use (a model is hundreds of MB; most servers use one).
  StatusOr<std::shared_ptr<const Embedder>> LoadNative(const std::string& spec) const;
  std::string models_dir_;
  EmbedServiceOptions options_;
  std::shared_ptr<L1Cache> l1_;
  std::vector<std::shared_ptr<CacheTier>> tiers_;
  mutable Mutex native_mu_;
  mutable std::map<std::string, std::shared_ptr<const Embedder>> native_
      GUARDED_BY(native_mu_);  // by spec and by model id
  MetricsRegistry* metrics_ = nullptr;
  int collector_id_ = -1;
};

}  // namespace contextd
