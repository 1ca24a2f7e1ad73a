// The cache hit verifier on the wrong hits users report against semantic caches, and on
// paraphrases it must let through.
#include "cache/verifier.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

Verification Check(const std::string& query, const std::string& cached, float similarity = 0.95f,
                   const VerifyPolicy& policy = VerifyPolicy()) {
  return Verify(AnalyzePrompt(query), AnalyzePrompt(cached), similarity, policy);
}

TEST(PromptFactsTest, NumbersNegationsNamesDirectionsQuestions) {
  const PromptFacts f = AnalyzePrompt("Is it true that Paris has 2,000,000 people and twenty five parks in May?");
  EXPECT_EQ(f.numbers, (std::vector<std::string>{"2000000people", "25", "month:5"}));
  EXPECT_EQ(f.names, (std::vector<std::string>{"paris"}));
  EXPECT_EQ(AnalyzePrompt("I don't like it, not at all").negations, 2);
  EXPECT_EQ(AnalyzePrompt("How many moons does Mars have?").question, "quantity");
  EXPECT_EQ(AnalyzePrompt("Who wrote Hamlet?").question, "who");
  EXPECT_EQ(AnalyzePrompt("What is Hamlet about?").question, "");
  EXPECT_EQ(AnalyzePrompt("How far is it from Boston to Chicago?").directions,
            (std::vector<std::pair<std::string, std::string>>{{"boston", "chicago"}}));
  EXPECT_EQ(AnalyzePrompt("call parse_json() in src/main.cc with $5").names,
            (std::vector<std::string>{"parse_json", "src/main.cc"}));
  EXPECT_EQ(AnalyzePrompt("costs $5").numbers, (std::vector<std::string>{"5usd"}));
  EXPECT_EQ(AnalyzePrompt("runs 5 km").numbers, (std::vector<std::string>{"5km"}));
}

TEST(VerifierTest, RefusesTheReportedWrongHits) {
  Verification v = Check("What is 2+2?", "What is 2+3?");
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(v.vetoed_by, "numbers");
  EXPECT_EQ(v.evidence["query"].Dump(), "[\"expr:2+2\"]") << v.evidence.Dump();
  EXPECT_EQ(v.evidence["cached"].Dump(), "[\"3\",\"expr:2+3\"]");
  EXPECT_EQ(Check("turn on dark mode", "turn off dark mode").vetoed_by, "antonyms");
  EXPECT_EQ(Check("What is the function of TV?", "What is the function of money?").passed, false);
  EXPECT_EQ(Check("Is coffee good for you?", "Is coffee not good for you?").vetoed_by, "negation");
  EXPECT_EQ(Check("Who founded Microsoft?", "Who founded Apple?").vetoed_by, "names");
  EXPECT_EQ(Check("How do I convert USD to EUR?", "How do I convert EUR to USD?").vetoed_by, "direction");
  EXPECT_EQ(Check("Is a lion stronger than a tiger?", "Is a tiger stronger than a lion?").vetoed_by, "direction");
  EXPECT_EQ(Check("When did Rome fall?", "Where did Rome fall?").passed, false);
  EXPECT_EQ(Check("What year was Python released in March 1991?", "What year was Python released?").vetoed_by,
            "numbers");
}

TEST(VerifierTest, PassesParaphrases) {
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"How do I learn Python quickly?", "What is the fastest way to learn Python?"},
           {"What is the capital of France?", "What's the capital city of France?"},
           {"How can I lose weight fast?", "How can I lose weight quickly?"},
           {"Why is the sky blue?", "Why does the sky look blue?"},
           {"How many people live in Tokyo?", "What is the population of Tokyo?"}}) {
    const Verification v = Check(a, b, 0.93f);
    EXPECT_TRUE(v.vetoed_by.empty()) << a << " | " << b << ": " << v.vetoed_by << " " << v.evidence.Dump();
  }
  // Capitalisation is not a name's identity: "python" and "Python" are the same word.
  EXPECT_TRUE(Check("how do i learn python?", "How do I learn Python?").passed);
  EXPECT_TRUE(Check("Tell me about Rome.", "Tell me about Rome.", 1.0f).passed);
}

TEST(VerifierTest, PolicyTurnsSignalsOffOrToPenalties) {
  VerifyPolicy policy;
  policy[Signal::kNumbers] = SignalPolicy::kOff;
  EXPECT_TRUE(Check("What is 2+2?", "What is 2+3?", 0.98f, policy).vetoed_by.empty());
  policy[Signal::kNumbers] = SignalPolicy::kPenalty;
  const Verification penalised = Check("What is 2+2?", "What is 2+3?", 0.98f, policy);
  EXPECT_TRUE(penalised.vetoed_by.empty());
  EXPECT_LT(penalised.confidence, Check("What is 2+2?", "What is 2+2?", 0.98f, policy).confidence);
  auto parsed = VerifyPolicy::FromJson(*ParseJson(R"({"numbers":"penalty","min_confidence":0.7})"), VerifyPolicy());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[Signal::kNumbers], SignalPolicy::kPenalty);
  EXPECT_EQ((*parsed)[Signal::kNegation], SignalPolicy::kVeto) << "absent members keep the base's";
  EXPECT_FLOAT_EQ(parsed->min_confidence, 0.7f);
  EXPECT_EQ(VerifyPolicy::FromJson(*ParseJson(R"({"colour":"veto"})"), VerifyPolicy())
                .status()
                .message()
                .find("unknown field 'verify.colour'"),
            0u);
  EXPECT_FALSE(VerifyPolicy::FromJson(*ParseJson(R"({"names":"maybe"})"), VerifyPolicy()).ok());
  EXPECT_FALSE(VerifyPolicy::FromJson(*ParseJson(R"({"min_confidence":2})"), VerifyPolicy()).ok());
  auto round = VerifyPolicy::FromJson(parsed->ToJson(), VerifyPolicy());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->ToJson().Dump(), parsed->ToJson().Dump());
}

}  // namespace
}  // namespace contextd
