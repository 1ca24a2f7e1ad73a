// Memory comes back: large embeddings, upserts and deletes must not leave the server's
// resident memory at the high-water mark of its largest requests (per-thread parser and
// scratch buffers, allocator arenas). A reduced-scale version of bench/memory.sh.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

// The process's peak resident memory so far (VmHWM), in MB.
size_t PeakMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) >> 10;
  }
  return 0;
}

// A counter or gauge from /metrics.
double Metric(HttpClient& client, const std::string& name) {
  auto r = client.Get("/metrics");
  const std::string key = "\n" + name + " ";
  const size_t at = r.ok() ? r->body.find(key) : std::string::npos;
  EXPECT_NE(at, std::string::npos) << name;
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + key.size()));
}

size_t ResidentMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) >> 20;
}

// RocksDB's memtables hold written data until they flush (64 MB each): data, not waste.
size_t StoreMemoryMb(HttpClient& client) {
  auto r = client.Get("/metrics");
  EXPECT_TRUE(r.ok());
  const std::string key = "\ncontextd_store_memory_bytes ";
  const size_t at = r.ok() ? r->body.find(key) : std::string::npos;
  EXPECT_NE(at, std::string::npos);
  return at == std::string::npos ? 0 : std::stoull(r->body.substr(at + key.size())) >> 20;
}

// About `bytes` of text of distinct words (GloVe knows few of them, BM25 indexes them all).
std::string Text(size_t bytes, uint64_t seed) {
  static const char* kWords[] = {"tea", "river", "mountain", "quick", "brown",
                                 "fox", "banks", "rates",    "leaf",  "cloud"};
  std::string t;
  t.reserve(bytes + 16);
  uint64_t x = seed * 2654435761u + 1;
  while (t.size() < bytes) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t += kWords[(x >> 33) % 10];
    t += std::to_string((x >> 40) % 10000);
    t += ((x >> 20) % 17 == 0) ? ". " : " ";
  }
  return t;
}

// Runs `n` calls of `body_of(i)` over `connections` concurrent clients; every one must be 200.
void Concurrently(const ServerProcess& server, int n, int connections, const std::string& method,
                  const std::function<std::string(int)>& target_of, const std::function<std::string(int)>& body_of) {
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      auto client = server.Client();
      for (int i = next++; i < n; i = next++) {
        auto r = client->Request(method, target_of(i), body_of(i));
        if (!r.ok() || r->status != 200) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
}

TEST(MemoryBoundTest, LargeRequestsGiveTheirMemoryBack) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  auto client = server.Client();
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})").first, 201);
  const size_t base = ResidentMb(server.pid());

  // 24 texts of 1 MB, 4 at a time: the embed pool has 64 threads, and each used to keep a
  // parser and token buffers sized for the largest body it had seen (~14 MB per 1 MB body).
  const std::string big = "{\"model\":\"glove\",\"input\":\"" + Text(1 << 20, 1) + "\"}";
  Concurrently(
      server, 24, 4, "POST", [](int) { return "/v1/embeddings"; }, [&](int) { return big; });
  // The server's releaser looks every 2 s: give it a few looks.
  size_t after_embeddings = ResidentMb(server.pid());
  for (int wait = 0; wait < 60 && after_embeddings > base + base / 10; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after_embeddings = ResidentMb(server.pid());
  }
  // Measured: 94 -> 96-101 MB (without the fixes: 693 MB).
  EXPECT_LE(after_embeddings, base + base * 25 / 100) << "baseline " << base << " MB";

  // Rounds of two concurrent 4 MB upserts, deleted again.
  constexpr size_t kDocBytes = 4 << 20;
  size_t first_round = 0;
  for (int round = 0; round < 3; ++round) {
    Concurrently(
        server, 2, 2, "POST", [](int) { return "/v1/collections/docs/documents"; },
        [&](int i) {
          return "{\"documents\":[{\"id\":\"big" + std::to_string(i) + "\",\"text\":\"" +
                 Text(kDocBytes, 10 + i + 2 * round) + "\"}]}";
        });
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(Call(*client, "DELETE", "/v1/collections/docs/documents/big" + std::to_string(i)).first, 200);
    }
    // Deleted, the documents' memory comes back: the chunk texts, posting lists, terms and
    // graph capacity are freed, and the server's releaser (a look every 2 s) trims what those
    // frees left. Memtables aside, RSS returns to within a fifth of the baseline (measured:
    // +8-12%; before the fixes +80 MB here, and +280 MB after 16 MB documents).
