#include "engine/requests.h"

#include <cstdio>

#include "cache/query_cache.h"
#include "common/names.h"

namespace contextd {

Json CollectionConfig::ToJson() const {
  Json j = Json::MakeObject();
  j["embedder"] = embedder;
  j["model"] = model;
  j["dim"] = dim;
  j["distance"] = std::string(MetricName(metric));
  j["chunking"]["max_tokens"] = chunking.max_tokens;
  j["chunking"]["overlap"] = chunking.overlap;
  j["analyzer"] = analyzer;
  j["index"]["M"] = hnsw_m;
  j["index"]["ef_construction"] = hnsw_ef_construction;
  j["index"]["quantization"] = int8 ? "int8" : "none";
  j["cache"]["enabled"] = cache_enabled;
  j["cache"]["threshold"] = cache_threshold;
  for (int t = 0; t < 3; ++t) {
    Json& tier = j["cache"]["tiers"][QueryCacheTierName(t)];
    tier["max_mb"] = cache_tier_mb[t];
    tier["ttl_s"] = cache_tier_ttl_s[t];
  }
  j["cache"]["verify_fraction"] = cache_verify_fraction;
  j["sharding"] = ShardingOptionsJson(sharding);
  return j;
}

Json ShardingOptionsJson(const ShardingOptions& o) {
  Json j = Json::MakeObject();
  j["max_shard_chunks"] = static_cast<int64_t>(o.max_shard_chunks);
  j["clear_margin"] = o.clear_margin;
  j["probe_margin"] = o.probe_margin;
  j["min_probe"] = static_cast<int64_t>(o.min_probe);
  j["max_probe_fraction"] = o.max_probe_fraction;
  return j;
}

StatusOr<CollectionConfig> CollectionConfig::FromStored(const Json& s) {
  CollectionConfig c;
  const Json *e = s.Find("embedder"), *m = s.Find("model"), *d = s.Find("dim"), *dist = s.Find("distance"),
             *ch = s.Find("chunking"), *an = s.Find("analyzer");
  if (!e || !e->is_string() || !m || !m->is_string() || !d || !d->is_int() || !dist || !dist->is_string() || !ch ||
      !ch->is_object() || !an || !an->is_string()) {
    return Internal("stored collection config is incomplete: " + s.Dump(), "storage_error");
  }
  c.embedder = e->as_string();
  c.model = m->as_string();
  c.dim = static_cast<int>(d->as_int());
  if (!ParseMetric(dist->as_string(), &c.metric)) return Internal("stored distance is unknown", "storage_error");
  const Json *mt = ch->Find("max_tokens"), *ov = ch->Find("overlap");
  if (mt && mt->is_number()) c.chunking.max_tokens = static_cast<int>(mt->as_int());
  if (ov && ov->is_number()) c.chunking.overlap = static_cast<int>(ov->as_int());
  c.analyzer = an->as_string();
  if (const Json* ix = s.Find("index")) {  // absent in collections made before the HNSW index
    if (const Json* m = ix->Find("M"); m && m->is_number()) c.hnsw_m = static_cast<int>(m->as_int());
    if (const Json* q = ix->Find("quantization"); q && q->is_string()) c.int8 = q->as_string() == "int8";
    if (const Json* e = ix->Find("ef_construction"); e && e->is_number()) {
      c.hnsw_ef_construction = static_cast<int>(e->as_int());
    }
  }
  if (const Json* qc = s.Find("cache")) {  // absent in collections made before the query cache
    if (const Json* v = qc->Find("enabled"); v && v->is_bool()) c.cache_enabled = v->as_bool();
    if (const Json* v = qc->Find("threshold"); v && v->is_number())
      c.cache_threshold = static_cast<float>(v->as_double());
    for (int t = 0; t < 3; ++t) {
      const Json* tiers = qc->Find("tiers");
      const Json* tier = tiers != nullptr ? tiers->Find(QueryCacheTierName(t)) : nullptr;
      if (tier == nullptr) continue;
      if (const Json* v = tier->Find("max_mb"); v && v->is_number()) c.cache_tier_mb[t] = static_cast<int>(v->as_int());
      if (const Json* v = tier->Find("ttl_s"); v && v->is_number())
        c.cache_tier_ttl_s[t] = static_cast<int>(v->as_int());
    }
    if (const Json* v = qc->Find("verify_fraction"); v && v->is_number())
      c.cache_verify_fraction = static_cast<float>(v->as_double());
  }
  if (const Json* sh = s.Find("sharding")) {  // absent in collections made before sharding
    if (const Json* v = sh->Find("max_shard_chunks"); v && v->is_number())
      c.sharding.max_shard_chunks = static_cast<size_t>(v->as_int());
    if (const Json* v = sh->Find("clear_margin"); v && v->is_number())
      c.sharding.clear_margin = static_cast<float>(v->as_double());
    if (const Json* v = sh->Find("probe_margin"); v && v->is_number())
      c.sharding.probe_margin = static_cast<float>(v->as_double());
    if (const Json* v = sh->Find("min_probe"); v && v->is_number())
      c.sharding.min_probe = static_cast<size_t>(v->as_int());
    if (const Json* v = sh->Find("max_probe_fraction"); v && v->is_number())
      c.sharding.max_probe_fraction = static_cast<float>(v->as_double());
  }
  return c;
}

Status ValidateCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgument("collection name must be 1 to 64 characters", "invalid_name");
  }
  if (!IsName(name, 64)) {
    return InvalidArgument("collection name may only contain letters, digits, '_' and '-'", "invalid_name");
  }
  return Status::Ok();
}

