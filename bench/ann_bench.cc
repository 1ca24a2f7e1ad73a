// ann_bench: contextd's HNSW on a TEXMEX-format ANN set (fvecs/ivecs), one JSON line per ef.
//
//   ann_bench --base F --query F --groundtruth F [--k 10] [--ef 16,32,64,128,256]
//             [--M 16] [--efc 200] [--threads 1] [--metric cosine|dot|l2]
//
// Builds with --threads threads, then searches one query at a time on one thread and
// reports recall@k against the ground truth's first k ids and queries per second.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/ann_args.h"

#include "bench/vecs_io.h"
#include "index/hnsw_index.h"

namespace {

// A line of /proc/self/status in bytes ("RssAnon", "RssFile"): what the process holds in
// RAM, against what the index says it holds.
size_t StatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace contextd;
  CLI::App app{"HNSW benchmark on fvecs/ivecs"};
  AnnArgs args;
  std::string metric_name = "cosine";
  int threads = 1;
  std::string quant = "none";
  double churn = 0, selectivity = 0;
  std::string graph_file;
  AddAnnOptions(&app, &args);
  app.add_option("--threads", threads);
  app.add_option("--metric", metric_name);
  app.add_option("--quant", quant, "none or int8");
  std::string vector_dir;
  app.add_option("--vector-dir", vector_dir, "int8: keep the fp32 vectors memory-mapped from a file in this directory");
  app.add_option("--graph", graph_file, "load the graph from this file if it exists, else build and save it there");
  app.add_option("--churn", churn, "after the build, delete this fraction of points and insert them again");
  app.add_option("--filter-selectivity", selectivity,
                 "search with a filter matching this fraction of points (recall against filtered truth, "
                 "first 1,000 queries)");
  CLI11_PARSE(app, argc, argv);
  const int k = args.k, M = args.M, efc = args.efc;
  const std::string& efs = args.efs;
  Metric metric;
  if (!ParseMetric(metric_name, &metric)) return 2;

