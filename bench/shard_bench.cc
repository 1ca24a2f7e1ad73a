// Routed search against searching every shard (issue 8): recall@10 of the routed top 10
// relative to the all-shard top 10, and the share of shards probed.
//
//   shard_bench scifact [--data DIR] [--max-shard-chunks N]: SciFact through the engine
//     in-process (glove embedder, vector mode): shards grown by logged splits as the corpus
//     is ingested, then reopened without saved graphs (the stored layout places every
//     chunk again); routing options swept per query.
//   shard_bench scatter [--data DIR] [--nodes 3] [--max-shard-chunks N]: SciFact in-process,
//     each query answered by one search and by scatter-gather over its shards dealt to
//     NODES nodes (QueryExecutor::Gather per node, the parts through their wire form,
//     Assemble): CPU per query both ways and how many answers differ (none should).
//   shard_bench synthetic [--n 1000000] [--dim 64] [--shards 16] [--nodes 4] [--replicas 2]:
//     a topical collection (topics > subtopics > points, unit vectors) partitioned by the
//     same balanced k-means; each probed shard scanned exactly, so the figure is the
//     router's alone. With the shards placed on NODES data nodes by the cluster's shard map
//     (REPLICAS copies each), the nodes a query contacts (the holders ClusterShardRouter
//     picks, the query arriving at each node in turn) routed and with every shard probed.
// Prints one JSON line per configuration.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cluster/shard_map.h"
#include "cluster/shard_router.h"
#include "common/json.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "engine/query_executor.h"
#include "engine/shard_candidates.h"
#include "engine/shards.h"
#include "eval/metrics.h"
#include "index/search_types.h"
#include "server/request_codec.h"

namespace contextd {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

struct Sweep {
  float clear_margin, probe_margin;
  size_t min_probe;
};
// --sweep "clear:probe:min,...": the routing options measured, the collection default first.
std::vector<Sweep> ParseSweep(const std::string& spec) {
  std::vector<Sweep> out;
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    Sweep s{};
    if (std::sscanf(item.c_str(), "%f:%f:%zu", &s.clear_margin, &s.probe_margin, &s.min_probe) == 3) out.push_back(s);
  }
  return out;
}
std::vector<Sweep> kSweep;

struct Tally {
  double overlap = 0, probed = 0, single = 0, seconds = 0;
  size_t queries = 0;
  // Cluster placement (synthetic): nodes answering per query, and those other than the
  // one the query arrived at (each one a question over the network), routed and with
  // every shard probed.
  double nodes = 0, remote = 0, all_nodes = 0, all_remote = 0;
  void Print(const char* data, const char* build, size_t shards, const Sweep& s, double all_ms) const {
    const double n = static_cast<double>(std::max<size_t>(queries, 1));
    std::printf(
        "{\"data\":\"%s\",\"build\":\"%s\",\"shards\":%zu,\"clear_margin\":%.2f,\"probe_margin\":%.2f,"
        "\"min_probe\":%zu,\"recall@10_vs_all\":%.4f,\"probed_fraction\":%.3f,\"single_shard\":%.3f,"
        "\"routed_ms\":%.3f,\"all_shards_ms\":%.3f",
        data, build, shards, s.clear_margin, s.probe_margin, s.min_probe, overlap / n, probed / n / shards, single / n,
        seconds * 1000 / n, all_ms);
    if (all_nodes > 0) {
      std::printf(
          ",\"nodes_per_query\":%.3f,\"remote_nodes_per_query\":%.3f,\"all_shards_nodes_per_query\":%.3f,"
          "\"all_shards_remote_nodes_per_query\":%.3f",
          nodes / n, remote / n, all_nodes / n, all_remote / n);
    }
    std::printf("}\n");
    std::fflush(stdout);
  }
};

