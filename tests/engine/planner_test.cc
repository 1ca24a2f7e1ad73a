// The query planner: complexity indicators pick the strategy; plans climb their steps and
// fall back to the cheaper strategy's results when the deadline passes (injected clock)
// or a step fails, instead of failing the request.
#include "engine/planner.h"
#include "server/request_codec.h"
#include "server/response_codec.h"

#include <gtest/gtest.h>

#include "engine/test_engine.h"
#include "manual_clock.h"
#include "test_util.h"

namespace contextd {
namespace {

bool Has(const QueryAnalysis& a, const std::string& indicator) {
  return std::find(a.indicators.begin(), a.indicators.end(), indicator) != a.indicators.end();
}

TEST(AnalyzeQueryTest, ShortFactualQueriesAreSimple) {
  for (const char* q : {"aspirin dosage", "What is a glacier?", "", "???", "  "}) {
    QueryAnalysis a = AnalyzeQuery(q);
    EXPECT_EQ(a.strategy, Strategy::kSimple) << q;
    EXPECT_TRUE(a.indicators.empty()) << q;
    EXPECT_TRUE(a.sub_queries.empty()) << q;
  }
}

TEST(AnalyzeQueryTest, IndicatorsAddUpToTheStrategy) {
  QueryAnalysis cmp = AnalyzeQuery("aspirin versus ibuprofen for headaches");
  EXPECT_TRUE(Has(cmp, "comparative"));
  EXPECT_EQ(cmp.strategy, Strategy::kModerate);
  EXPECT_EQ(cmp.sub_queries, std::vector<std::string>({"aspirin", "ibuprofen for headaches"}));

  QueryAnalysis t = AnalyzeQuery("glacier retreat since 1990");
  EXPECT_TRUE(Has(t, "temporal"));
  EXPECT_EQ(t.strategy, Strategy::kSimple);  // 0.5 alone

  QueryAnalysis complex =
      AnalyzeQuery("How did glacier retreat change since 1990, and why do alpine and arctic glaciers differ?");
  EXPECT_TRUE(Has(complex, "multi_part"));
  EXPECT_TRUE(Has(complex, "temporal"));
  EXPECT_TRUE(Has(complex, "synthesis"));
  EXPECT_EQ(complex.strategy, Strategy::kComplex);
  EXPECT_GE(complex.sub_queries.size(), 2u);

  std::string long_query;
  for (int i = 0; i < 30; ++i) long_query += "word" + std::to_string(i) + " ";
  QueryAnalysis l = AnalyzeQuery(long_query);
  EXPECT_TRUE(Has(l, "long"));
  EXPECT_FLOAT_EQ(l.complexity, 1.0f);
  EXPECT_EQ(l.strategy, Strategy::kModerate);
}

TEST(AnalyzeQueryTest, DecompositionNeedsTwoToFourParts) {
  EXPECT_TRUE(AnalyzeQuery("a and b and c and d and e").sub_queries.empty());  // five parts
  EXPECT_EQ(AnalyzeQuery("cats; dogs").sub_queries.size(), 2u);
  EXPECT_TRUE(AnalyzeQuery("cats and").sub_queries.empty());  // one part with words
}

class PlannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), &metrics_);
    c_ = *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "plan", J(R"({"embedder":"glove"})"));
    UpsertResult r;
    ASSERT_TRUE(c_->Upsert(*ParseUpsertRequest(J(R"({"documents":[
      {"id":"aspirin","text":"Aspirin dosage for adults with headaches is usually 300 to 600 milligrams."},
      {"id":"stocks","text":"Stock markets fell as investors feared rising interest rates."},
      {"id":"galaxy","text":"The telescope observed a distant galaxy and several nebulae."},
      {"id":"pets","text":"Kittens and puppies make wonderful pets for families."}]})"),
                                               c_->config().dim, false),
                           &r)
                    .ok());
  }
  // Each search costs `ms` of the manual clock; the call numbered `fail_on` fails.
  SearchFn Search(int64_t ms, int fail_on = -1) {
    return [this, ms, fail_on](const QueryRequest& q) -> StatusOr<QueryResult> {
      clock_.AdvanceMs(ms);
      if (++calls_ == fail_on) return Unavailable("provider down");
      return c_->Query(q);
    };
  }
  StatusOr<PlannedSearch> Run(Strategy s, const std::string& text, const SearchFn& fn, int64_t budget_ms = 0,
                              PlanOptions options = {}) {
    QueryRequest base;
    base.text = text;
    base.k = 3;
    base.mode = QueryMode::kHybrid;
    return RunPlan(s, AnalyzeQuery(text), base, false, true, c_->config().sharding, budget_ms, clock_, fn, options);
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<Collection> c_;
  ManualClock clock_;
  int calls_ = 0;
};

