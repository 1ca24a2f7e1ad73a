#include "usage/usage_wire.h"

#include <map>
#include <utility>

namespace contextd {

Json UsageQueryToJson(const UsageQuery& q) {
  Json j = Json::MakeObject();
  j["tenant"] = q.tenant;
  j["key"] = q.key;
  j["from_ms"] = q.from_ms;
  j["to_ms"] = q.to_ms;
  j["granularity_ms"] = q.granularity_ms;
  Json by = Json::MakeArray();
  for (const auto& g : q.group_by) by.push_back(g);
  j["group_by"] = std::move(by);
  return j;
}

StatusOr<UsageQuery> UsageQueryFromJson(const Json& j) {
  const Json *tenant = j.Find("tenant"), *key = j.Find("key"), *from = j.Find("from_ms"), *to = j.Find("to_ms"),
             *step = j.Find("granularity_ms"), *by = j.Find("group_by");
  if (tenant == nullptr || !tenant->is_string() || key == nullptr || !key->is_string() || from == nullptr ||
      !from->is_int() || to == nullptr || !to->is_int() || step == nullptr || !step->is_int() || by == nullptr ||
      !by->is_array()) {
    return InvalidArgument("not a usage query");
  }
  UsageQuery q;
  q.tenant = tenant->as_string();
  q.key = key->as_string();
  q.from_ms = from->as_int();
  q.to_ms = to->as_int();
  q.granularity_ms = step->as_int();
  for (const Json& g : by->as_array()) {
    if (!g.is_string()) return InvalidArgument("not a usage query");
    q.group_by.push_back(g.as_string());
  }
  return q;
}

Json UsageRowsToJson(const std::vector<UsageRow>& rows) {
  Json out = Json::MakeArray();
  for (const UsageRow& row : rows) {
    Json j = Json::MakeObject();
    j["start_ms"] = row.start_ms;
    Json group = Json::MakeObject();
    for (const auto& [k, v] : row.group) group[k] = v;
    j["group"] = std::move(group);
    j["requests"] = row.requests;
    j["tokens"] = row.tokens;
    j["cost_usd"] = row.cost_usd;
    out.push_back(std::move(j));
  }
  return out;
}

StatusOr<std::vector<UsageRow>> UsageRowsFromJson(const Json& j) {
  if (!j.is_array()) return InvalidArgument("usage rows must be an array");
  std::vector<UsageRow> out;
  for (const Json& r : j.as_array()) {
    const Json *start = r.Find("start_ms"), *group = r.Find("group"), *requests = r.Find("requests"),
               *tokens = r.Find("tokens"), *cost = r.Find("cost_usd");
    if (start == nullptr || !start->is_int() || group == nullptr || !group->is_object() || requests == nullptr ||
        !requests->is_int() || tokens == nullptr || !tokens->is_int() || cost == nullptr || !cost->is_number()) {
      return InvalidArgument("malformed usage row");
    }
    UsageRow row;
    row.start_ms = start->as_int();
    for (const auto& [k, v] : group->as_object()) {
      if (!v.is_string()) return InvalidArgument("malformed usage row");
      row.group[k] = v.as_string();
    }
    row.requests = requests->as_int();
    row.tokens = tokens->as_int();
    row.cost_usd = cost->as_double();
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<UsageRow> MergeUsageRows(const std::vector<std::vector<UsageRow>>& parts) {
  std::map<std::pair<int64_t, std::map<std::string, std::string>>, UsageRow> sums;
  for (const auto& part : parts) {
    for (const UsageRow& row : part) {
      UsageRow& sum = sums[{row.start_ms, row.group}];
      sum.start_ms = row.start_ms;
      sum.group = row.group;
      sum.requests += row.requests;
      sum.tokens += row.tokens;
      sum.cost_usd += row.cost_usd;
    }
  }
  std::vector<UsageRow> out;
  out.reserve(sums.size());
  for (auto& [k, row] : sums) out.push_back(std::move(row));
  return out;
}

}  // namespace contextd
