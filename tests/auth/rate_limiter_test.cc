// Token buckets checked together, with an injected clock.
#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

#include "manual_clock.h"

namespace contextd {
namespace {

TEST(RateLimiterTest, AllScopesPassOrNoneIsCharged) {
  ManualClock clock;
  RateLimiter limiter(&clock);
  const std::vector<RateScope> both = {{"tenant:acme", 6, 0}, {"key:k1", 3, 0}};
  for (int i = 0; i < 3; ++i) {
    RateDecision d = limiter.Admit(both);
    ASSERT_TRUE(d.admitted) << i;
    EXPECT_EQ(d.limit_requests, 3) << "the tightest scope is reported";
    EXPECT_EQ(d.remaining_requests, 2 - i);
  }
  RateDecision refused = limiter.Admit(both);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refused_by, "key:k1");
  EXPECT_NEAR(refused.retry_after_s, 20.0, 1e-6) << "3 per minute: one every 20 s";
  // The refusal cost the tenant nothing: another key of the tenant still has 3 left.
  const std::vector<RateScope> other = {{"tenant:acme", 6, 0}, {"key:k2", 100, 0}};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit(other).admitted) << i;
  EXPECT_FALSE(limiter.Admit(other).admitted) << "the tenant's 6 are spent";
  clock.AdvanceMs(20000);
  EXPECT_TRUE(limiter.Admit(both).admitted) << "one request refilled in 20 s";
  EXPECT_FALSE(limiter.Admit(both).admitted);
}

TEST(RateLimiterTest, DeclaredTokensAreReservedInEveryScopeOrNone) {
  ManualClock clock;
  RateLimiter limiter(&clock);
  const std::vector<RateScope> both = {{"tenant:acme", 10, 1000}, {"key:k1", 10, 100}};
  ASSERT_TRUE(limiter.Admit(both).admitted);
  RateDecision d = limiter.Reserve(both, 80);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.remaining_tokens, 20) << "the key is the tightest";
  limiter.Settle(both, 0);
  ASSERT_TRUE(limiter.Admit(both).admitted);
  d = limiter.Reserve(both, 50);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.refused_by, "key:k1");
  EXPECT_NEAR(d.retry_after_s, 30 * 60.0 / 100, 1e-6);
  EXPECT_EQ(d.remaining_requests, 9) << "the refused request's charge came back";
  limiter.Settle(both, 0);
  // The tenant was not charged for the refusal: 920 of its 1000 are left.
  const std::vector<RateScope> tenant = {{"tenant:acme", 10, 1000}};
  ASSERT_TRUE(limiter.Admit(tenant).admitted);
  d = limiter.Reserve(tenant, 920);
  EXPECT_TRUE(d.admitted);
  limiter.Settle(tenant, -900);  // it used only 20 of them
  ASSERT_TRUE(limiter.Admit(tenant).admitted);
  EXPECT_TRUE(limiter.Reserve(tenant, 900).admitted) << "the unused part was given back";
  // More than a bucket ever holds: refused as such, whatever the balance.
  const std::vector<RateScope> fresh = {{"key:k2", 10, 100}};
  ASSERT_TRUE(limiter.Admit(fresh).admitted);
  d = limiter.Reserve(fresh, 101);
  EXPECT_FALSE(d.admitted);
  EXPECT_TRUE(d.too_large);
  EXPECT_EQ(d.limit_tokens, 100);
}

TEST(RateLimiterTest, TokensAreSettledAfterTheWork) {
  ManualClock clock;
  RateLimiter limiter(&clock);
  const std::vector<RateScope> scopes = {{"key:k", 0, 600}};
  EXPECT_TRUE(limiter.Admit(scopes).admitted);
  limiter.Settle(scopes, 900);  // used more than the bucket held
  RateDecision d = limiter.Admit(scopes);
  EXPECT_FALSE(d.admitted);
  EXPECT_NEAR(d.retry_after_s, 301 * 60.0 / 600, 1e-6) << "until the balance is positive again";
  clock.AdvanceMs(31000);
  EXPECT_TRUE(limiter.Admit(scopes).admitted);
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

TEST(RateLimiterTest, RequestsInFlightAreBoundedAndFreedWhenTheyEnd) {
  ManualClock clock;
  RateLimiter limiter(&clock);
  const std::vector<RateScope> scopes = {{"tenant:acme", 0, 0, 2}};
  EXPECT_TRUE(limiter.Admit(scopes).admitted);
  EXPECT_TRUE(limiter.Admit(scopes).admitted);
  RateDecision full = limiter.Admit(scopes);
  EXPECT_FALSE(full.admitted);
  EXPECT_TRUE(full.inflight);
  EXPECT_EQ(full.refused_by, "tenant:acme");
  limiter.Settle(scopes, 0);  // one ends
  EXPECT_TRUE(limiter.Admit(scopes).admitted);
  // A request refused by another scope takes no place in this one.
  const std::vector<RateScope> both = {{"tenant:acme", 0, 0, 10}, {"key:k", 1, 0, 0}};
  limiter.Settle(scopes, 0);
  limiter.Settle(scopes, 0);
  EXPECT_TRUE(limiter.Admit(both).admitted);   // acme: 1 in flight
  EXPECT_FALSE(limiter.Admit(both).admitted);  // the key's rpm
  const std::vector<RateScope> tenant = {{"tenant:acme", 0, 0, 10}};
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(limiter.Admit(tenant).admitted) << i;  // 10 in flight
  EXPECT_FALSE(limiter.Admit(tenant).admitted);
}

}  // namespace
}  // namespace contextd
