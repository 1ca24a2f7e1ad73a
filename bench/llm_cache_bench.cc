// LLM response cache benchmarks (issue 7):
//   1. MRPC (../shared/data/mrpc/pairs.dev.tsv): store every sentence 1, look up every
//      sentence 2; a hit is correct when it returns the pair's own sentence 1 and the
//      pair is a paraphrase. Precision and recall across thresholds, per embedder.
//   2. Lookups in a cache of --entries entries (default 1M) in one scope: p50/p99 of a
//      semantic lookup (embedding included) and of an exact one.
// Prints one JSON object per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "cache/llm_cache.h"
#include "embed/embedder_registry.h"
#include "eval/metrics.h"

namespace contextd {
namespace {

std::string Quote(const std::string& s) { return Json(s).Dump(); }

int Main(int argc, char** argv) {
  CLI::App app{"LLM response cache benchmark"};
  std::string mrpc = "../shared/data/mrpc/pairs.dev.tsv", models = "models";
  size_t entries = 1000000, lookups = 5000;
  std::vector<std::string> embedders = {"glove", "hash"};
  app.add_option("--mrpc", mrpc);
  app.add_option("--models", models);
  app.add_option("--entries", entries, "entries for the latency part (0 skips it)");
  app.add_option("--lookups", lookups);
  app.add_option("--embedders", embedders);
  CLI11_PARSE(app, argc, argv);
  EmbedderRegistry registry(models);
  const std::string work = std::filesystem::temp_directory_path() / ("contextd-llm-bench-" + std::to_string(getpid()));

  // 1. MRPC precision / recall.
  struct Pair {
    int label;
    std::string s1, s2;
  };
  std::vector<Pair> pairs;
  {
    std::ifstream in(mrpc);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string label, s1, s2;
      if (std::getline(f, label, '\t') && std::getline(f, s1, '\t') && std::getline(f, s2, '\t'))
        pairs.push_back({std::stoi(label), s1, s2});
    }
  }
  size_t positives = 0;
  for (const auto& p : pairs) positives += p.label == 1;
  for (const std::string& embedder : embedders) {
    std::filesystem::remove_all(work);
    auto cache = LlmCache::Open(work, &registry, SystemClock::Default(), nullptr, /*sync_writes=*/false);
    if (!cache.ok() || !(*cache)->Configure("mrpc", {.embedder = embedder}).ok()) {
      std::fprintf(stderr, "cannot set up the cache with %s\n", embedder.c_str());
      return 1;
    }
    std::vector<std::string> ids;
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto id = (*cache)->Store("mrpc", {.prompt = pairs[i].s1, .response = Json(static_cast<int64_t>(i))});
      ids.push_back(id.ok() ? *id : "");
    }
    // Best match of each sentence 2 at any similarity, then every threshold offline.
    std::vector<float> similarity(pairs.size(), -1);
    std::vector<bool> own(pairs.size(), false);
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto r = (*cache)->Lookup("mrpc", {.prompt = pairs[i].s2, .threshold = 0.0001f});
      if (!r.ok() || !r->hit) continue;
      similarity[i] = r->similarity;
      own[i] = r->id == ids[i];
    }
    std::printf("{\"part\":\"mrpc\",\"embedder\":%s,\"pairs\":%zu,\"paraphrases\":%zu,\"thresholds\":[",
                Quote(embedder).c_str(), pairs.size(), positives);
    bool first = true;
    for (double t = 0.70; t <= 0.9951; t += 0.025) {
      size_t hits = 0, correct = 0;
      for (size_t i = 0; i < pairs.size(); ++i) {
        if (similarity[i] < t) continue;
        ++hits;
        correct += own[i] && pairs[i].label == 1;
      }
      std::printf("%s{\"threshold\":%.3f,\"hits\":%zu,\"precision\":%.3f,\"recall\":%.3f}", first ? "" : ",", t, hits,
                  hits ? static_cast<double>(correct) / hits : 0.0, static_cast<double>(correct) / positives);
      first = false;
    }
    std::printf("]}\n");
    std::fflush(stdout);
  }

  // 2. Lookup latency at `entries` entries, one scope.
  if (entries > 0) {
    std::filesystem::remove_all(work);
    auto cache = LlmCache::Open(work, &registry, SystemClock::Default(), nullptr, /*sync_writes=*/false);
    if (!cache.ok() || !(*cache)->Configure("big", {.embedder = "hash", .threshold = 0.5f}).ok()) return 1;
    // Prompts of 8 words from a 5,000-word vocabulary: distinct, with shared words.
    auto prompt = [](uint64_t seed) {
      std::mt19937_64 rng(seed);
      std::string s;
      for (int w = 0; w < 8; ++w) s += "w" + std::to_string(rng() % 5000) + " ";
      return s;
    };
    const auto fill_start = std::chrono::steady_clock::now();
    std::vector<std::thread> writers;
    const unsigned threads = 2;
    for (unsigned t = 0; t < threads; ++t) {
      writers.emplace_back([&, t] {
        for (size_t i = t; i < entries; i += threads)
          (void)(*cache)->Store("big", {.prompt = prompt(i), .response = Json(static_cast<int64_t>(i))});
      });
    }
    for (auto& w : writers) w.join();
    const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
    std::vector<double> semantic_ms, exact_ms;
    size_t semantic_hits = 0;
    std::mt19937_64 rng(99);
    for (size_t i = 0; i < lookups; ++i) {
      const uint64_t seed = rng() % entries;
      // A near paraphrase: the stored prompt with one word changed.
      std::string p = prompt(seed);
      p.replace(0, p.find(' '), "changed");
      auto t0 = std::chrono::steady_clock::now();
      auto r = (*cache)->Lookup("big", {.prompt = p});
      semantic_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      semantic_hits += r.ok() && r->hit && r->response.as_int() == static_cast<int64_t>(seed);
      t0 = std::chrono::steady_clock::now();
      (void)(*cache)->Lookup("big", {.prompt = prompt(seed)});
      exact_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf(
        "{\"part\":\"latency\",\"entries\":%zu,\"fill_s\":%.1f,\"lookups\":%zu,\"semantic_p50_ms\":%.3f,"
        "\"semantic_p99_ms\":%.3f,\"semantic_found_own_entry\":%.3f,\"exact_p50_ms\":%.4f,\"exact_p99_ms\":%.4f}\n",
        entries, fill_s, lookups, Percentile(semantic_ms, 50), Percentile(semantic_ms, 99),
        static_cast<double>(semantic_hits) / lookups, Percentile(exact_ms, 50), Percentile(exact_ms, 99));
  }
  std::filesystem::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
