// `contextd eval`: retrieval quality of a collection on BEIR-layout judgements, through the
// server's own query API (so it measures exactly what clients get).
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "common/json.h"
#include "eval/metrics.h"
#include "net/http_client.h"

namespace contextd {

int RunEval(const EvalOptions& o) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "contextd eval: %s\n", msg.c_str());
    return 2;
  };
  std::string host;
  int port;
  if (Status st = ParseUrl(o.url, &host, &port); !st.ok()) return fail(st.message());
  auto queries = ReadBeirQueries(o.queries);
  if (!queries.ok()) return fail(queries.status().message());
  auto qrels = ReadBeirQrels(o.qrels);
  if (!qrels.ok()) return fail(qrels.status().message());
  Json extra = Json::MakeObject();
  if (!o.params.empty()) {
    auto p = ParseJson(o.params);
    if (!p.ok() || !p->is_object()) return fail("--params must be a JSON object of query fields");
    extra = std::move(p).value();
  }
  // Documents, not chunks, are judged: ask for the best chunk per document, deep enough
  // for recall@100.
  const size_t depth = std::max<size_t>(o.k, 100);
  HttpClient client(host, port);
  const std::string path = "/v1/collections/" + UrlEncode(o.collection) + "/query";
  const HttpHeaders auth = ClientAuthHeaders(o.api_key);
  double ndcg = 0, recall = 0, mrr = 0;
  size_t evaluated = 0;
  std::vector<double> latency_ms;
  for (const BeirQuery& q : *queries) {
    auto judged = qrels->find(q.id);
    if (judged == qrels->end()) continue;  // BEIR scores only judged queries
    Json body = extra;
    body["query"] = q.text;
    body["k"] = static_cast<int64_t>(depth);
    body["mode"] = o.mode;
    body["group_by"] = "document";
    const auto start = std::chrono::steady_clock::now();
    auto res = client.Request("POST", path, body.Dump(), auth);
    latency_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (!res.ok()) return fail(res.status().message());
    if (res->status != 200) return fail("query " + q.id + ": HTTP " + std::to_string(res->status) + " " + res->body);
    auto reply = ParseJson(res->body);
    const Json* results = reply.ok() ? reply->Find("results") : nullptr;
    if (results == nullptr || !results->is_array()) return fail("query " + q.id + ": no results array in the reply");
    std::vector<std::string> ranked;
    for (const Json& r : results->as_array()) {
      const Json* id = r.Find("id");
      if (id == nullptr || !id->is_string()) continue;
      if (std::find(ranked.begin(), ranked.end(), id->as_string()) == ranked.end()) ranked.push_back(id->as_string());
    }
    ndcg += NdcgAtK(ranked, judged->second, o.k);
    recall += RecallAtK(ranked, judged->second, 100);
    mrr += MrrAtK(ranked, judged->second, o.k);
    ++evaluated;
  }
  if (evaluated == 0) return fail("no query in " + o.queries + " has judgements in " + o.qrels);
  const double n = static_cast<double>(evaluated);
  double mean = 0;
  for (double l : latency_ms) mean += l;
  mean /= static_cast<double>(latency_ms.size());
  const std::string k = std::to_string(o.k);
  std::printf(
      "{\"collection\":\"%s\",\"mode\":\"%s\",\"queries\":%zu,\"ndcg@%s\":%.4f,\"recall@100\":%.4f,\"mrr@%s\":%.4f,"
      "\"latency_ms\":{\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f}}\n",
      o.collection.c_str(), o.mode.c_str(), evaluated, k.c_str(), ndcg / n, recall / n, k.c_str(), mrr / n, mean,
      Percentile(latency_ms, 50), Percentile(latency_ms, 90), Percentile(latency_ms, 99));
  return 0;
}

}  // namespace contextd
