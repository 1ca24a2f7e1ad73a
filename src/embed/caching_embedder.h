// CachingEmbedder: computes each distinct text once. In front of any embedder:
//
//   L1 (in-process LRU) -> each CacheTier in order (L2 RocksDB, L3 Redis) -> single-flight
//   -> the inner embedder (usually a BatchingEmbedder over a provider)
//
// A hit in a lower tier is copied into the tiers above it; a computed vector goes into
// every tier. Repeats inside one call are computed once, and a text already being computed
// for another caller is waited for rather than computed again (single-flight). Keys are
// MakeEmbedKey(model, text), so two models never share entries.
//
// Metrics: contextd_embed_cache_requests_total{model,tier,result} per tier (l1, l2, l3),
// and contextd_embed_computed_total{model} for texts the inner embedder computed.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/mutex.h"
#include "embed/embedder.h"
#include "embed/embedding_cache.h"

namespace contextd {

class CachingEmbedder final : public Embedder {
 public:
  // l1 may be null (no in-process tier); tiers are tried in order after it.
  CachingEmbedder(std::shared_ptr<const Embedder> inner, std::shared_ptr<L1Cache> l1,
                  std::vector<std::shared_ptr<CacheTier>> tiers, MetricsRegistry* metrics);

  std::string model() const override { return model_; }
  bool waits() const override { return inner_->waits(); }
  int dim() const override { return inner_->dim(); }
  bool truncatable() const override { return inner_->truncatable(); }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override;
  Status EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options, float* out) const override;

  const std::shared_ptr<const Embedder>& inner() const { return inner_; }
  uint64_t computed() const { return computed_->value(); }

 private:
  struct Flight {
    Mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
    std::vector<float> vec;
  };
  struct TierCounters {
    Counter* hit;
    Counter* miss;
  };

  std::shared_ptr<const Embedder> inner_;
  const std::string model_;  // inner_->model(), built once: it is part of every key
  std::shared_ptr<L1Cache> l1_;
  std::vector<std::shared_ptr<CacheTier>> tiers_;
  std::vector<TierCounters> counters_;  // [0] = l1, then one per tier
  Counter* computed_;
  std::unique_ptr<Counter> own_computed_;  // when there is no registry

  mutable Mutex flights_mu_;
  mutable std::unordered_map<EmbedKey, std::shared_ptr<Flight>, EmbedKeyHash> flights_ GUARDED_BY(flights_mu_);
};

}  // namespace contextd
