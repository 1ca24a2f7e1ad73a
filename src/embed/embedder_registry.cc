#include "embed/embedder_registry.h"

#include <spdlog/spdlog.h>

#include "embed/caching_embedder.h"
#include "embed/glove_embedder.h"
#include "embed/hash_embedder.h"
#include "embed/native_embedder.h"

namespace contextd {
namespace {

Status ReadCount(const Json& v, const std::string& where, int64_t min, int64_t* out, int64_t max = kMaxExactInteger) {
  return ReadWholeNumber(v, "embedding config: " + where, min, max, out);
}

}  // namespace

StatusOr<EmbedServiceOptions> EmbedServiceOptions::FromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("embedding config must be an object");
  EmbedServiceOptions o;
  for (const auto& [k, v] : j.as_object()) {
    if (k == "cache" && v.is_object()) {
      for (const auto& [ck, cv] : v.as_object()) {
        int64_t n = 0;
        if (ck == "l1_bytes") {
          CTX_RETURN_IF_ERROR(ReadCount(cv, "cache.l1_bytes", 0, &n));
          o.l1_bytes = static_cast<size_t>(n);
        } else if (ck == "l1_ttl_ms") {
          CTX_RETURN_IF_ERROR(ReadCount(cv, "cache.l1_ttl_ms", 0, &o.l1_ttl_ms));
        } else if (ck == "l2" && cv.is_bool()) {
          o.l2 = cv.as_bool();
        } else if (ck == "l2_ttl_s") {
          CTX_RETURN_IF_ERROR(ReadCount(cv, "cache.l2_ttl_s", 1, &o.l2_ttl_s));
        } else if (ck == "redis" && cv.is_object()) {
          RedisTierOptions r;
          for (const auto& [rk, rv] : cv.as_object()) {
            if (rk == "host" && rv.is_string()) {
              r.host = rv.as_string();
            } else if (rk == "port") {
              CTX_RETURN_IF_ERROR(ReadCount(rv, "cache.redis.port", 1, &n, 65535));
              r.port = static_cast<int>(n);
            } else if (rk == "ttl_s") {
              CTX_RETURN_IF_ERROR(ReadCount(rv, "cache.redis.ttl_s", 1, &r.ttl_s));
            } else if (rk == "timeout_ms") {
              CTX_RETURN_IF_ERROR(ReadCount(rv, "cache.redis.timeout_ms", 1, &r.timeout_ms));
            } else {
              return InvalidArgument("embedding config: unknown or mistyped key cache.redis." + rk);
            }
          }
          o.redis = r;
        } else {
          return InvalidArgument("embedding config: unknown or mistyped key cache." + ck);
        }
      }
    } else if (k == "batch" && v.is_object()) {
      for (const auto& [bk, bv] : v.as_object()) {
        int64_t n = 0;
        // Workers are threads and a batch is allocated whole: bounded so a typo cannot ask for 1e9.
        const int64_t max = bk == "workers" ? 1024 : bk == "max_batch_size" ? 65536 : kMaxExactInteger;
        CTX_RETURN_IF_ERROR(ReadCount(bv, "batch." + bk, bk == "max_wait_us" ? 0 : 1, &n, max));
        if (bk == "max_wait_us") {
          o.batch.max_wait_us = n;
        } else if (bk == "max_batch_size") {
          o.batch.max_batch_size = static_cast<size_t>(n);
        } else if (bk == "max_batch_tokens") {
          o.batch.max_batch_tokens = static_cast<size_t>(n);
        } else if (bk == "max_queue") {
          o.batch.max_queue = static_cast<size_t>(n);
        } else if (bk == "workers") {
          o.batch.workers = static_cast<int>(n);
        } else {
          return InvalidArgument("embedding config: unknown key batch." + bk);
        }
      }
    } else if (k == "native" && v.is_object()) {
      for (const auto& [name, nv] : v.as_object()) {
        if (!nv.is_object()) return InvalidArgument("embedding config: native." + name + " must be an object");
        NativeModelOptions n;
        for (const auto& [nk, val] : nv.as_object()) {
          if (nk == "quantize" && val.is_string() && (val.as_string() == "int8" || val.as_string() == "none")) {
            n.int8 = val.as_string() == "int8";
          } else if (nk == "query_prefix" && val.is_string()) {
            n.query_prefix = val.as_string();
          } else if (nk == "passage_prefix" && val.is_string()) {
            n.passage_prefix = val.as_string();
          } else {
            return InvalidArgument("embedding config: native." + name + "." + nk +
                                   " is unknown or mistyped (quantize: \"int8\"|\"none\", query_prefix, "
                                   "passage_prefix: strings)");
          }
        }
        o.native[name] = n;
      }
    } else if (k == "providers" && v.is_object()) {
      for (const auto& [name, pv] : v.as_object()) {
        CTX_ASSIGN_OR_RETURN(ProviderOptions p, ProviderOptions::FromJson(name, pv));
        o.providers.push_back(std::move(p));
      }
    } else {
      return InvalidArgument("embedding config: unknown or mistyped key '" + k + "'");
    }
  }
  return o;
}

