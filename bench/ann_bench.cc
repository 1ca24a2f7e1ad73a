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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/vecs_io.h"
#include "index/hnsw_index.h"

int main(int argc, char** argv) {
  using namespace contextd;
  CLI::App app{"HNSW benchmark on fvecs/ivecs"};
  std::string base_path, query_path, gt_path, efs = "16,32,64,128,256", metric_name = "cosine";
  int k = 10, M = 16, efc = 200, threads = 1;
  std::string quant = "none";
  app.add_option("--base", base_path)->required();
  app.add_option("--query", query_path)->required();
  app.add_option("--groundtruth", gt_path)->required();
  app.add_option("--k", k);
  app.add_option("--ef", efs);
  app.add_option("--M", M);
  app.add_option("--efc", efc);
  app.add_option("--threads", threads);
  app.add_option("--metric", metric_name);
  app.add_option("--quant", quant, "none or int8");
  CLI11_PARSE(app, argc, argv);
  Metric metric;
  if (!ParseMetric(metric_name, &metric)) return 2;

  VecSet base = ReadFvecs(base_path), queries = ReadFvecs(query_path);
  std::vector<std::vector<int>> gt = ReadIvecs(gt_path);
  if (base.n == 0 || queries.n == 0 || gt.size() != queries.n) {
    fprintf(stderr, "ann_bench: bad input files\n");
    return 1;
  }
  HnswParams params;
  params.M = M;
  params.ef_construction = efc;
  params.int8 = quant == "int8";
  HnswIndex index(static_cast<int>(base.dim), metric, params);
  index.Reserve(base.n);
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < base.n; i = next++) index.Add(static_cast<uint32_t>(i), base.row(i));
    });
  }
  for (auto& t : pool) t.join();
  double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf(
      "{\"engine\":\"contextd\",\"quant\":\"%s\",\"n\":%zu,\"dim\":%zu,\"M\":%d,\"efc\":%d,\"threads\":%d,\"build_s\":%"
      ".2f,"
      "\"index_bytes\":%zu}\n",
      quant.c_str(), base.n, base.dim, M, efc, threads, build_s, index.memory_bytes());
  fflush(stdout);

  for (int ef : ParseList(efs)) {
    size_t hits = 0;
    auto s0 = std::chrono::steady_clock::now();
    std::vector<std::vector<ScoredSlot>> results(queries.n);
    for (size_t q = 0; q < queries.n; ++q) results[q] = index.Search(queries.row(q), k, ef, nullptr);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    for (size_t q = 0; q < queries.n; ++q) {
      std::set<int> truth(gt[q].begin(), gt[q].begin() + std::min<size_t>(k, gt[q].size()));
      for (const auto& r : results[q]) hits += truth.count(static_cast<int>(r.slot));
    }
    printf("{\"engine\":\"contextd\",\"ef\":%d,\"recall%d\":%.4f,\"qps\":%.0f}\n", ef, k,
           static_cast<double>(hits) / (queries.n * k), queries.n / secs);
    fflush(stdout);
  }
  return 0;
}
