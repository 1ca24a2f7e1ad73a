// ann_peers: hnswlib and FAISS (IndexHNSWFlat) on the same fvecs/ivecs files and parameters
// as ann_bench, so BENCHMARKS.md can set the three side by side from one run.
//
//   ann_peers --base F --query F --groundtruth F [--k 10] [--ef 16,32,64,128,256]
//             [--M 16] [--efc 200] [--engines hnswlib,faiss]
//
// Vectors are unit-normalised (cosine) and searched by inner product, one query per call
// on one thread, as in ann_bench. hnswlib builds on one thread (the reference figure);
// FAISS on --faiss-build-threads. hnswlib is compiled with -march=native here, its best.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <faiss/IndexHNSW.h>
#include <fstream>
#include <memory>

#include <hnswlib/hnswlib.h>
#include <CLI/CLI.hpp>

#include "bench/ann_args.h"

#include "bench/vecs_io.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void Normalize(contextd::VecSet* s) {
  for (size_t i = 0; i < s->n; ++i) {
    float* v = &s->data[i * s->dim];
    double n = 0;
    for (size_t j = 0; j < s->dim; ++j) n += v[j] * v[j];
    if (n > 0) {
      float inv = static_cast<float>(1 / std::sqrt(n));
      for (size_t j = 0; j < s->dim; ++j) v[j] *= inv;
    }
  }
}

double Recall(const std::vector<std::vector<int64_t>>& got, const std::vector<std::vector<int>>& gt, int k) {
  size_t hits = 0;
  for (size_t q = 0; q < got.size(); ++q) {
    std::set<int64_t> truth(gt[q].begin(), gt[q].begin() + std::min<size_t>(k, gt[q].size()));
    for (int64_t id : got[q]) hits += truth.count(id);
  }
  return static_cast<double>(hits) / (got.size() * k);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace contextd;
  CLI::App app{"hnswlib and FAISS HNSW on fvecs/ivecs"};
  AnnArgs args;
  std::string engines = "hnswlib,faiss";
  int faiss_threads = 1;
  std::string hnswlib_graph;
  AddAnnOptions(&app, &args);
  app.add_option("--hnswlib-graph", hnswlib_graph,
                 "load hnswlib's index from this file if it exists, else build and save it there");
  app.add_option("--engines", engines);
  app.add_option("--faiss-build-threads", faiss_threads,
                 "OpenMP threads for FAISS's build (its 1-thread build is slow)");
  CLI11_PARSE(app, argc, argv);
  const int k = args.k, M = args.M, efc = args.efc;
  const std::string& efs = args.efs;
  omp_set_num_threads(1);

  VecSet base = ReadFvecs(args.base), queries = ReadFvecs(args.query);
  auto gt = ReadIvecs(args.groundtruth);
  Normalize(&base);
  Normalize(&queries);
  const size_t dim = base.dim;

  if (engines.find("hnswlib") != std::string::npos) {
    hnswlib::InnerProductSpace space(dim);
    const bool load = !hnswlib_graph.empty() && std::ifstream(hnswlib_graph).good();
    auto t0 = Clock::now();
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> built;
    if (load) {
      built = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, hnswlib_graph);
    } else {
      built = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, base.n, M, efc, 42);
      for (size_t i = 0; i < base.n; ++i) built->addPoint(base.row(i), i);
      if (!hnswlib_graph.empty()) built->saveIndex(hnswlib_graph);
    }
    hnswlib::HierarchicalNSW<float>& index = *built;
    printf("{\"engine\":\"hnswlib\",\"n\":%zu,\"M\":%d,\"efc\":%d,\"threads\":1,\"%s\":%.2f}\n", base.n, M, efc,
           load ? "load_s" : "build_s", Since(t0));
    fflush(stdout);
    for (int ef : ParseList(efs)) {
      index.setEf(ef);
      std::vector<std::vector<int64_t>> got(queries.n);
      auto s0 = Clock::now();
      for (size_t q = 0; q < queries.n; ++q) {
        auto res = index.searchKnn(queries.row(q), k);
        while (!res.empty()) {
          got[q].push_back(static_cast<int64_t>(res.top().second));
          res.pop();
        }
      }
      double secs = Since(s0);
      printf("{\"engine\":\"hnswlib\",\"ef\":%d,\"recall%d\":%.4f,\"qps\":%.0f}\n", ef, k, Recall(got, gt, k),
             queries.n / secs);
      fflush(stdout);
    }
  }

  if (engines.find("faiss") != std::string::npos) {
    faiss::IndexHNSWFlat index(static_cast<int>(dim), M, faiss::METRIC_INNER_PRODUCT);
    index.hnsw.efConstruction = efc;
    omp_set_num_threads(faiss_threads);
    auto t0 = Clock::now();
    index.add(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
    printf("{\"engine\":\"faiss\",\"n\":%zu,\"M\":%d,\"efc\":%d,\"threads\":%d,\"build_s\":%.2f}\n", base.n, M, efc,
           faiss_threads, Since(t0));
    fflush(stdout);
    omp_set_num_threads(1);
    for (int ef : ParseList(efs)) {
      // FAISS 1.7.3 ignores SearchParametersHNSW in IndexHNSW::search; set it on the index.
      index.hnsw.efSearch = ef;
      std::vector<std::vector<int64_t>> got(queries.n);
      std::vector<float> dist(k);
      std::vector<faiss::Index::idx_t> ids(k);
      auto s0 = Clock::now();
      for (size_t q = 0; q < queries.n; ++q) {
        index.search(1, queries.row(q), k, dist.data(), ids.data());
        got[q].assign(ids.begin(), ids.end());
      }
      double secs = Since(s0);
      printf("{\"engine\":\"faiss\",\"ef\":%d,\"recall%d\":%.4f,\"qps\":%.0f}\n", ef, k, Recall(got, gt, k),
             queries.n / secs);
      fflush(stdout);
    }
  }
  return 0;
}
