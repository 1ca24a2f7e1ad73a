// What feedback teaches: the namespace's learned threshold (the lowest confidence whose
// observed hits keep the error bound), Wilson's bound itself, and fresh responses compared
// with cached ones.
#include "cache/feedback.h"

#include <random>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(FeedbackTest, WilsonUpperBoundMatchesTheFormula) {
  EXPECT_NEAR(WilsonUpper(0, 20), 0.1611, 1e-3);  // no error in 20: still up to 16% at 95%
  EXPECT_NEAR(WilsonUpper(5, 100), 0.1118, 1e-3);
  EXPECT_DOUBLE_EQ(WilsonUpper(0, 0), 1.0);
  EXPECT_LT(WilsonUpper(10, 1000), 0.02);
}

TEST(FeedbackTest, TheThresholdIsTheLowestThatKeepsTheBound) {
  // Hits below 0.5 confidence are wrong half the time, above it wrong 1 in 100.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<FeedbackObservation> obs;
  for (int i = 0; i < 2000; ++i) {
    const float c = u(rng);
    obs.push_back({c, u(rng) < (c < 0.5f ? 0.5f : 0.99f)});
  }
  const LearnedThreshold t = LearnThreshold(obs, 0.05);
  ASSERT_TRUE(t.min_confidence.has_value());
  EXPECT_GT(*t.min_confidence, 0.4f);
  EXPECT_LT(*t.min_confidence, 0.55f);
  EXPECT_LE(t.error_bound, 0.05);
  // What it serves keeps the bound: the observed error rate at or above it is lower still.
  size_t n = 0, wrong = 0;
  for (const auto& o : obs) {
    if (o.confidence < *t.min_confidence) continue;
    ++n;
    wrong += o.correct ? 0 : 1;
  }
  EXPECT_EQ(n, t.support);
  EXPECT_LT(static_cast<double>(wrong) / n, 0.05);
  // A stricter bound asks for more confidence.
  const LearnedThreshold strict = LearnThreshold(obs, 0.02);
  ASSERT_TRUE(strict.min_confidence.has_value());
  EXPECT_GE(*strict.min_confidence, *t.min_confidence);
}

TEST(FeedbackTest, TooLittleFeedbackTeachesNothingAndAnUnmeetableBoundServesNothing) {
  std::vector<FeedbackObservation> few(kFeedbackMinSupport - 1, {0.9f, true});
  EXPECT_FALSE(LearnThreshold(few, 0.05).min_confidence.has_value());
  // Wrong a third of the time at every confidence: no threshold keeps 5%.
  std::vector<FeedbackObservation> bad;
  for (int i = 0; i < 300; ++i) bad.push_back({static_cast<float>(i) / 300, i % 3 != 0});
  const LearnedThreshold t = LearnThreshold(bad, 0.05);
  ASSERT_TRUE(t.min_confidence.has_value());
  EXPECT_GT(*t.min_confidence, 1.0f);
  EXPECT_GT(t.error_bound, 0.05);
}

TEST(FeedbackTest, FreshResponsesAreComparedWithTheCachedOnes) {
  EXPECT_TRUE(ResponsesAgree(Json("The answer is 4."), Json("the  answer is 4.")));
  // An OpenAI chat completion is compared by its first choice's text.
  Json completion = *ParseJson(R"({"choices":[{"message":{"role":"assistant","content":"The answer is 4."}}]})");
  EXPECT_TRUE(ResponsesAgree(completion, Json("The answer is 4.")));
  EXPECT_FALSE(ResponsesAgree(Json("The answer is 4."), Json("The answer is 5.")));
  EXPECT_FALSE(ResponsesAgree(Json("Dark mode is on."), Json("Dark mode is not on.")));
  EXPECT_FALSE(ResponsesAgree(Json("Paris is the capital of France."), Json("Use a hash map keyed by user id.")));
  EXPECT_TRUE(ResponsesAgree(Json("Restart the router, then reconnect to the network."),
                             Json("Restart the router and then reconnect to the network.")));
}

}  // namespace
}  // namespace contextd
