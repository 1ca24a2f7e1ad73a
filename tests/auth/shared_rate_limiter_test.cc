// Rate limits shared through a real redis-server: two limiters stand for two nodes.
#include "auth/shared_rate_limiter.h"

#include <gtest/gtest.h>

#include "manual_clock.h"
#include "redis_server.h"

namespace contextd {
namespace {

class SharedRateLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.running()) << "redis-server is installed by scripts/setup"; }
  std::unique_ptr<SharedRateLimiter> Node() {
    SharedRateLimitOptions o;
    o.redis = RedisEndpoint{"127.0.0.1", redis_.port(), 200};
    return std::make_unique<SharedRateLimiter>(
        o, &clock_, [this] { return nodes_; }, &metrics_);
  }
  RedisServer redis_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  size_t nodes_ = 2;
};

TEST_F(SharedRateLimiterTest, TwoNodesDrawFromOneBucket) {
  auto a = Node(), b = Node();
  const std::vector<RateScope> scopes = {{"tenant:acme", 10, 0, 0, "acme"}, {"key:k1", 100, 0, 0, "acme"}};
  int admitted = 0;
  for (int i = 0; i < 40; ++i) {
    RateDecision d = (i % 2 == 0 ? a : b)->Admit(scopes);
    EXPECT_FALSE(d.degraded);
    if (d.admitted) {
      ++admitted;
      EXPECT_EQ(d.limit_requests, 10) << "the tightest scope is reported";
      EXPECT_EQ(d.remaining_requests, 10 - admitted);
    } else {
      EXPECT_EQ(d.refused_by, "tenant:acme");
      EXPECT_GT(d.retry_after_s, 5.0) << "10 a minute: about 6 s for the next";
      EXPECT_LE(d.retry_after_s, 6.0 + 1e-9);
    }
  }
  EXPECT_EQ(admitted, 10) << "one limit across both nodes, not 10 on each";
  // A refusal by the tenant cost the key nothing, on either node: a key of another
  // tenant is untouched.
  const std::vector<RateScope> other = {{"tenant:beta", 3, 0, 0, "beta"}};
  EXPECT_TRUE(a->Admit(other).admitted);
  EXPECT_TRUE(b->Admit(other).admitted);
  EXPECT_TRUE(a->Admit(other).admitted);
  EXPECT_FALSE(b->Admit(other).admitted);
  // A request shed after admission is given back, wherever it is refunded.
  b->Refund(other);
  b->Drain();
  EXPECT_TRUE(a->Admit(other).admitted);
}

TEST_F(SharedRateLimiterTest, TokensAreReservedAndSettledAcrossNodes) {
  auto a = Node(), b = Node();
  const std::vector<RateScope> scopes = {{"tenant:acme", 100, 1000, 0, "acme"}};
  ASSERT_TRUE(a->Admit(scopes).admitted);
  RateDecision d = a->Reserve(scopes, 600);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.limit_tokens, 1000);
  EXPECT_EQ(d.remaining_tokens, 400);
  ASSERT_TRUE(b->Admit(scopes).admitted);
  RateDecision short_of = b->Reserve(scopes, 600);
  EXPECT_FALSE(short_of.admitted);
  EXPECT_EQ(short_of.refused_by, "tenant:acme");
  EXPECT_NEAR(short_of.retry_after_s, 12.0, 0.5) << "200 tokens short at 1000 a minute";
  EXPECT_EQ(short_of.remaining_requests, 99) << "the refused request's charge was given back";
  // Node a used only 300 of its 600: the rest returns, and b can have it.
  a->Settle(scopes, -300);
  a->Drain();
  ASSERT_TRUE(b->Admit(scopes).admitted);
  EXPECT_TRUE(b->Reserve(scopes, 650).admitted);
  // More than the bucket ever holds is refused as such, without asking Redis.
  RateDecision huge = b->Reserve(scopes, 1001);
  EXPECT_TRUE(huge.too_large);
  EXPECT_FALSE(huge.admitted);
}

TEST_F(SharedRateLimiterTest, InFlightBoundsStayPerNode) {
  auto a = Node(), b = Node();
  const std::vector<RateScope> scopes = {{"tenant:acme", 100, 0, 1, "acme"}};
  ASSERT_TRUE(a->Admit(scopes).admitted);
  RateDecision busy = a->Admit(scopes);
  EXPECT_FALSE(busy.admitted);
  EXPECT_TRUE(busy.inflight);
  EXPECT_TRUE(b->Admit(scopes).admitted) << "the other node has its own place";
  a->Settle(scopes, 0);
  EXPECT_TRUE(a->Admit(scopes).admitted);
}

TEST_F(SharedRateLimiterTest, RedisDownEachNodeEnforcesItsShareThenSharesAgain) {
  auto a = Node(), b = Node();
  const std::vector<RateScope> scopes = {{"tenant:acme", 10, 0, 0, "acme"}};
  ASSERT_TRUE(a->Admit(scopes).admitted);
  redis_.Stop();
  // Two nodes: each may admit half the limit on its own.
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    RateDecision d = a->Admit(scopes);
    EXPECT_TRUE(d.degraded);
    admitted += d.admitted ? 1 : 0;
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_TRUE(a->degraded());
  EXPECT_NE(metrics_.RenderPrometheus().find("contextd_rate_limits_degraded 1"), std::string::npos);
  // Redis back: after the retry interval, decisions are shared again.
  redis_.Start();
  ASSERT_TRUE(redis_.running());
  clock_.AdvanceMs(1000);
  RateDecision back = a->Admit(scopes);
  EXPECT_FALSE(back.degraded);
  EXPECT_TRUE(back.admitted);
  EXPECT_FALSE(a->degraded());
  EXPECT_NE(metrics_.RenderPrometheus().find("contextd_rate_limits_degraded 0"), std::string::npos);
  // (The restarted Redis kept nothing: its bucket started full.)
  EXPECT_EQ(back.remaining_requests, 9);
}

}  // namespace
}  // namespace contextd
