#include "embed/caching_embedder.h"

#include <cstring>

#include "common/clock.h"

namespace contextd {

CachingEmbedder::CachingEmbedder(std::shared_ptr<const Embedder> inner, std::shared_ptr<L1Cache> l1,
                                 std::vector<std::shared_ptr<CacheTier>> tiers, MetricsRegistry* metrics)
    : inner_(std::move(inner)), model_(inner_->model()), l1_(std::move(l1)), tiers_(std::move(tiers)) {
  std::vector<std::string> names = {"l1"};
  for (const auto& t : tiers_) names.push_back(t->name());
  for (const auto& name : names) {
    if (metrics == nullptr) {
      counters_.push_back({nullptr, nullptr});
      continue;
    }
    auto get = [&](const char* result) {
      return metrics->GetCounter("contextd_embed_cache_requests_total", "Embedding cache lookups by tier and result.",
                                 {{"model", model_}, {"tier", name}, {"result", result}});
    };
    counters_.push_back({get("hit"), get("miss")});
  }
  if (metrics != nullptr) {
    computed_ = metrics->GetCounter("contextd_embed_computed_total", "Texts embedded by the model (cache misses).",
                                    {{"model", model_}});
  } else {
    own_computed_ = std::make_unique<Counter>();
    computed_ = own_computed_.get();
  }
}

Status CachingEmbedder::Embed(const std::vector<std::string_view>& texts, float* out) const {
  return EmbedWith(texts, EmbedOptions(), out);
}

Status CachingEmbedder::EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options,
                                  float* out) const {
  const int dim = inner_->dim();
  const size_t d = static_cast<size_t>(dim);
  auto count = [](Counter* c, size_t n) {
    if (c != nullptr && n > 0) c->Increment(n);
  };

  // Distinct keys; `first[i]` is the position that answers text i.
  std::vector<EmbedKey> keys(texts.size());
  std::vector<size_t> first(texts.size());
  std::vector<size_t> unique;
  {
    std::unordered_map<EmbedKey, size_t, EmbedKeyHash> seen;
    for (size_t i = 0; i < texts.size(); ++i) {
      keys[i] = MakeEmbedKey(model_, texts[i]);
      auto [it, inserted] = seen.emplace(keys[i], i);
      first[i] = it->second;
      if (inserted) unique.push_back(i);
    }
  }

  std::vector<size_t> missing;  // positions (in unique) not found yet
  for (size_t i : unique) {
    if (l1_ != nullptr && l1_->Get(keys[i], dim, out + i * d)) continue;
    missing.push_back(i);
  }
  count(counters_[0].hit, unique.size() - missing.size());
  count(counters_[0].miss, missing.size());

  for (size_t t = 0; t < tiers_.size() && !missing.empty(); ++t) {
    std::vector<EmbedKey> ks;
    for (size_t i : missing) ks.push_back(keys[i]);
    std::vector<float> got(ks.size() * d);
    std::vector<bool> hit;
    tiers_[t]->MultiGet(ks, dim, got.data(), &hit);
    std::vector<size_t> still;
    std::vector<EmbedKey> found_keys;
    std::vector<float> found;
    for (size_t j = 0; j < missing.size(); ++j) {
      const size_t i = missing[j];
      if (!hit[j]) {
        still.push_back(i);
        continue;
      }
      std::memcpy(out + i * d, got.data() + j * d, sizeof(float) * d);
      if (l1_ != nullptr) l1_->Put(keys[i], dim, out + i * d);
      found_keys.push_back(keys[i]);
      found.insert(found.end(), got.data() + j * d, got.data() + (j + 1) * d);
    }
    for (size_t u = 0; u < t && !found_keys.empty(); ++u) tiers_[u]->MultiPut(found_keys, dim, found.data());
    count(counters_[t + 1].hit, missing.size() - still.size());
    count(counters_[t + 1].miss, still.size());
    missing.swap(still);
  }

  if (!missing.empty()) {
    // Single-flight: claim the keys nobody is computing; wait for the others.
    std::vector<size_t> mine;
    std::vector<std::shared_ptr<Flight>> my_flights;
    std::vector<std::pair<size_t, std::shared_ptr<Flight>>> theirs;
    {
      MutexLock lock(&flights_mu_);
      for (size_t i : missing) {
        auto [it, inserted] = flights_.try_emplace(keys[i]);
        if (inserted) {
          it->second = std::make_shared<Flight>();
          mine.push_back(i);
          my_flights.push_back(it->second);
        } else {
          theirs.emplace_back(i, it->second);
        }
      }
    }
    Status st = Status::Ok();
    if (!mine.empty()) {
      std::vector<std::string_view> views;
      for (size_t i : mine) views.push_back(texts[i]);
      std::vector<float> computed(mine.size() * d);
      st = inner_->EmbedWith(views, options, computed.data());
      std::vector<EmbedKey> ks;
      if (st.ok()) {
        computed_->Increment(mine.size());
        for (size_t j = 0; j < mine.size(); ++j) {
          std::memcpy(out + mine[j] * d, computed.data() + j * d, sizeof(float) * d);
          if (l1_ != nullptr) l1_->Put(keys[mine[j]], dim, computed.data() + j * d);
          ks.push_back(keys[mine[j]]);
        }
        for (const auto& tier : tiers_) tier->MultiPut(ks, dim, computed.data());
      }
      {
        MutexLock lock(&flights_mu_);
        for (size_t i : mine) flights_.erase(keys[i]);
      }
      for (size_t j = 0; j < mine.size(); ++j) {
        Flight& f = *my_flights[j];
        MutexLock lock(&f.mu);
        f.done = true;
        f.status = st;
        if (st.ok()) f.vec.assign(computed.data() + j * d, computed.data() + (j + 1) * d);
        f.cv.notify_all();
      }
    }
    for (auto& entry : theirs) {
      // Not a structured binding: a lambda below captures it (C++20 allows that; clang 14,
      // which checks thread safety, does not).
      const auto i = entry.first;
      auto& flight = entry.second;
      MutexLock lock(&flight->mu);
      auto done = [&]() NO_THREAD_SAFETY_ANALYSIS { return flight->done; };  // flight->mu held
      if (options.deadline_ns > 0) {
        const int64_t left = options.deadline_ns - SystemClock::Default()->NowNanos();
        if (!lock.WaitFor(flight->cv, std::chrono::nanoseconds(std::max<int64_t>(left, 0)), done)) {
          return DeadlineExceeded("embedding did not finish before the request's deadline");
        }
      } else {
        lock.Wait(flight->cv, done);
      }
      if (!flight->status.ok()) return flight->status;
      std::memcpy(out + i * d, flight->vec.data(), sizeof(float) * d);
    }
    if (!st.ok()) return st;
  }

  for (size_t i = 0; i < texts.size(); ++i) {
    if (first[i] != i) std::memcpy(out + i * d, out + first[i] * d, sizeof(float) * d);
  }
  return Status::Ok();
}

}  // namespace contextd