TEST_F(PlannerTest, EachStrategyRunsItsSteps) {
  auto simple = Run(Strategy::kSimple, "aspirin dosage", Search(1));
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(simple->searches, 1u);
  EXPECT_EQ(simple->answered_by, Strategy::kSimple);
  EXPECT_EQ(simple->result.hits[0].doc_id, "aspirin");

  auto moderate = Run(Strategy::kModerate, "aspirin dosage", Search(1));
  ASSERT_TRUE(moderate.ok());
  EXPECT_EQ(moderate->searches, 2u);
  EXPECT_EQ(moderate->answered_by, Strategy::kModerate);
  EXPECT_FALSE(moderate->fallback);

  // Decomposed: each part finds its own document, and the fused list has both on top.
  auto complex = Run(Strategy::kComplex, "aspirin dosage and stock markets", Search(1));
  ASSERT_TRUE(complex.ok());
  EXPECT_EQ(complex->searches, 4u);  // simple, moderate, two parts
  EXPECT_EQ(complex->answered_by, Strategy::kComplex);
  EXPECT_TRUE(complex->result.rank_fused);
  std::set<std::string> top2 = {complex->result.hits[0].doc_id, complex->result.hits[1].doc_id};
  EXPECT_EQ(top2, std::set<std::string>({"aspirin", "stocks"}));
}

TEST_F(PlannerTest, DeadlineFallsBackToTheCheaperStrategy) {
  PlanOptions o;
  o.deadline_ms[2] = 250;
  // 100 ms a search: simple ends at 100, moderate at 200, the first part at 300; the
  // second part would start past 250, so the answer is moderate's.
  auto r = Run(Strategy::kComplex, "aspirin dosage and stock markets", Search(100), 0, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->fallback);
  EXPECT_EQ(r->fallback_reason, "deadline");
  EXPECT_EQ(r->strategy, Strategy::kComplex);
  EXPECT_EQ(r->answered_by, Strategy::kModerate);
  EXPECT_EQ(r->searches, 3u);
  EXPECT_FALSE(r->result.hits.empty());
  // The caller's own budget is tighter still: only the floor.
  auto tight = Run(Strategy::kComplex, "aspirin dosage and stock markets", Search(100), 50, o);
  ASSERT_TRUE(tight.ok());
  EXPECT_TRUE(tight->fallback);
  EXPECT_EQ(tight->answered_by, Strategy::kSimple);
  EXPECT_EQ(tight->searches, 1u);
  // Exactly at the deadline counts as passed.
  o.deadline_ms[1] = 100;
  auto edge = Run(Strategy::kModerate, "aspirin dosage", Search(100), 0, o);
  EXPECT_TRUE(edge->fallback);
  EXPECT_EQ(edge->answered_by, Strategy::kSimple);
  Json j = PlanJson(*edge);
  EXPECT_EQ(j.Find("strategy")->as_string(), "moderate");
  EXPECT_EQ(j.Find("answered_by")->as_string(), "simple");
  EXPECT_TRUE(j.Find("fallback")->as_bool());
}

TEST_F(PlannerTest, AFailingStepFallsBackAndAFailingFloorFails) {
  auto r = Run(Strategy::kModerate, "aspirin dosage", Search(1, /*fail_on=*/2));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->fallback);
  EXPECT_EQ(r->fallback_reason, "provider down");
  EXPECT_EQ(r->answered_by, Strategy::kSimple);
  calls_ = 0;
  auto floor = Run(Strategy::kModerate, "aspirin dosage", Search(1, /*fail_on=*/1));
  EXPECT_FALSE(floor.ok());
}

}  // namespace
}  // namespace contextd
