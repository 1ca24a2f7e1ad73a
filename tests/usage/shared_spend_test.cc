// Spend shared through a real redis-server: two ledgers stand for two nodes, and each sees
// what the other spent once a round trip has carried it.
#include "usage/shared_spend.h"

#include <gtest/gtest.h>

#include "manual_clock.h"
#include "redis_server.h"
#include "test_util.h"
#include "usage/usage_ledger.h"

namespace contextd {
namespace {

constexpr int64_t kNow = 1796380200000;  // 2026-12-04T10:30:00Z

TEST(SharedSpendTest, TwoNodesSeeOneTotalAndFallBackToTheirOwnWithoutRedis) {
  RedisServer redis;
  ASSERT_TRUE(redis.running());
  TempDir dir;
  ManualClock clock;
  const RedisEndpoint endpoint{"127.0.0.1", redis.port(), 200};
  // Long intervals: the test drives the round trips itself (Sync).
  SharedSpend spend_a(endpoint, "test:spend:", std::chrono::hours(1));
  SharedSpend spend_b(endpoint, "test:spend:", std::chrono::hours(1));
  auto a = UsageLedger::Open(dir.path() + "/a.jsonl", &clock, &spend_a);
  auto b = UsageLedger::Open(dir.path() + "/b.jsonl", &clock, &spend_b);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->Record({"acme", "k1", "", "docs", "", "upsert", 0, 0.6, kNow});
  (*b)->Record({"acme", "k2", "", "docs", "", "upsert", 0, 0.7, kNow});
  EXPECT_DOUBLE_EQ((*a)->Spent("acme", "", false, kNow), 0.6) << "before any round trip: its own";
  spend_a.Sync();
  spend_b.Sync();
  (void)(*a)->Spent("acme", "", false, kNow);  // watched: refreshed by the next round trip
  spend_a.Sync();
  EXPECT_NEAR((*a)->Spent("acme", "", false, kNow), 1.3, 1e-9) << "the other node's spend is seen";
  EXPECT_NEAR((*b)->Spent("acme", "", true, kNow), 1.3, 1e-9) << "the month too";
  // A scope this node never touched is unknown until its first refresh (a budget's margin).
  EXPECT_DOUBLE_EQ((*b)->Spent("acme", "k1", false, kNow), 0);
  spend_b.Sync();
  EXPECT_NEAR((*b)->Spent("acme", "k1", false, kNow), 0.6, 1e-9) << "a key's spend is shared as well";
  EXPECT_TRUE(spend_a.reachable());

  // Redis gone: what was heard stays, new spend is counted locally and sent once it is back.
  redis.Stop();
  (*a)->Record({"acme", "k1", "", "docs", "", "upsert", 0, 0.5, kNow});
  spend_a.Sync();
  EXPECT_FALSE(spend_a.reachable());
  EXPECT_NEAR((*a)->Spent("acme", "", false, kNow), 1.8, 1e-9);
  redis.Start();
  ASSERT_TRUE(redis.running());
  spend_a.Sync();
  EXPECT_TRUE(spend_a.reachable());
  // This Redis restarted empty (no persistence here): it forgot the other node's spend,
  // and this node's own (0.6 + 0.5) is the floor.
  (void)(*a)->Spent("acme", "", false, kNow);
  spend_a.Sync();
  EXPECT_NEAR((*a)->Spent("acme", "", false, kNow), 1.1, 1e-9);
}

}  // namespace
}  // namespace contextd
