// The embedding service's layers: BatchingEmbedder, CachingEmbedder (tiers, single-flight)
// and the Redis tier against a real redis-server.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "embed/batcher.h"
#include "embed/caching_embedder.h"
#include "embed/hash_embedder.h"
#include "embed/redis_tier.h"
#include "manual_clock.h"
#include "redis_server.h"

namespace contextd {
namespace {

// A real embedder (feature hashing) that counts calls and texts and can be slowed down,
// standing in for a model whose cost is per call.
class CountingEmbedder final : public Embedder {
 public:
  explicit CountingEmbedder(int64_t per_call_us = 0) : per_call_us_(per_call_us) {}
  std::string model() const override { return "counting"; }
  int dim() const override { return hash_.dim(); }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override {
    ++calls;
    texts_seen += static_cast<int>(texts.size());
    if (per_call_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(per_call_us_));
    return hash_.Embed(texts, out);
  }
  mutable std::atomic<int> calls{0};
  mutable std::atomic<int> texts_seen{0};

 private:
  HashEmbedder hash_{32};
  int64_t per_call_us_;
};

std::vector<float> Reference(std::string_view text) {
  HashEmbedder h(32);
  std::vector<float> v(32);
  EXPECT_TRUE(h.Embed({text}, v.data()).ok());
  return v;
}

TEST(BatchingEmbedderTest, ConcurrentCallersShareBatchesAndEachGetsItsOwnVectors) {
  auto inner = std::make_shared<CountingEmbedder>(2000);
  BatcherOptions o;
  o.max_wait_us = 5000;
  o.max_batch_size = 64;
  o.workers = 1;
  BatchingEmbedder b(inner, o, nullptr, "test");
  constexpr int kClients = 64;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      const std::string a = "client " + std::to_string(c), z = "other " + std::to_string(c);
      std::vector<float> out(64);
      if (!b.Embed({a, z}, out.data()).ok()) ++wrong;
      auto ra = Reference(a), rz = Reference(z);
      if (!std::equal(ra.begin(), ra.end(), out.begin()) || !std::equal(rz.begin(), rz.end(), out.begin() + 32)) {
        ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(inner->texts_seen.load(), 2 * kClients);
  EXPECT_LT(inner->calls.load(), kClients / 2) << "texts were batched";
}

TEST(BatchingEmbedderTest, AFullQueuePushesBackInsteadOfGrowing) {
  auto inner = std::make_shared<CountingEmbedder>(200000);  // 200 ms per batch
  BatcherOptions o;
  o.max_wait_us = 0;
  o.max_batch_size = 1;
  o.max_queue = 4;
  o.workers = 1;
  BatchingEmbedder b(inner, o, nullptr, "test");
  std::vector<std::thread> busy;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    busy.emplace_back([&, i] {
      std::vector<float> out(32);
      const std::string t = "t" + std::to_string(i);
      if (b.Embed({t}, out.data()).ok()) ++ok;
    });
  }
  while (b.queue_depth() < 3) std::this_thread::yield();  // one is being computed
  std::vector<float> out(32 * 5);
  std::vector<std::string> five = {"a", "b", "c", "d", "e"};
  Status st = b.Embed({five[0], five[1], five[2], five[3], five[4]}, out.data());
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_EQ(st.reason(), "queue_full");
  for (auto& t : busy) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST(BatchingEmbedderTest, QueriesGoAheadOfBulkAndDeadlinesAreKept) {
  auto inner = std::make_shared<CountingEmbedder>(100000);  // 100 ms per batch
  BatcherOptions o;
  o.max_wait_us = 0;
  o.max_batch_size = 2;
  o.workers = 1;
  BatchingEmbedder b(inner, o, nullptr, "test");
  std::vector<std::string> bulk;
  for (int i = 0; i < 20; ++i) bulk.push_back("bulk " + std::to_string(i));
  std::thread ingest([&] {
    std::vector<std::string_view> v(bulk.begin(), bulk.end());
    std::vector<float> out(32 * bulk.size());
    EXPECT_TRUE(b.Embed(v, out.data()).ok());
  });
  while (b.queue_depth() < 10) std::this_thread::yield();
  // 20 bulk texts are 1 s of work; a query behind them would wait that long.
  EmbedOptions q;
  q.priority = EmbedPriority::kQuery;
  q.deadline_ns = SystemClock::Default()->NowNanos() + 600 * 1000000LL;
  std::vector<float> out(32);
  std::string text = "urgent";
  Status st = b.EmbedWith({text}, q, out.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(b.queue_depth(), 0u) << "the query finished while bulk texts still waited";
  // A deadline shorter than one batch expires.
  q.deadline_ns = SystemClock::Default()->NowNanos() + 1000000;
  text = "too late";
  EXPECT_EQ(b.EmbedWith({text}, q, out.data()).code(), StatusCode::kDeadlineExceeded);
  ingest.join();
}

TEST(BatchingEmbedderTest, TextsWhoseDeadlinePassedInTheQueueAreDroppedAndCounted) {
  auto inner = std::make_shared<CountingEmbedder>(100000);  // 100 ms per batch
  BatcherOptions o;
  o.max_wait_us = 0;
  o.max_batch_size = 1;
  o.workers = 1;
  BatchingEmbedder b(inner, o, nullptr, "test");
  std::thread busy([&] {
    std::vector<float> out(32);
    EXPECT_TRUE(b.Embed({"occupies the worker"}, out.data()).ok());
  });
  while (inner->calls.load() == 0) std::this_thread::yield();
  EmbedOptions late;
  late.priority = EmbedPriority::kQuery;
  late.deadline_ns = SystemClock::Default()->NowNanos() + 20 * 1000000LL;
  std::vector<float> out(3 * 32);
  EXPECT_EQ(b.EmbedWith({"one", "two", "three"}, late, out.data()).code(), StatusCode::kDeadlineExceeded);
  busy.join();
  // The worker comes back to the queue after its batch and finds the late texts there.
  for (int i = 0; i < 200 && b.queue_depth() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(b.queue_depth(), 0u);
  EXPECT_EQ(inner->texts_seen.load(), 1) << "nothing embedded for a caller that had given up";
  EXPECT_EQ(b.dropped_late(), 3u);
}

// An in-memory tier, so tier ordering and promotion can be checked exactly.
class MapTier final : public CacheTier {
 public:
  explicit MapTier(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void MultiGet(const std::vector<EmbedKey>& keys, int dim, float* out, std::vector<bool>* hit) override {
    hit->assign(keys.size(), false);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = map.find(keys[i].Bytes());
      if (it == map.end() || it->second.size() != static_cast<size_t>(dim)) continue;
      std::copy(it->second.begin(), it->second.end(), out + i * dim);
      (*hit)[i] = true;
    }
  }
  void MultiPut(const std::vector<EmbedKey>& keys, int dim, const float* vecs) override {
    for (size_t i = 0; i < keys.size(); ++i) map[keys[i].Bytes()].assign(vecs + i * dim, vecs + (i + 1) * dim);
  }
  std::map<std::string, std::vector<float>> map;

 private:
  std::string name_;
};

TEST(CachingEmbedderTest, ComputesEachDistinctTextOnceAcrossTiers) {
  ManualClock clock;
  auto inner = std::make_shared<CountingEmbedder>();
  auto l1 = std::make_shared<L1Cache>(1 << 20, 0, &clock);
  auto l2 = std::make_shared<MapTier>("l2");
  MetricsRegistry metrics;
  CachingEmbedder cache(inner, l1, {l2}, &metrics);
  std::vector<float> out(32 * 4);
  ASSERT_TRUE(cache.Embed({"alpha", "beta", "alpha", "  alpha "}, out.data()).ok());
  EXPECT_EQ(inner->texts_seen.load(), 2) << "repeats (and whitespace variants) computed once";
  auto ra = Reference("alpha"), rb = Reference("beta");
  EXPECT_TRUE(std::equal(ra.begin(), ra.end(), out.begin() + 64));
  EXPECT_TRUE(std::equal(rb.begin(), rb.end(), out.begin() + 32));
  EXPECT_EQ(l2->map.size(), 2u) << "computed vectors go to every tier";
  ASSERT_TRUE(cache.Embed({"beta"}, out.data()).ok());
  EXPECT_EQ(inner->texts_seen.load(), 2) << "an L1 hit";

  // A fresh L1 (a restart) finds them in L2 and refills L1.
  auto l1b = std::make_shared<L1Cache>(1 << 20, 0, &clock);
  CachingEmbedder restarted(inner, l1b, {l2}, &metrics);
  ASSERT_TRUE(restarted.Embed({"alpha", "gamma"}, out.data()).ok());
  EXPECT_EQ(inner->texts_seen.load(), 3) << "only gamma is new";
  EXPECT_EQ(l1b->size(), 2u);
  EXPECT_NE(metrics.RenderPrometheus().find("tier=\"l2\",result=\"hit\"} 1"), std::string::npos)
      << metrics.RenderPrometheus();
}

TEST(CachingEmbedderTest, IdenticalTextsInFlightAreComputedOnce) {
  auto inner = std::make_shared<CountingEmbedder>(100000);
  CachingEmbedder cache(inner, nullptr, {}, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      std::vector<float> out(32);
      if (!cache.Embed({"same text"}, out.data()).ok()) ++wrong;
      auto r = Reference("same text");
      if (!std::equal(r.begin(), r.end(), out.begin())) ++wrong;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(inner->texts_seen.load(), 1);
}

TEST(RedisTierTest, ReplicasShareOneCacheAndADownRedisIsOnlyAMiss) {
  RedisServer redis;
  ASSERT_TRUE(redis.running()) << "could not start redis-server";
  RedisTierOptions o;
  o.port = redis.port();
  auto inner = std::make_shared<CountingEmbedder>();
  // Two "replicas" of contextd: separate L1s, one Redis.
  CachingEmbedder a(inner, std::make_shared<L1Cache>(1 << 20, 0, SystemClock::Default()),
                    {std::make_shared<RedisTier>(o)}, nullptr);
  CachingEmbedder b(inner, std::make_shared<L1Cache>(1 << 20, 0, SystemClock::Default()),
                    {std::make_shared<RedisTier>(o)}, nullptr);
  std::vector<float> out(32 * 3), out2(32 * 3);
  ASSERT_TRUE(a.Embed({"one", "two", "three"}, out.data()).ok());
  EXPECT_EQ(inner->texts_seen.load(), 3);
  ASSERT_TRUE(b.Embed({"three", "two", "one"}, out2.data()).ok());
  EXPECT_EQ(inner->texts_seen.load(), 3) << "b found a's vectors in Redis";
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 32, out2.begin() + 64));

  redis.Stop();
  CachingEmbedder c(inner, nullptr, {std::make_shared<RedisTier>(o)}, nullptr);
  ASSERT_TRUE(c.Embed({"four"}, out.data()).ok()) << "Redis down: computed, not failed";
  EXPECT_EQ(inner->texts_seen.load(), 4);
}

}  // namespace
}  // namespace contextd