std::string EmbedderRegistry::GlovePath(const std::string& models_dir) {
  return models_dir + "/glove/glove-6b-100d.i8.bin";
}

EmbedderRegistry::EmbedderRegistry(const std::string& models_dir) : models_dir_(models_dir) { AddBuiltins(models_dir); }

EmbedderRegistry::~EmbedderRegistry() {
  if (metrics_ != nullptr) metrics_->RemoveCollector(collector_id_);
}

void EmbedderRegistry::AddBuiltins(const std::string& models_dir) {
  std::shared_ptr<const Embedder> hash = std::make_shared<HashEmbedder>(256);
  by_model_[hash->model()] = hash;
  auto glove = GloveEmbedder::Open(GlovePath(models_dir));
  if (glove.ok()) {
    spdlog::info("embedder glove: {} words x {} dims from {}", glove.value()->vocab_size(), glove.value()->dim(),
                 GlovePath(models_dir));
    std::shared_ptr<const Embedder> g = std::move(glove).value();
    by_name_["glove"] = g;
    by_model_[g->model()] = g;
  } else {
    spdlog::warn(
        "embedder glove: vectors unavailable ({}); FALLING BACK to feature hashing ({}). "
        "Run scripts/setup to install them.",
        glove.status().message(), hash->model());
    by_name_["glove"] = hash;
  }
  by_name_["hash"] = hash;
}

StatusOr<std::unique_ptr<EmbedderRegistry>> EmbedderRegistry::Create(const std::string& models_dir,
                                                                     const EmbedServiceOptions& options,
                                                                     std::shared_ptr<CacheTier> l2,
                                                                     MetricsRegistry* metrics, const Clock* clock) {
  auto r = std::make_unique<EmbedderRegistry>(models_dir);
  std::vector<std::shared_ptr<CacheTier>> tiers;
  if (l2 != nullptr) tiers.push_back(std::move(l2));
  if (options.redis) {
    tiers.push_back(std::make_shared<RedisTier>(*options.redis));
    spdlog::info("embedding cache L3: redis {}:{}", options.redis->host, options.redis->port);
  }
  auto l1 = options.l1_bytes > 0 ? std::make_shared<L1Cache>(options.l1_bytes, options.l1_ttl_ms, clock) : nullptr;
  r->models_dir_ = models_dir;
  r->options_ = options;
  r->l1_ = l1;
  r->tiers_ = tiers;
  for (const ProviderOptions& p : options.providers) {
    CTX_ASSIGN_OR_RETURN(std::unique_ptr<RemoteEmbedder> remote, RemoteEmbedder::Create(p, clock));
    std::shared_ptr<const RemoteEmbedder> shared = std::move(remote);
    r->providers_.push_back(shared);
    auto batched = std::make_shared<BatchingEmbedder>(shared, options.batch, metrics, "provider:" + p.name);
    auto cached = std::make_shared<CachingEmbedder>(batched, l1, tiers, metrics);
    r->by_name_["provider:" + p.name] = cached;
    r->by_model_[cached->model()] = cached;
    if (r->providers_.size() == 1) r->default_name_ = "provider:" + p.name;
    spdlog::info("embedder provider:{}: {} replicas, model {}, dim {}", p.name, p.urls.size(), p.model, p.dim);
  }
  r->metrics_ = metrics;
  if (metrics != nullptr) {
    EmbedderRegistry* self = r.get();
    r->collector_id_ = metrics->AddCollector([self](std::string* out) { self->RenderMetrics(out); });
  }
  return r;
}

void EmbedderRegistry::RenderMetrics(std::string* out) const {
  if (providers_.empty()) return;
  *out += "# HELP contextd_embed_provider_breaker_state Circuit breaker per replica: 0 closed, 1 open, 2 half-open.\n";
  *out += "# TYPE contextd_embed_provider_breaker_state gauge\n";
  std::string outstanding =
      "# HELP contextd_embed_provider_outstanding Requests in flight per replica.\n"
      "# TYPE contextd_embed_provider_outstanding gauge\n";
  std::string attempts =
      "# HELP contextd_embed_provider_attempts_total HTTP attempts per provider, and how many were retries.\n"
      "# TYPE contextd_embed_provider_attempts_total counter\n";
  for (const auto& p : providers_) {
    const std::string name = p->options().name;
    for (const auto& rep : p->replicas()) {
      const std::string labels = "{provider=\"" + name + "\",replica=\"" + rep.url + "\"} ";
      *out += "contextd_embed_provider_breaker_state" + labels + std::to_string(static_cast<int>(rep.state)) + "\n";
      outstanding += "contextd_embed_provider_outstanding" + labels + std::to_string(rep.outstanding) + "\n";
    }
    attempts += "contextd_embed_provider_attempts_total{provider=\"" + name + "\",kind=\"all\"} " +
                std::to_string(p->attempts()) + "\n";
    attempts += "contextd_embed_provider_attempts_total{provider=\"" + name + "\",kind=\"retry\"} " +
                std::to_string(p->retries()) + "\n";
  }
  *out += outstanding + attempts;
}