int SciFact(const std::string& data, const std::string& models, size_t max_shard_chunks) {
  auto corpus = ReadBeirCorpus(data + "/corpus.jsonl");
  auto queries = ReadBeirQueries(data + "/queries.train.jsonl");
  if (!corpus.ok() || !queries.ok()) {
    std::fprintf(stderr, "cannot read SciFact under %s\n", data.c_str());
    return 1;
  }
  const std::string work = std::filesystem::temp_directory_path() / ("contextd-shards-" + std::to_string(getpid()));
  std::filesystem::remove_all(work);
  MetricsRegistry metrics;
  EngineOptions eo;
  eo.data_dir = work;
  eo.models_dir = models;
  for (const char* build : {"splits", "reopened"}) {
    auto engine = Engine::Open(eo, &metrics);
    EmbedderRegistry catalog(eo.models_dir);  // resolves the spec as the engine's registry does
    if (!engine.ok()) return 1;
    std::shared_ptr<Collection> c;
    if (std::string(build) == "splits") {
      Json spec = *ParseJson(R"({"embedder":"glove","cache":{"enabled":false}})");
      spec["sharding"]["max_shard_chunks"] = static_cast<int64_t>(max_shard_chunks);
      c = *CreateFromSpec(*(*engine), catalog, kDefaultTenant, "scifact", spec);
      const auto start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < corpus->size(); i += 256) {
        std::vector<DocumentInput> batch;
        for (size_t j = i; j < std::min(corpus->size(), i + 256); ++j) {
          DocumentInput d;
          d.id = (*corpus)[j].id;
          d.title = (*corpus)[j].title;
          d.text = (*corpus)[j].text;
          batch.push_back(std::move(d));
        }
        UpsertResult r;
        if (Status st = c->Upsert(std::move(batch), &r); !st.ok()) {
          std::fprintf(stderr, "%s\n", st.ToString().c_str());
          return 1;
        }
      }
      c->WaitForSplits();
      std::fprintf(stderr, "ingested %zu chunks into %zu shards in %.1f s\n", c->chunk_count(), c->shard_count(),
                   Seconds(start));
    } else {
      // Reopened without saved graphs: the same shards, from the stored layout.
      c = *(*engine)->GetCollection(kDefaultTenant, "scifact");
    }
    const size_t shards = c->shard_count();
    auto query = [&](const BeirQuery& q, const char* extra, QueryResult* out) {
      Json body = *ParseJson(extra);
      body["query"] = q.text;
      body["mode"] = "vector";
      body["k"] = 10;
      *out = *c->Query(*ParseQueryRequest(body, c->config().dim, true));
    };
    // Truth: every shard.
    std::vector<std::set<std::string>> truth;
    auto start = std::chrono::steady_clock::now();
    for (const BeirQuery& q : *queries) {
      QueryResult r;
      query(q, R"({"shards":"all"})", &r);
      std::set<std::string> ids;
      for (const auto& h : r.hits) ids.insert(h.doc_id + "#" + std::to_string(h.chunk));
      truth.push_back(std::move(ids));
    }
    const double all_ms = Seconds(start) * 1000 / queries->size();
    for (const Sweep& s : kSweep) {
      Tally t;
      char routing[160];
      std::snprintf(routing, sizeof routing, R"({"routing":{"clear_margin":%g,"probe_margin":%g,"min_probe":%zu}})",
                    s.clear_margin, s.probe_margin, s.min_probe);
      start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < queries->size(); ++i) {
        QueryResult r;
        query((*queries)[i], routing, &r);
        size_t same = 0;
        for (const auto& h : r.hits) same += truth[i].count(h.doc_id + "#" + std::to_string(h.chunk));
        t.overlap += truth[i].empty() ? 1.0 : static_cast<double>(same) / truth[i].size();
        t.probed += r.route->shards.size();
        t.single += r.route->shards.size() == 1;
        ++t.queries;
      }
      t.seconds = Seconds(start);
      t.Print("scifact", build, shards, s, all_ms);
    }
    c.reset();
    engine->reset();
    std::filesystem::remove_all(work + "/graphs");
  }
  std::filesystem::remove_all(work);
  return 0;
}

