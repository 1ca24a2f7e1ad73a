// Query-result cache on a replayed question stream (issue 7): SciFact (glove) as the
// collection, Quora questions as the queries, drawn Zipf(0.9) so popular questions repeat;
// a share of requests are paraphrases (case changed, words reordered, the question mark
// dropped), which the exact tier cannot match and the semantic tier may. Optionally a
// write every --write-every queries (an upsert of a new SciFact-like document), to show
// what invalidation costs. Prints hit rates and mean latency per tier.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <CLI/CLI.hpp>

#include "common/json.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "server/request_codec.h"

namespace contextd {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"Query cache replay"};
  std::string corpus = "../shared/data/scifact/corpus.jsonl", quora = "../shared/data/quora/questions.csv";
  std::string models = "models", mode = "hybrid";
  size_t requests = 20000, write_every = 0;
  double paraphrase_share = 0.3;
  app.add_option("--corpus", corpus);
  app.add_option("--quora", quora);
  app.add_option("--models", models);
  app.add_option("--mode", mode);
  app.add_option("--requests", requests);
  app.add_option("--paraphrases", paraphrase_share, "share of requests that are paraphrases");
  app.add_option("--write-every", write_every, "an upsert every N queries (0: none)");
  CLI11_PARSE(app, argc, argv);

  const std::string work = std::filesystem::temp_directory_path() / ("contextd-qcache-" + std::to_string(getpid()));
  MetricsRegistry metrics;
  EngineOptions eo;
  eo.data_dir = work;
  eo.models_dir = models;
  auto engine = Engine::Open(eo, &metrics);
  EmbedderRegistry catalog(eo.models_dir);  // resolves the spec as the engine's registry does
  if (!engine.ok()) return 1;
  auto c = *CreateFromSpec(*(*engine), catalog, kDefaultTenant, "scifact", *ParseJson(R"({"embedder":"glove"})"));
  std::vector<DocumentInput> docs;
  {
    std::ifstream in(corpus);
    for (std::string line; std::getline(in, line);) {
      auto j = ParseJson(line);
      if (!j.ok()) continue;
      DocumentInput d;
      d.id = j->Find("_id")->as_string();
      d.title = j->Find("title")->as_string();
      d.text = j->Find("text")->as_string();
      docs.push_back(std::move(d));
    }
  }
  for (size_t i = 0; i < docs.size(); i += 512) {
    UpsertResult r;
    std::vector<DocumentInput> batch(docs.begin() + static_cast<std::ptrdiff_t>(i),
                                     docs.begin() + static_cast<std::ptrdiff_t>(std::min(docs.size(), i + 512)));
    if (!c->Upsert(std::move(batch), &r).ok()) return 1;
  }
  std::vector<std::string> questions;
  {
    std::ifstream in(quora);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      if (!line.empty()) questions.push_back(line);
    }
  }
  std::vector<double> w;
  for (size_t i = 0; i < questions.size(); ++i) w.push_back(1.0 / std::pow(static_cast<double>(i + 1), 0.9));
  std::discrete_distribution<size_t> pick(w.begin(), w.end());
  std::mt19937 rng(11);
  auto paraphrase = [&](std::string q) {
    switch (rng() % 3) {
      case 0:  // case
        for (char& ch : q) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return q;
      case 1: {  // the first two words swapped
        const size_t a = q.find(' '), b = a == std::string::npos ? a : q.find(' ', a + 1);
        if (b == std::string::npos) return q + " please";
        return q.substr(a + 1, b - a - 1) + " " + q.substr(0, a) + q.substr(b);
      }
      default:  // no question mark
        if (!q.empty() && q.back() == '?') q.pop_back();
        return q + " ";
    }
  };
  std::map<std::string, std::pair<size_t, double>> tiers;  // cache -> count, total ms
  size_t writes = 0;
  for (size_t r = 0; r < requests; ++r) {
    std::string q = questions[pick(rng)];
    if (std::uniform_real_distribution<double>(0, 1)(rng) < paraphrase_share) q = paraphrase(q);
    Json body = Json::MakeObject();
    body["query"] = q;
    body["k"] = 10;
    body["mode"] = mode;
    auto req = ParseQueryRequest(body, c->config().dim, true);
    const auto t0 = std::chrono::steady_clock::now();
    auto res = c->Query(*req);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto& tier = tiers[res->cache_tier.empty() ? res->cache : res->cache + "_" + res->cache_tier];
    ++tier.first;
    tier.second += ms;
    if (write_every > 0 && (r + 1) % write_every == 0) {
      DocumentInput d = docs[rng() % docs.size()];
      d.id = "new-" + std::to_string(writes++);
      UpsertResult ur;
      std::vector<DocumentInput> one;
      one.push_back(std::move(d));
      (void)c->Upsert(std::move(one), &ur);
    }
  }
  std::printf("{\"mode\":\"%s\",\"requests\":%zu,\"paraphrase_share\":%.2f,\"write_every\":%zu", mode.c_str(), requests,
              paraphrase_share, write_every);
  for (const auto& [name, t] : tiers) {
    std::printf(",\"%s\":{\"rate\":%.3f,\"mean_ms\":%.3f}", name.c_str(), static_cast<double>(t.first) / requests,
                t.second / static_cast<double>(t.first));
  }
  std::printf("}\n");
  engine->reset();
  std::filesystem::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
