#include "server/response_codec.h"

namespace contextd {

Json CollectionInfoJson(const CollectionInfo& info) {
  Json j = Json::MakeObject();
  j["name"] = info.name;
  Json config = info.config.ToJson();
  for (auto& [k, v] : config.as_object()) j[k] = std::move(v);
  j["embedder_available"] = info.embedder_available;
  j["documents"] = static_cast<int64_t>(info.documents);
  j["chunks"] = static_cast<int64_t>(info.chunks);
  Json& index = j["index"];
  index["type"] = info.index_type;
  index["graph_nodes"] = static_cast<int64_t>(info.graph_nodes);
  index["graph_tombstones"] = static_cast<int64_t>(info.graph_tombstones);
  j["shards"] = static_cast<int64_t>(info.shards);
  j["index"]["graph_source"] = info.graph_source;
  j["index"]["memory_bytes"] = static_cast<int64_t>(info.memory_bytes);
  j["index"]["mapped_bytes"] = static_cast<int64_t>(info.mapped_bytes);
  return j;
}

Json ShardsReportJson(const ShardsReport& report) {
  Json out = Json::MakeObject();
  Json shards = Json::MakeArray();
  for (const auto& s : report.shards) {
    Json j = Json::MakeObject();
    j["id"] = static_cast<int64_t>(s.id);
    j["chunks"] = static_cast<int64_t>(s.chunks);
    j["index"] = s.index;
    j["probes"] = static_cast<int64_t>(s.probes);
    j["splitting"] = s.splitting;
    Json top = Json::MakeArray();
    for (const auto& t : s.top_terms) top.push_back(t);
    j["top_terms"] = std::move(top);
    shards.push_back(std::move(j));
  }
  out["shards"] = std::move(shards);
  Json& routing = out["routing"];
  routing["queries"] = static_cast<int64_t>(report.queries);
  routing["single_shard"] = static_cast<int64_t>(report.single_shard);
  routing["widened"] = static_cast<int64_t>(report.widened);
  routing["mean_shards_probed"] = report.mean_shards_probed;
  routing["options"] = ShardingOptionsJson(report.options);
  return out;
}

Json StoredDocumentJson(StoredDocument doc) {
  Json out = Json::MakeObject();
  out["id"] = std::move(doc.id);
  if (!doc.title.empty()) out["title"] = std::move(doc.title);
  out["text"] = std::move(doc.text);
  out["metadata"] = std::move(doc.metadata);
  if (!doc.refs.empty()) {
    Json refs = Json::MakeArray();
    for (auto& r : doc.refs) refs.push_back(std::move(r));
    out["refs"] = std::move(refs);
  }
  out["chunks"] = static_cast<int64_t>(doc.chunks);
  return out;
}

Json PlanJson(const PlannedSearch& plan) {
  Json j = Json::MakeObject();
  j["strategy"] = std::string(StrategyName(plan.strategy));
  j["answered_by"] = std::string(StrategyName(plan.answered_by));
  j["fallback"] = plan.fallback;
  if (plan.fallback) j["fallback_reason"] = plan.fallback_reason;
  j["complexity"] = plan.analysis.complexity;
  Json indicators = Json::MakeArray();
  for (const auto& i : plan.analysis.indicators) indicators.push_back(i);
  j["indicators"] = std::move(indicators);
  Json parts = Json::MakeArray();
  for (const auto& p : plan.analysis.sub_queries) parts.push_back(p);
  j["sub_queries"] = std::move(parts);
  Json ids = Json::MakeArray();
  for (uint32_t id : plan.shards) ids.push_back(static_cast<int64_t>(id));
  j["shards"] = std::move(ids);
  j["of"] = static_cast<int64_t>(plan.shard_count);
  j["searches"] = static_cast<int64_t>(plan.searches);
  return j;
}

}  // namespace contextd