double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// The cost of answering by scatter-gather instead of one search, on one machine: what the
// parts and their assembly add, before any network.
int Scatter(const std::string& data, const std::string& models, size_t max_shard_chunks, size_t nodes) {
  auto corpus = ReadBeirCorpus(data + "/corpus.jsonl");
  auto queries = ReadBeirQueries(data + "/queries.train.jsonl");
  if (!corpus.ok() || !queries.ok()) {
    std::fprintf(stderr, "cannot read SciFact under %s\n", data.c_str());
    return 1;
  }
  const std::string work = std::filesystem::temp_directory_path() / ("contextd-scatter-" + std::to_string(getpid()));
  std::filesystem::remove_all(work);
  EngineOptions eo;
  eo.data_dir = work;
  eo.models_dir = models;
  MetricsRegistry metrics;
  auto engine = Engine::Open(eo, &metrics);
  if (!engine.ok()) return 1;
  EmbedderRegistry catalog(models);
  Json spec = *ParseJson(R"({"embedder":"glove","cache":{"enabled":false}})");
  spec["sharding"]["max_shard_chunks"] = static_cast<int64_t>(max_shard_chunks);
  std::shared_ptr<Collection> c = *CreateFromSpec(*(*engine), catalog, kDefaultTenant, "scifact", spec);
  for (size_t i = 0; i < corpus->size(); i += 256) {
    std::vector<DocumentInput> batch;
    for (size_t j = i; j < std::min(corpus->size(), i + 256); ++j)
      batch.push_back({(*corpus)[j].id, (*corpus)[j].title, (*corpus)[j].text});
    UpsertResult r;
    if (!c->Upsert(std::move(batch), &r).ok()) return 1;
  }
  c->WaitForSplits();
  const std::vector<uint32_t> shards = c->ShardIds();
  auto glove = catalog.ByModel(c->config().model);
  // Queries embedded up front: both ways then do the same search work.
  std::vector<QueryRequest> requests;
  for (const BeirQuery& q : *queries) {
    Json body = Json::MakeObject();
    body["query"] = q.text;
    body["k"] = 10;
    QueryRequest req = *ParseQueryRequest(body, c->config().dim, true);
    std::vector<float> v(static_cast<size_t>(c->config().dim));
    if (!glove->Embed({q.text}, v.data()).ok()) return 1;
    req.vector = std::move(v);
    requests.push_back(std::move(req));
  }
  for (QueryMode m : {QueryMode::kKeyword, QueryMode::kVector, QueryMode::kHybrid}) {
    const std::string mode(QueryModeName(m));
    std::vector<QueryResult> one(requests.size());
    std::vector<std::vector<uint32_t>> routes(requests.size());
    double t0 = CpuSeconds();
    for (size_t i = 0; i < requests.size(); ++i) {
      requests[i].mode = m;
      one[i] = *c->Query(requests[i]);
      if (one[i].route) routes[i] = one[i].route->shards;
    }
    const double one_us = (CpuSeconds() - t0) * 1e6 / static_cast<double>(requests.size());
    size_t differ = 0, bytes = 0;
    t0 = CpuSeconds();
    for (size_t i = 0; i < requests.size(); ++i) {
      std::vector<ShardCandidates> parts;
      for (size_t node = 0; node < nodes; ++node) {
        // This node's shards: every nodes-th one. Vectors from the routed ones among them.
        std::vector<uint32_t> mine, routed;
        for (size_t s = node; s < shards.size(); s += nodes) mine.push_back(shards[s]);
        for (uint32_t id : mine)
          if (std::find(routes[i].begin(), routes[i].end(), id) != routes[i].end()) routed.push_back(id);
        QueryMode ran = m;
        auto part = c->Candidates(RequestContext::Background(), requests[i], routed, mine, &ran);
        if (!part.ok()) return 1;
        const std::string wire = EncodeShardCandidates(*part);
        bytes += wire.size();
        parts.push_back(*DecodeShardCandidates(wire));
      }
      auto result = c->Assemble(RequestContext::Background(), requests[i], m, parts);
      if (!result.ok()) return 1;
      const QueryResult& assembled = *result;
      bool same = assembled.hits.size() == one[i].hits.size();
      for (size_t h = 0; same && h < assembled.hits.size(); ++h)
        same = assembled.hits[h].doc_id == one[i].hits[h].doc_id && assembled.hits[h].chunk == one[i].hits[h].chunk &&
               assembled.hits[h].score == one[i].hits[h].score;
      differ += !same;
    }
    const double scatter_us = (CpuSeconds() - t0) * 1e6 / static_cast<double>(requests.size());
    std::printf(
        R"({"mode":"%s","shards":%zu,"nodes":%zu,"queries":%zu,"one_search_cpu_us":%.1f,"scatter_gather_cpu_us":%.1f,"ratio":%.2f,"wire_bytes_per_query":%zu,"answers_differing":%zu})"
        "\n",
        mode.c_str(), shards.size(), nodes, requests.size(), one_us, scatter_us, scatter_us / one_us,
        bytes / requests.size(), differ);
    std::fflush(stdout);
  }
  c.reset();
  engine->reset();
  std::filesystem::remove_all(work);
  return 0;
}

