#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/json.h"

namespace contextd {

double NdcgAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k) {
  double dcg = 0;
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    auto it = qrels.find(ranked[i]);
    if (it != qrels.end() && it->second > 0) dcg += it->second / std::log2(static_cast<double>(i) + 2);
  }
  std::vector<int> gains;
  for (const auto& [doc, rel] : qrels) {
    if (rel > 0) gains.push_back(rel);
  }
  std::sort(gains.rbegin(), gains.rend());
  double idcg = 0;
  for (size_t i = 0; i < std::min(k, gains.size()); ++i) idcg += gains[i] / std::log2(static_cast<double>(i) + 2);
  return idcg > 0 ? dcg / idcg : 0;
}

double RecallAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k) {
  size_t relevant = 0, found = 0;
  for (const auto& [doc, rel] : qrels) relevant += rel > 0;
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    auto it = qrels.find(ranked[i]);
    found += it != qrels.end() && it->second > 0;
  }
  return relevant > 0 ? static_cast<double>(found) / static_cast<double>(relevant) : 0;
}

double MrrAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k) {
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    auto it = qrels.find(ranked[i]);
    if (it != qrels.end() && it->second > 0) return 1.0 / static_cast<double>(i + 1);
  }
  return 0;
}

StatusOr<std::vector<BeirDoc>> ReadBeirCorpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::vector<BeirDoc> out;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    auto j = ParseJson(line);
    const Json* id = j.ok() ? j->Find("_id") : nullptr;
    const Json* text = j.ok() ? j->Find("text") : nullptr;
    const Json* title = j.ok() ? j->Find("title") : nullptr;
    if (id == nullptr || text == nullptr || !id->is_string() || !text->is_string() ||
        (title != nullptr && !title->is_string()))
      return InvalidArgument(path + ":" + std::to_string(line_no) +
                             ": expected {\"_id\": string, \"title\": string?, \"text\": string}");
    out.push_back({id->as_string(), title != nullptr ? title->as_string() : "", text->as_string()});
  }
  return out;
}

StatusOr<std::vector<BeirQuery>> ReadBeirQueries(const std::string& path) {
  // The same line format as the corpus, without titles.
  CTX_ASSIGN_OR_RETURN(std::vector<BeirDoc> lines, ReadBeirCorpus(path));
  std::vector<BeirQuery> out;
  out.reserve(lines.size());
  for (auto& l : lines) out.push_back({std::move(l.id), std::move(l.text)});
  return out;
}

StatusOr<std::map<std::string, Judgements>> ReadBeirQrels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::map<std::string, Judgements> out;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("query-id", 0) == 0)) continue;
    std::istringstream fields(line);
    std::string query, doc, score;
    if (!std::getline(fields, query, '\t') || !std::getline(fields, doc, '\t') || !std::getline(fields, score, '\t'))
      return InvalidArgument(path + ":" + std::to_string(line_no) + ": expected query-id<TAB>corpus-id<TAB>score");
    char* end = nullptr;
    const long rel = std::strtol(score.c_str(), &end, 10);
    if (end == score.c_str() || *end != '\0')
      return InvalidArgument(path + ":" + std::to_string(line_no) + ": score '" + score + "' is not an integer");
    out[query][doc] = static_cast<int>(rel);
  }
  return out;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

}  // namespace contextd