StatusOr<std::shared_ptr<const Embedder>> EmbedderRegistry::LoadNative(const std::string& spec) const {
  MutexLock lock(&native_mu_);
  if (auto it = native_.find(spec); it != native_.end()) return it->second;
  if (spec.empty() || spec.find("..") != std::string::npos)
    return InvalidArgument("native model name '" + spec + "' must be ORG/NAME or an absolute directory",
                           "unknown_embedder");
  const std::string dir = spec.front() == '/' ? spec : models_dir_ + "/" + spec;
  NativeModelOptions n;
  if (auto it = options_.native.find(spec); it != options_.native.end()) n = it->second;
  const bool e5 = spec.find("e5") != std::string::npos;
  SentenceEncoderOptions so;
  so.int8 = n.int8;
  auto encoder = SentenceEncoder::Load(dir, so);
  if (!encoder.ok()) {
    return InvalidArgument("native model '" + spec + "' cannot be loaded: " + encoder.status().message() +
                               (spec.front() == '/' ? "" : " (fetch it with: contextd model pull " + spec + ")"),
                           "unknown_embedder");
  }
  const std::string model_id = "native:" + spec + (n.int8 ? "#int8" : "");
  spdlog::info("embedder native:{}: {} dims, {} pooling, max {} tokens, {} ({} MB of weights), GEMMs on {}", spec,
               (*encoder)->dim(), (*encoder)->pooling() == Pooling::kCls ? "CLS" : "mean", (*encoder)->max_seq_length(),
               n.int8 ? "int8" : "fp32", (*encoder)->encoder().weight_bytes() >> 20, BertEncoder::GemmIsa());
  std::shared_ptr<const Embedder> e = std::make_shared<NativeEmbedder>(std::move(encoder).value(), model_id);
  // One batch at a time: a forward pass already uses every core (OpenMP).
  BatcherOptions bo = options_.batch;
  bo.workers = 1;
  e = std::make_shared<BatchingEmbedder>(e, bo, metrics_, "native:" + spec);
  e = std::make_shared<CachingEmbedder>(e, l1_, tiers_, metrics_);
  const std::string q = n.query_prefix.value_or(e5 ? "query: " : "");
  const std::string p = n.passage_prefix.value_or(e5 ? "passage: " : "");
  if (!q.empty() || !p.empty()) e = std::make_shared<PrefixEmbedder>(e, q, p);
  native_[spec] = e;
  native_[model_id] = e;
  return e;
}

StatusOr<std::shared_ptr<const Embedder>> EmbedderRegistry::Resolve(const std::string& name) const {
  if (name.rfind("native:", 0) == 0) return LoadNative(name.substr(7));
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    std::string known;
    for (const auto& [n, e] : by_name_) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown embedder '" + name + "'; this server has " + known + " (or none)",
                           "unknown_embedder");
  }
  return it->second;
}

std::vector<std::pair<std::string, std::shared_ptr<const Embedder>>> EmbedderRegistry::List() const {
  std::map<std::string, std::shared_ptr<const Embedder>> all(by_name_.begin(), by_name_.end());
  {
    MutexLock lock(&native_mu_);
    // native_ holds each model under its spec and under its model id ("native:spec...").
    for (const auto& [key, e] : native_) {
      if (key.rfind("native:", 0) != 0) all["native:" + key] = e;
    }
  }
  return {all.begin(), all.end()};
}

std::shared_ptr<const Embedder> EmbedderRegistry::ByModel(const std::string& model) const {
  if (model.rfind("native:", 0) == 0) {
    // A collection made with a native model: load it again by its spec.
    std::string spec = model.substr(7);
    if (const size_t hash = spec.rfind("#int8"); hash != std::string::npos) spec.resize(hash);
    auto e = LoadNative(spec);
    if (e.ok() && (*e)->model() == model) return *e;
    if (!e.ok()) spdlog::error("{}", e.status().message());
    return nullptr;
  }
  auto it = by_model_.find(model);
  return it == by_model_.end() ? nullptr : it->second;
}

}  // namespace contextd