// The nodes ClusterShardRouter asks for `shards` when the query arrives at `self` (every
// holder up and idle), into *nodes (all answering) and *remote (those besides self).
void CountNodes(const ShardMap& map, const std::vector<uint32_t>& shards, const std::string& self, double* nodes,
                double* remote) {
  std::vector<uint32_t> none;
  const auto by_node = ClusterShardRouter::Assign(
      map, "default", 1, shards, self, [](uint32_t, const std::string&) { return true; },
      [](const std::string&) { return 0; }, &none);
  *nodes += static_cast<double>(by_node.size());
  *remote += static_cast<double>(by_node.size() - by_node.count(self));
}

int Synthetic(size_t n, size_t dim, size_t shard_count, size_t query_count, float spread, size_t node_count,
              int replicas) {
  ShardMap map;
  map.epoch = 1;
  map.replicas = replicas;
  for (size_t i = 1; i <= node_count; ++i) map.nodes.push_back("n" + std::to_string(i));
  std::sort(map.nodes.begin(), map.nodes.end());
  std::vector<uint32_t> every_shard(shard_count);
  for (uint32_t s = 0; s < shard_count; ++s) every_shard[s] = s;
  // Topics > subtopics > points: 64 topics of 16 subtopics each; noise sized so that a
  // point's 10 nearest neighbours usually share its topic but often not its subtopic;
  // `spread` scales both noises (2: topics overlap, neighbours often cross them).
  constexpr size_t kTopics = 64, kSub = 16;
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  std::vector<float> sub_centers(kTopics * kSub * dim);
  for (size_t t = 0; t < kTopics; ++t) {
    std::vector<float> topic(dim);
    for (auto& x : topic) x = g(rng);
    for (size_t s = 0; s < kSub; ++s)
      for (size_t j = 0; j < dim; ++j) sub_centers[(t * kSub + s) * dim + j] = topic[j] + spread * 0.6f * g(rng);
  }
  auto point = [&](float* out) {
    const size_t s = rng() % (kTopics * kSub);
    for (size_t j = 0; j < dim; ++j) out[j] = sub_centers[s * dim + j] + spread * 0.45f * g(rng);
    NormalizeInPlace(out, dim);
  };
  std::vector<float> base(n * dim), queries(query_count * dim);
  for (size_t i = 0; i < n; ++i) point(&base[i * dim]);
  for (size_t i = 0; i < query_count; ++i) point(&queries[i * dim]);
  auto start = std::chrono::steady_clock::now();
  KMeansResult km = BalancedKMeans(base.data(), n, dim, shard_count, Metric::kCosine);
  std::fprintf(stderr, "k-means: %zu points into %zu shards in %.1f s\n", n, shard_count, Seconds(start));
  // Each shard's rows, contiguous, for exact scans.
  std::vector<std::vector<float>> rows(shard_count);
  std::vector<std::vector<uint32_t>> ids(shard_count);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t s = km.assignment[i];
    rows[s].insert(rows[s].end(), &base[i * dim], &base[(i + 1) * dim]);
    ids[s].push_back(static_cast<uint32_t>(i));
  }
  base = {};
  std::vector<float> scores;
  auto scan = [&](const float* q, uint32_t s, TopK* top) {
    scores.resize(ids[s].size());
    DotProductBatch(q, rows[s].data(), ids[s].size(), dim, scores.data());
    for (size_t i = 0; i < scores.size(); ++i) top->Push(scores[i], ids[s][i]);
  };
  std::vector<std::set<uint32_t>> truth(query_count);
  start = std::chrono::steady_clock::now();
  for (size_t qi = 0; qi < query_count; ++qi) {
    TopK top(10);
    for (uint32_t s = 0; s < shard_count; ++s) scan(&queries[qi * dim], s, &top);
    for (const auto& h : top.Take()) truth[qi].insert(h.slot);
  }
  const double all_ms = Seconds(start) * 1000 / query_count;
  for (const Sweep& sw : kSweep) {
    ShardingOptions o;
    o.clear_margin = sw.clear_margin;
    o.probe_margin = sw.probe_margin;
    o.min_probe = sw.min_probe;
    Tally t;
    start = std::chrono::steady_clock::now();
    std::vector<float> centroid_scores(shard_count);
    for (size_t qi = 0; qi < query_count; ++qi) {
      const float* q = &queries[qi * dim];
      ScoreCentroids(Metric::kCosine, q, km.centroids.data(), shard_count, dim, centroid_scores.data());
      RouteDecision d = RouteShards(centroid_scores, o);
      TopK top(10);
      for (uint32_t s : d.shards) scan(q, s, &top);
      size_t same = 0;
      for (const auto& h : top.Take()) same += truth[qi].count(h.slot);
      t.overlap += static_cast<double>(same) / truth[qi].size();
      const std::string& arrived_at = map.nodes[qi % map.nodes.size()];
      CountNodes(map, d.shards, arrived_at, &t.nodes, &t.remote);
      CountNodes(map, every_shard, arrived_at, &t.all_nodes, &t.all_remote);
      t.probed += d.shards.size();
      t.single += d.confident;
      ++t.queries;
    }
    t.seconds = Seconds(start);
    t.Print(spread == 1.0f ? "synthetic" : ("synthetic spread " + std::to_string(spread).substr(0, 4)).c_str(),
            "kmeans", shard_count, sw, all_ms);
  }
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"Routed search vs all shards"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string data = "../shared/data/scifact", models = "models";
  size_t max_shard_chunks = 1000, n = 1000000, dim = 64, shards = 16, query_count = 500;
  float spread = 1.0f;
  std::string sweep = "0.2:0.1:2,0.12:0.06:2,0.08:0.04:2,0.05:0.03:1,0.3:0.15:3";
  app.add_option("--sweep", sweep, "routing options to measure: clear_margin:probe_margin:min_probe,...");
  auto* sci = app.add_subcommand("scifact", "SciFact through the engine");
  sci->add_option("--data", data);
  sci->add_option("--models", models);
  sci->add_option("--max-shard-chunks", max_shard_chunks);
  size_t nodes = 3;
  auto* sca = app.add_subcommand("scatter", "SciFact: one search against scatter-gather over NODES nodes");
  sca->add_option("--data", data);
  sca->add_option("--models", models);
  sca->add_option("--max-shard-chunks", max_shard_chunks);
  sca->add_option("--nodes", nodes);
  auto* syn = app.add_subcommand("synthetic", "topical synthetic vectors, routing alone");
  syn->add_option("--n", n);
  syn->add_option("--dim", dim);
  syn->add_option("--shards", shards);
  syn->add_option("--queries", query_count);
  syn->add_option("--spread", spread, "noise scale: 1 = separated topics, 2 = overlapping");
  size_t node_count = 4;
  int replicas = 2;
  syn->add_option("--nodes", node_count, "data nodes the shards are placed on");
  syn->add_option("--replicas", replicas, "copies of each shard");
  CLI11_PARSE(app, argc, argv);
  kSweep = ParseSweep(sweep);
  if (sci->parsed()) return SciFact(data, models, max_shard_chunks);
  if (sca->parsed()) return Scatter(data, models, max_shard_chunks, nodes);
  return Synthetic(n, dim, shards, query_count, spread, node_count, replicas);
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