Status ValidateDocumentId(const std::string& id) {
  if (id.empty() || id.size() > 512) return InvalidArgument("document id must be 1 to 512 bytes", "invalid_id");
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument("document id may not contain control characters", "invalid_id");
    }
  }
  return Status::Ok();
}

std::string_view QueryModeName(QueryMode m) {
  switch (m) {
    case QueryMode::kVector:
      return "vector";
    case QueryMode::kKeyword:
      return "keyword";
    case QueryMode::kHybrid:
      return "hybrid";
  }
  return "hybrid";
}

std::string QueryCacheKey(const QueryRequest& q) {
  std::string key;
  char buf[64];
  const auto add = [&](const char* name, double v) {
    snprintf(buf, sizeof(buf), "%s=%.9g;", name, v);
    key += buf;
  };
  key += "mode=" + std::string(QueryModeName(q.mode)) + ";";
  add("k", static_cast<double>(q.k));
  add("ef", static_cast<double>(q.ef));
  add("depth", static_cast<double>(q.depth));
  key += q.fusion == Fusion::kRrf ? "fusion=rrf;" : q.fusion == Fusion::kWeighted ? "fusion=weighted;" : "fusion=auto;";
  add("alpha", q.alpha);
  if (q.mmr_lambda) add("mmr", *q.mmr_lambda);
  if (q.group_by_document) key += "group=document;";
  if (q.bm25_k1) add("k1", *q.bm25_k1);
  if (q.bm25_b) add("b", *q.bm25_b);
  if (q.title_boost) add("title_boost", *q.title_boost);
  if (q.all_shards) key += "shards=all;";
  if (q.routing) {
    add("clear_margin", q.routing->clear_margin);
    add("probe_margin", q.routing->probe_margin);
    add("min_probe", static_cast<double>(q.routing->min_probe));
    add("max_probe_fraction", q.routing->max_probe_fraction);
  }
  if (q.expand_refs) key += "refs;";
  if (!q.strategy.empty()) key += "strategy=" + q.strategy + ";";
  if (!q.filter_key.empty()) key += "filter=" + q.filter_key + ";";
  return key;
}

}  // namespace contextd
