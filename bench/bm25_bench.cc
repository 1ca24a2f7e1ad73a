// bm25_bench: contextd's BM25 index on a BEIR corpus, one query at a time on one thread.
//
//   bm25_bench --corpus corpus.jsonl --queries queries.jsonl [--k 10] [--copies 1]
//              [--repeat 3] [--analyzer english]
//
// Chunks each document the way a collection does (200 tokens, 20 overlap; title + chunk
// text), indexes --copies copies of the corpus (to reach 100k+ chunks from SciFact), then
// times every query --repeat times and prints one JSON line: index size, latency
// percentiles, and a checksum of the results so two builds can be compared for equality.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/json.h"
#include "index/bm25_index.h"
#include "text/analyzer.h"
#include "text/chunker.h"

namespace {

using namespace contextd;

std::vector<Json> ReadJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = ParseJson(line);
    if (j.ok()) out.push_back(std::move(*j));
  }
  return out;
}

std::string Field(const Json& j, const char* name) {
  const Json* f = j.Find(name);
  return f != nullptr && f->is_string() ? f->as_string() : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"BM25 index benchmark"};
  std::string corpus_path, queries_path, analyzer_name = "english";
  size_t k = 10, copies = 1, repeat = 3;
  app.add_option("--corpus", corpus_path, "BEIR corpus.jsonl")->required();
  app.add_option("--queries", queries_path, "BEIR queries.jsonl")->required();
  app.add_option("--k", k, "hits per query");
  app.add_option("--copies", copies, "index the corpus this many times");
  app.add_option("--repeat", repeat, "passes over the queries");
  app.add_option("--analyzer", analyzer_name, "english|standard|none");
  CLI11_PARSE(app, argc, argv);

  auto analyzer = MakeAnalyzer(analyzer_name);
  if (!analyzer.ok()) {
    std::fprintf(stderr, "%s\n", analyzer.status().ToString().c_str());
    return 1;
  }
  // Analyze once; copies reuse the terms under new slots.
  std::vector<std::vector<std::string>> chunk_terms;
  for (const Json& doc : ReadJsonLines(corpus_path)) {
    const std::string title = Field(doc, "title"), text = Field(doc, "text");
    for (const Chunk& c : ChunkText(text, ChunkingOptions{})) {
      std::string body = text.substr(c.begin, c.end - c.begin);
      chunk_terms.emplace_back();
      (*analyzer)->Analyze(title.empty() ? body : title + "\n" + body, &chunk_terms.back());
    }
  }
  Bm25Index index;
  const auto b0 = std::chrono::steady_clock::now();
  uint32_t slot = 0;
  for (size_t c = 0; c < copies; ++c) {
    for (const auto& terms : chunk_terms) index.Add(slot++, terms);
  }
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();

  std::vector<std::vector<std::string>> queries;
  for (const Json& q : ReadJsonLines(queries_path)) {
    queries.emplace_back();
    (*analyzer)->Analyze(Field(q, "text"), &queries.back());
  }
  std::vector<double> micros;
  uint64_t checksum = 0;
  for (size_t r = 0; r < repeat; ++r) {
    for (const auto& terms : queries) {
      const auto t0 = std::chrono::steady_clock::now();
      auto hits = index.Search(terms, k, nullptr);
      micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      if (r == 0) {
        for (const auto& h : hits) checksum = checksum * 1000003 + h.slot;
      }
    }
  }
  std::sort(micros.begin(), micros.end());
  double sum = 0;
  for (double m : micros) sum += m;
  auto pct = [&](double p) { return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))]; };
  std::printf(
      "{\"chunks\":%u,\"terms\":%zu,\"queries\":%zu,\"k\":%zu,\"build_s\":%.2f,\"mean_us\":%.1f,\"p50_us\":%.1f,"
      "\"p99_us\":%.1f,\"max_us\":%.1f,\"checksum\":\"%016llx\"}\n",
      slot, index.term_count(), queries.size(), k, build_s, sum / micros.size(), pct(0.5), pct(0.99), micros.back(),
      static_cast<unsigned long long>(checksum));
  return 0;
}