  VecSet base = ReadFvecs(args.base), queries = ReadFvecs(args.query);
  std::vector<std::vector<int>> gt = ReadIvecs(args.groundtruth);
  if (base.n == 0 || queries.n == 0 || gt.size() != queries.n) {
    fprintf(stderr, "ann_bench: bad input files\n");
    return 1;
  }
  HnswParams params;
  params.M = M;
  params.ef_construction = efc;
  params.int8 = quant == "int8";
  params.vector_dir = vector_dir;
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<HnswIndex> graph;
  if (!graph_file.empty()) {
    uint64_t tag = 0;
    auto l = HnswIndex::Load(graph_file, static_cast<int>(base.dim), metric, params, &tag);
    if (l.ok()) graph = std::move(l).value();
  }
  const bool loaded = graph != nullptr;
  if (!loaded) {
    graph = std::make_unique<HnswIndex>(static_cast<int>(base.dim), metric, params);
    graph->Reserve(base.n);
    HnswIndex& index = *graph;
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < base.n; i = next++) index.Add(static_cast<uint32_t>(i), base.row(i));
      });
    }
    for (auto& t : pool) t.join();
    if (!graph_file.empty()) (void)index.Save(graph_file, 0);
  }
  HnswIndex& index = *graph;
  double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf(
      "{\"engine\":\"contextd\",\"quant\":\"%s\",\"n\":%zu,\"dim\":%zu,\"M\":%d,\"efc\":%d,\"threads\":%d,\"%s\":%.2f,"
      "\"index_bytes\":%zu,\"mapped_bytes\":%zu,\"rss_anon\":%zu,\"rss_file\":%zu}\n",
      quant.c_str(), base.n, base.dim, M, efc, threads, loaded ? "load_s" : "build_s", build_s, index.memory_bytes(),
      index.mapped_bytes(), StatusBytes("RssAnon"), StatusBytes("RssFile"));
  fflush(stdout);

  if (churn > 0) {
    // Delete a random fraction, then insert the same vectors again under the same labels.
    std::mt19937_64 rng(7);
    std::vector<uint32_t> victims;
    for (size_t i = 0; i < base.n; ++i) {
      if (std::uniform_real_distribution<double>(0, 1)(rng) < churn) victims.push_back(static_cast<uint32_t>(i));
    }
    auto c0 = std::chrono::steady_clock::now();
    for (uint32_t v : victims) index.MarkDeleted(v);
    // Deleted nodes are unlinked and their ids freed, as collections do past a tenth.
    auto r0 = std::chrono::steady_clock::now();
    const size_t removed = index.RepairDeleted();
    const double repair_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
    std::atomic<size_t> at{0};
    std::vector<std::thread> again;
    for (int t = 0; t < threads; ++t) {
      again.emplace_back([&] {
        for (size_t i = at++; i < victims.size(); i = at++) index.Add(victims[i], base.row(victims[i]));
      });
    }
    for (auto& t : again) t.join();
    printf(
        "{\"engine\":\"contextd\",\"churn\":%.2f,\"reinserted\":%zu,\"repaired\":%zu,\"repair_s\":%.2f,"
        "\"churn_s\":%.2f,\"nodes\":%zu,\"index_bytes\":%zu}\n",
        churn, victims.size(), removed, repair_s,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count(), index.node_count(),
        index.memory_bytes());
    fflush(stdout);
  }

  // A filter keeps labels whose hash falls under the selectivity; its truth is brute force.
  // It is handed to the index as a bitset, as collections do after compiling a metadata filter.
  SlotFilter filter;
  SlotBitset allowed(base.n);
  size_t nq = queries.n;
  std::vector<std::vector<int>> truth_ids = gt;
  if (selectivity > 0) {
    filter = [selectivity](uint32_t label) {
      return (label * 2654435761u) % 100000u < static_cast<uint32_t>(selectivity * 100000);
    };
    for (size_t i = 0; i < base.n; ++i) {
      if (filter(static_cast<uint32_t>(i))) allowed.Set(static_cast<uint32_t>(i));
    }
    nq = std::min<size_t>(nq, 1000);
    truth_ids.assign(nq, {});
    for (size_t q = 0; q < nq; ++q) {
      std::vector<std::pair<float, int>> all;
      for (size_t i = 0; i < base.n; ++i) {
        if (filter(static_cast<uint32_t>(i)))
          all.push_back({-DotProduct(queries.row(q), base.row(i), base.dim), static_cast<int>(i)});
      }
      std::partial_sort(all.begin(), all.begin() + std::min<size_t>(k, all.size()), all.end());
      for (size_t j = 0; j < std::min<size_t>(k, all.size()); ++j) truth_ids[q].push_back(all[j].second);
    }
  }

  for (int ef : ParseList(efs)) {
    size_t hits = 0, expected = 0;
    auto s0 = std::chrono::steady_clock::now();
    std::vector<std::vector<ScoredSlot>> results(nq);
    for (size_t q = 0; q < nq; ++q) {
      results[q] =
          filter ? index.SearchFiltered(queries.row(q), k, ef, allowed) : index.Search(queries.row(q), k, ef, nullptr);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    for (size_t q = 0; q < nq; ++q) {
      std::set<int> truth(truth_ids[q].begin(), truth_ids[q].begin() + std::min<size_t>(k, truth_ids[q].size()));
      expected += truth.size();
      for (const auto& r : results[q]) hits += truth.count(static_cast<int>(r.slot));
    }
    printf("{\"engine\":\"contextd\",\"ef\":%d,\"recall%d\":%.4f,\"qps\":%.0f,\"churn\":%.2f,\"selectivity\":%.3f}\n",
           ef, k, static_cast<double>(hits) / std::max<size_t>(expected, 1), nq / secs, churn, selectivity);
    fflush(stdout);
  }
  return 0;
}
