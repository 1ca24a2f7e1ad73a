// The options ann_bench and ann_peers share, declared once so both programs always take
// the same data set and graph parameters.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace contextd {

struct AnnArgs {
  std::string base, query, groundtruth;
  std::string efs = "16,32,64,128,256";
  int k = 10;
  int M = 16;
  int efc = 200;
};

inline void AddAnnOptions(CLI::App* app, AnnArgs* a) {
  app->add_option("--base", a->base, "base vectors (fvecs)")->required();
  app->add_option("--query", a->query, "query vectors (fvecs)")->required();
  app->add_option("--groundtruth", a->groundtruth, "nearest-neighbour ids per query (ivecs)")->required();
  app->add_option("--k", a->k, "neighbours per query; recall@k is reported");
  app->add_option("--ef", a->efs, "comma-separated ef values to sweep");
  app->add_option("--M", a->M, "graph degree");
  app->add_option("--efc", a->efc, "ef_construction");
}

}  // namespace contextd
