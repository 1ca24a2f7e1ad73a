#include "cluster/shard_map.h"

#include <algorithm>

#include "common/hash.h"
#include "common/json.h"

namespace contextd {

std::vector<std::string> ShardMap::Holders(const std::string& tenant, uint64_t collection_id, uint32_t shard) const {
  const std::string key = tenant + '\0' + std::to_string(collection_id) + '\0' + std::to_string(shard);
  const uint64_t seed = Hash64(key);
  std::vector<std::pair<uint64_t, const std::string*>> weighted;
  weighted.reserve(nodes.size());
  for (const std::string& n : nodes) weighted.push_back({Hash64(n, seed), &n});
  // Highest weight first; equal weights (never in practice) by name, so every node agrees.
  std::sort(weighted.begin(), weighted.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  const size_t n = std::min(weighted.size(), static_cast<size_t>(std::max(1, replicas)));
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(*weighted[i].second);
  return out;
}

bool ShardMap::Contains(const std::string& node) const { return std::binary_search(nodes.begin(), nodes.end(), node); }

std::string ShardMap::Encode() const {
  Json j = Json::MakeObject();
  j["epoch"] = static_cast<int64_t>(epoch);
  j["replicas"] = replicas;
  Json list = Json::MakeArray();
  for (const std::string& n : nodes) list.push_back(Json(n));
  j["nodes"] = std::move(list);
  return j.Dump();
}

StatusOr<ShardMap> ShardMap::Decode(std::string_view in) {
  const auto bad = [](const std::string& what) { return InvalidArgument("shard map: " + what, "invalid_shard_map"); };
  auto j = ParseJson(in);
  if (!j.ok() || !j->is_object()) return bad("not a JSON object");
  const Json* epoch = j->Find("epoch");
  const Json* replicas = j->Find("replicas");
  const Json* nodes = j->Find("nodes");
  if (epoch == nullptr || !epoch->is_number() || epoch->as_int() < 0) return bad("\"epoch\" must be a count");
  if (replicas == nullptr || !replicas->is_number() || replicas->as_int() < 1 || replicas->as_int() > 16) {
    return bad("\"replicas\" must be 1 to 16");
  }
  if (nodes == nullptr || !nodes->is_array()) return bad("\"nodes\" must be an array");
  ShardMap m;
  m.epoch = static_cast<uint64_t>(epoch->as_int());
  m.replicas = static_cast<int>(replicas->as_int());
  for (const Json& n : nodes->as_array()) {
    if (!n.is_string() || n.as_string().empty()) return bad("a node id must be a non-empty string");
    m.nodes.push_back(n.as_string());
  }
  std::sort(m.nodes.begin(), m.nodes.end());
  if (std::adjacent_find(m.nodes.begin(), m.nodes.end()) != m.nodes.end()) return bad("a node is listed twice");
  return m;
}

ShardMap NextShardMap(const ShardMap& current, std::vector<std::string> data_nodes_up, int replicas) {
  std::sort(data_nodes_up.begin(), data_nodes_up.end());
  data_nodes_up.erase(std::unique(data_nodes_up.begin(), data_nodes_up.end()), data_nodes_up.end());
  if (current.epoch != 0 && data_nodes_up == current.nodes && replicas == current.replicas) return current;
  ShardMap next;
  next.epoch = current.epoch + 1;
  next.replicas = replicas;
  next.nodes = std::move(data_nodes_up);
  return next;
}

}  // namespace contextd
