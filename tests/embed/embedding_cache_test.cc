#include "embed/embedding_cache.h"

#include <gtest/gtest.h>

#include "embed/cache_key.h"
#include "embed/circuit_breaker.h"
#include "manual_clock.h"

namespace contextd {
namespace {

TEST(CacheKeyTest, NormalisationKeepsMeaningAndSeparatesModels) {
  EXPECT_EQ(NormalizeForCache("  hello \t\n world  "), "hello world");
  // "é" precomposed (NFC) and as e + combining acute (NFD) are one text.
  EXPECT_EQ(MakeEmbedKey("m", "caf\xc3\xa9"), MakeEmbedKey("m", "cafe\xcc\x81"));
  EXPECT_EQ(MakeEmbedKey("m", "a  b"), MakeEmbedKey("m", "a b"));
  EXPECT_FALSE(MakeEmbedKey("m", "a b") == MakeEmbedKey("m", "ab"));
  EXPECT_FALSE(MakeEmbedKey("m1", "text") == MakeEmbedKey("m2", "text"));
  EXPECT_FALSE(MakeEmbedKey("ab", "c") == MakeEmbedKey("a", "bc"));
  EXPECT_EQ(MakeEmbedKey("m", "x").Bytes().size(), 16u);
}

TEST(L1CacheTest, HitsMissesAndTtl) {
  ManualClock clock;
  L1Cache cache(1 << 20, /*ttl_ms=*/1000, &clock, 4);
  const float v[3] = {1, 2, 3};
  float out[3] = {};
  auto k = MakeEmbedKey("m", "a");
  EXPECT_FALSE(cache.Get(k, 3, out));
  cache.Put(k, 3, v);
  ASSERT_TRUE(cache.Get(k, 3, out));
  EXPECT_EQ(out[2], 3.0f);
  EXPECT_FALSE(cache.Get(k, 4, out)) << "another dimension is a miss";
  cache.Put(k, 3, v);
  clock.AdvanceMs(999);
  EXPECT_TRUE(cache.Get(k, 3, out));
  clock.AdvanceMs(2);
  EXPECT_FALSE(cache.Get(k, 3, out)) << "expired";
  EXPECT_EQ(cache.size(), 0u);
}

TEST(L1CacheTest, EvictsLeastRecentlyUsedWithinItsByteBound) {
  ManualClock clock;
  const int dim = 100;  // 400 bytes + bookkeeping per entry
  L1Cache cache(10 * 500, 0, &clock, /*shards=*/1);
  std::vector<float> v(dim, 1.0f), out(dim);
  for (int i = 0; i < 10; ++i) cache.Put(MakeEmbedKey("m", std::to_string(i)), dim, v.data());
  EXPECT_LE(cache.bytes(), 10u * 500);
  const size_t kept = cache.size();
  EXPECT_GE(kept, 9u);
  // Touch "9" (the newest) and "oldest kept"; then add more: the untouched go first.
  const int oldest = 10 - static_cast<int>(kept);
  ASSERT_TRUE(cache.Get(MakeEmbedKey("m", std::to_string(oldest)), dim, out.data()));
  for (int i = 10; i < 15; ++i) cache.Put(MakeEmbedKey("m", std::to_string(i)), dim, v.data());
  EXPECT_TRUE(cache.Get(MakeEmbedKey("m", std::to_string(oldest)), dim, out.data())) << "recently used survives";
  EXPECT_FALSE(cache.Get(MakeEmbedKey("m", std::to_string(oldest + 1)), dim, out.data())) << "LRU evicted";
  EXPECT_LE(cache.bytes(), 10u * 500);
  EXPECT_GT(cache.evictions(), 0u);
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndProbesAfterCooldown) {
  ManualClock clock;
  BreakerOptions o;
  o.consecutive_failures = 3;
  o.window = 100;
  o.cooldown_ms = 500;
  CircuitBreaker b(o, &clock);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.Allow());
    b.OnFailure();
  }
  b.OnSuccess();  // resets the run
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.Allow());
    b.OnFailure();
  }
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.Allow());
  clock.AdvanceMs(499);
  EXPECT_FALSE(b.Allow());
  clock.AdvanceMs(1);
  EXPECT_TRUE(b.Allow()) << "one probe after the cooldown";
  EXPECT_EQ(b.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_FALSE(b.Allow()) << "only one probe at a time";
  b.OnFailure();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen) << "a failed probe reopens";
  EXPECT_FALSE(b.Allow());
  clock.AdvanceMs(500);
  EXPECT_TRUE(b.Allow());
  b.OnSuccess();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(b.Allow());
}

TEST(CircuitBreakerTest, OpensOnFailureRatioOverTheWindow) {
  ManualClock clock;
  BreakerOptions o;
  o.consecutive_failures = 1000;
  o.window = 10;
  o.failure_ratio = 0.5;
  CircuitBreaker b(o, &clock);
  // Alternating results: 50% is not over the ratio.
  for (int i = 0; i < 10; ++i) (i % 2 ? b.OnFailure() : b.OnSuccess());
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  b.OnFailure();  // window now holds 6 failures of 10
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
}

}  // namespace
}  // namespace contextd
