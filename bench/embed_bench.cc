// Embedding service benchmarks (issue 5):
//   1. batching: `--clients` threads each embedding one text at a time through a provider
//      whose cost is per call (a real HTTP fake provider that computes one call at a time,
//      each taking --call-us whatever its size, like a model on one accelerator),
//      unbatched (RemoteEmbedder directly) against batched (BatchingEmbedder in front);
//   2. the L1 lookup itself (ns per hit);
//   3. hit rates per tier replaying Quora questions with Zipf-distributed repeats through
//      L1 (small, so it evicts) and L2 (RocksDB), then through two replicas sharing a real
//      redis-server (L3) started by the benchmark.
// Prints one JSON object per part.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "embed/batcher.h"
#include "embed/caching_embedder.h"
#include "embed/hash_embedder.h"
#include "embed/redis_tier.h"
#include "embed/remote_embedder.h"
#include "embed/rocks_tier.h"
#include "fake_provider.h"
#include "redis_server.h"

namespace contextd {
namespace {

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

double Throughput(const Embedder& e, int clients, double secs) {
  std::atomic<int64_t> done{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<float> out(static_cast<size_t>(e.dim()));
      for (int i = 0; !stop; ++i) {
        const std::string text = "client " + std::to_string(c) + " text " + std::to_string(i);
        if (e.Embed({text}, out.data()).ok()) {
          ++done;
        } else {
          ++errors;
        }
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(secs));
  stop = true;
  for (auto& t : threads) t.join();
  if (errors > 0) std::fprintf(stderr, "%lld errors\n", static_cast<long long>(errors.load()));
  return static_cast<double>(done) / Seconds(start);
}

std::vector<std::string> ReadQuestions(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> questions;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (!line.empty()) questions.push_back(line);
  }
  return questions;
}

// Replays `requests` Zipf(0.9)-distributed questions through `replicas` caching embedders,
// each with its own L1 and L2, sharing Redis when redis_port is not 0. Prints hit rates
// per tier over all replicas.
bool Replay(const std::vector<std::string>& questions, size_t requests, size_t l1_mb, int dim, int replicas,
            int redis_port) {
  std::vector<double> w;
  for (size_t i = 0; i < questions.size(); ++i) w.push_back(1.0 / std::pow(static_cast<double>(i + 1), 0.9));
  std::discrete_distribution<size_t> pick(w.begin(), w.end());
  std::mt19937 rng(7);
  MetricsRegistry metrics;
  auto inner = std::make_shared<HashEmbedder>(dim);
  std::vector<std::unique_ptr<CachingEmbedder>> servers;
  std::vector<std::string> dirs;
  for (int r = 0; r < replicas; ++r) {
    dirs.push_back("/tmp/contextd-embed-bench-l2-" + std::to_string(r));
    std::filesystem::remove_all(dirs.back());
    auto l2 = RocksTier::Open(dirs.back(), 3600, SystemClock::Default());
    if (!l2.ok()) return false;
    std::vector<std::shared_ptr<CacheTier>> tiers = {std::move(l2).value()};
    if (redis_port != 0) {
      RedisTierOptions ro;
      ro.port = redis_port;
      tiers.push_back(std::make_shared<RedisTier>(ro));
    }
    servers.push_back(std::make_unique<CachingEmbedder>(
        inner, std::make_shared<L1Cache>(l1_mb << 20, 0, SystemClock::Default()), tiers, &metrics));
  }
  std::vector<float> out(static_cast<size_t>(dim));
  const auto start = std::chrono::steady_clock::now();
  for (size_t r = 0; r < requests; ++r) {
    const std::string& q = questions[pick(rng)];
    (void)servers[rng() % servers.size()]->Embed({q}, out.data());
  }
  const double s = Seconds(start);
  auto rate = [&](const char* tier_name) {
    return static_cast<double>(metrics
                                   .GetCounter("contextd_embed_cache_requests_total", "",
                                               {{"model", inner->model()}, {"tier", tier_name}, {"result", "hit"}})
                                   ->value()) /
           requests;
  };
  // Replicas share one registry, so one counter holds every replica's computed texts.
  const uint64_t computed = servers[0]->computed();
  std::printf(
      "{\"part\":\"quora_replay\",\"replicas\":%d,\"redis\":%s,\"questions\":%zu,\"requests\":%zu,"
      "\"l1_mb\":%zu,\"l1_hit_rate\":%.3f,\"l2_hit_rate\":%.3f,\"l3_hit_rate\":%.3f,\"computed_rate\":%.3f,"
      "\"us_per_request\":%.1f}\n",
      replicas, redis_port != 0 ? "true" : "false", questions.size(), requests, l1_mb, rate("l1"), rate("l2"),
      rate("l3"), static_cast<double>(computed) / requests, s * 1e6 / requests);
  std::fflush(stdout);
  servers.clear();
  for (const auto& d : dirs) std::filesystem::remove_all(d);
  return true;
}

int Main(int argc, char** argv) {
  CLI::App app{"Embedding service benchmark"};
  int clients = 64, dim = 384;
  int64_t call_us = 5000;
  double secs = 5;
  std::string quora = "../shared/data/quora/questions.csv";
  size_t replay = 100000, l1_mb = 4;
  app.add_option("--clients", clients);
  app.add_option("--dim", dim);
  app.add_option("--call-us", call_us, "provider latency per call, whatever the batch size");
  app.add_option("--seconds", secs);
  app.add_option("--quora", quora);
  app.add_option("--replay", replay, "requests in the Quora replay");
  app.add_option("--l1-mb", l1_mb);
  CLI11_PARSE(app, argc, argv);

  // 1. Batching against a per-call-cost provider.
  {
    FakeProvider fake(dim, call_us, /*serial=*/true);
    ProviderOptions po;
    po.name = "fake";
    po.urls = {fake.url()};
    po.model = "m";
    po.dim = dim;
    po.health_interval_ms = 0;
    auto remote = RemoteEmbedder::Create(po, SystemClock::Default());
    if (!remote.ok()) return 1;
    std::shared_ptr<const Embedder> shared = std::move(remote).value();
    const double unbatched = Throughput(*shared, clients, secs);
    const int calls_before = fake.calls();
    BatcherOptions bo;
    bo.max_wait_us = 2000;
    bo.max_batch_size = 64;
    bo.workers = 4;
    BatchingEmbedder batched(shared, bo, nullptr, "bench");
    const double with_batching = Throughput(batched, clients, secs);
    const double texts_per_call =
        static_cast<double>(fake.texts() - calls_before) / std::max(1, fake.calls() - calls_before);
    std::printf(
        "{\"part\":\"batching\",\"clients\":%d,\"call_us\":%lld,\"unbatched_texts_per_s\":%.0f,"
        "\"batched_texts_per_s\":%.0f,\"speedup\":%.2f,\"mean_batch\":%.1f}\n",
        clients, static_cast<long long>(call_us), unbatched, with_batching, with_batching / unbatched, texts_per_call);
    std::fflush(stdout);
  }

  // 2. The L1 lookup.
  {
    L1Cache l1(256ull << 20, 0, SystemClock::Default());
    const int n = 100000;
    std::vector<EmbedKey> keys;
    std::vector<float> v(static_cast<size_t>(dim), 0.5f);
    for (int i = 0; i < n; ++i) {
      keys.push_back(MakeEmbedKey("m", "question number " + std::to_string(i)));
      l1.Put(keys.back(), dim, v.data());
    }
    std::mt19937 rng(1);
    std::vector<int> order(1000000);
    for (int& o : order) o = static_cast<int>(rng() % n);
    const auto start = std::chrono::steady_clock::now();
    size_t hits = 0;
    for (int o : order) hits += l1.Get(keys[o], dim, v.data());
    const double get_ns = Seconds(start) * 1e9 / order.size();
    // A whole hit as a request sees it: normalise + hash the text, then the lookup.
    const std::string text = "How do I learn to   cook well?";
    l1.Put(MakeEmbedKey("m", text), dim, v.data());
    const auto start2 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000000; ++i) hits += l1.Get(MakeEmbedKey("m", text), dim, v.data());
    const double full_ns = Seconds(start2) * 1e9 / 1000000;
    std::printf("{\"part\":\"l1\",\"entries\":%d,\"dim\":%d,\"get_ns\":%.0f,\"key_and_get_ns\":%.0f,\"hits\":%zu}\n", n,
                dim, get_ns, full_ns, hits);
    std::fflush(stdout);
  }

  // 3. Quora replay: Zipf-distributed repeats over the questions, first on one server
  // (L1 + L2), then on two replicas with their own L1 and L2 sharing one Redis (L3), each
  // request going to a random replica as a load balancer would send it.
  std::vector<std::string> questions = ReadQuestions(quora);
  if (questions.empty()) {
    std::fprintf(stderr, "no questions in %s\n", quora.c_str());
    return 1;
  }
  if (!Replay(questions, replay, l1_mb, dim, 1, 0)) return 1;
  RedisServer redis;
  if (!redis.running()) {
    std::fprintf(stderr, "redis-server did not start: the L3 replay is skipped\n");
    return 1;
  }
  if (!Replay(questions, replay, l1_mb, dim, 2, redis.port())) return 1;
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