#ifdef CONTEXTD_EXPECT_JEMALLOC
    const size_t bound = base + base / 10;  // the issue's bound
#else
    const size_t bound = base + base / 5;  // the sanitizers' allocators keep more
#endif
    size_t store = 0, rss = 0;
    for (int wait = 0; wait < 60; ++wait) {
      store = StoreMemoryMb(*client);
      rss = ResidentMb(server.pid()) - store;
      if (rss <= bound) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (round == 0) first_round = rss;
    std::printf("round %d: rss %zu MB (memtables aside), baseline %zu MB\n", round, rss, base);
    EXPECT_LE(rss, bound) << "round " << round << ", baseline " << base << " MB";
    EXPECT_LE(rss, first_round + first_round * 15 / 100)
        << "round " << round << " grew past round 0's " << first_round << " MB (RocksDB in RAM: " << store << " MB)";
  }
  // The allocator the binary was built with reports what it holds (the sanitizer builds run
  // glibc's interface over their own allocator, which reports zeros).
#ifdef CONTEXTD_EXPECT_JEMALLOC
  const std::string label = "{allocator=\"jemalloc\"}";
#else
  const std::string label = "{allocator=\"glibc\"}";
#endif
  const double allocated = Metric(*client, "contextd_allocator_allocated_bytes" + label);
  const double held = Metric(*client, "contextd_allocator_resident_bytes" + label);
  EXPECT_LE(allocated, held);
#ifdef CONTEXTD_EXPECT_JEMALLOC
  EXPECT_GT(allocated, 1 << 20) << "a serving process has live heap blocks";
  EXPECT_LT(held, static_cast<double>(ResidentMb(server.pid())) * (1 << 20) * 1.05) << "held is resident";
#endif
}

// Large writes from many clients at once: with max_body_bytes_in_flight at one body, they
// are taken one at a time (the others wait, unread), so the peak is one write's, not the
// sum of all of them; every write still succeeds.
TEST(MemoryBoundTest, BodiesInFlightAreBoundedByTheirBudget) {
  constexpr size_t kDocBytes = 4 << 20;
  constexpr int kWriters = 4;
  const char* budget = std::getenv("CONTEXTD_TEST_BODY_BUDGET");  // to measure without one
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"--max-body-bytes-in-flight", budget && *budget ? budget : "5000000"});
  server.Start();
  auto client = server.Client();
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})").first, 201);
  std::vector<std::string> bodies;
  for (int i = 0; i < kWriters; ++i) {
    bodies.push_back("{\"documents\":[{\"id\":\"big" + std::to_string(i) + "\",\"text\":\"" + Text(kDocBytes, 50 + i) +
                     "\"}]}");
  }
  const size_t base = PeakMb(server.pid());
  Concurrently(
      server, kWriters, kWriters, "POST", [](int) { return "/v1/collections/docs/documents"; },
      [&](int i) { return bodies[i]; });
  const size_t peak = PeakMb(server.pid());
  EXPECT_GE(Metric(*client, "contextd_http_body_waits_total"), 1) << "no body waited for another";
  // Released once each reply is written, which may be just after the client has read it.
  for (int i = 0; i < 200 && Metric(*client, "contextd_http_body_bytes_in_flight") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Metric(*client, "contextd_http_body_bytes_in_flight"), 0);
  EXPECT_EQ(Call(*client, "GET", "/v1/collections/docs").second.Find("documents")->as_int(), kWriters);
  // Measured: taken one at a time, the peak is 160-165 MB above the baseline (the written
  // documents' vocabulary and graph included); all four at once, 280-295 MB.
  EXPECT_LE(peak, base + 50 * (kDocBytes >> 20)) << "baseline " << base << " MB";
}

}  // namespace
}  // namespace contextd
