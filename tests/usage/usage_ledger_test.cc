// The price table and the usage ledger: totals by hour, grouped queries, spend per period,
// and what survives a reopen (and a torn last line).
#include "usage/usage_ledger.h"

#include <fstream>

#include <gtest/gtest.h>

#include "manual_clock.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr int64_t kHour = 3600'000;
// 2026-12-04T10:30:00Z
constexpr int64_t kNow = 1796380200000;

TEST(PriceTableTest, TokensByModelPlusAPricePerRequest) {
  auto p = PriceTable::FromJson(*ParseJson(
      R"({"embedding_per_1k_tokens":{"default":0.001,"provider:openai":0.00002},"requests":{"query.hybrid":0.0002}})"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_DOUBLE_EQ(p->Cost("query.hybrid", "provider:openai", 5000), 0.0002 + 0.0001);
  EXPECT_DOUBLE_EQ(p->Cost("embeddings", "glove", 2000), 0.002) << "an unlisted model pays the default";
  EXPECT_DOUBLE_EQ(p->Cost("query.keyword", "", 0), 0);
  EXPECT_FALSE(PriceTable::FromJson(*ParseJson(R"({"requests":{"x":-1}})")).ok());
  EXPECT_FALSE(PriceTable::FromJson(*ParseJson(R"({"per_gb":{}})")).ok());
  EXPECT_EQ(p->storage_per_gb_month(), 0) << "storage is free unless priced";
  auto storage = PriceTable::FromJson(*ParseJson(R"({"storage_per_gb_month":0.25})"));
  ASSERT_TRUE(storage.ok()) << storage.status().ToString();
  EXPECT_DOUBLE_EQ(storage->storage_per_gb_month(), 0.25);
  EXPECT_FALSE(PriceTable::FromJson(*ParseJson(R"({"storage_per_gb_month":-1})")).ok());
  EXPECT_FALSE(PriceTable::FromJson(*ParseJson(R"({"storage_per_gb_month":"1"})")).ok());
}

TEST(UsageLedgerTest, PeriodsStartAtUtcDayAndMonth) {
  EXPECT_EQ(DayStartMs(kNow), 1796342400000);    // 2026-12-04T00:00:00Z
  EXPECT_EQ(MonthStartMs(kNow), 1796083200000);  // 2026-12-01T00:00:00Z
}

TEST(UsageLedgerTest, GroupsByAnyDimensionAndSurvivesAReopen) {
  TempDir dir;
  const std::string path = dir.path() + "/usage.jsonl";
  ManualClock clock;
  {
    auto ledger = UsageLedger::Open(path, &clock);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    (*ledger)->Record({"acme", "k1", "u1", "docs", "glove", "query.hybrid", 10, 0.5, kNow});
    (*ledger)->Record({"acme", "k1", "u2", "docs", "glove", "query.hybrid", 20, 0.5, kNow + 10});
    (*ledger)->Record({"acme", "k2", "", "kb", "", "upsert", 100, 1.0, kNow + kHour});
    (*ledger)->Record({"beta", "k3", "", "docs", "", "upsert", 7, 2.0, kNow - 2 * 24 * kHour});
    EXPECT_DOUBLE_EQ((*ledger)->Spent("acme", "", false, kNow), 2.0);
    EXPECT_DOUBLE_EQ((*ledger)->Spent("acme", "k1", false, kNow), 1.0);
    EXPECT_DOUBLE_EQ((*ledger)->Spent("beta", "", false, kNow), 0) << "two days ago: another day";
    EXPECT_DOUBLE_EQ((*ledger)->Spent("beta", "", true, kNow), 2.0) << "the same month";
  }  // closed: flushed
  // A crash mid-append leaves a torn line: it is skipped, the rest is read.
  std::ofstream(path, std::ios::app) << "[1796380200000,\"acme\",\"k";
  auto ledger = UsageLedger::Open(path, &clock);
  ASSERT_TRUE(ledger.ok());
  UsageQuery q;
  q.from_ms = kNow - kHour;
  q.to_ms = kNow + 2 * kHour;
  q.group_by = {"tenant", "operation"};
  auto rows = (*ledger)->Query(q);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].group.at("operation"), "query.hybrid");
  EXPECT_EQ(rows[0].requests, 2);
  EXPECT_EQ(rows[0].tokens, 30);
  EXPECT_DOUBLE_EQ(rows[0].cost_usd, 1.0);
  EXPECT_EQ(rows[0].start_ms, kNow - kNow % kHour);
  EXPECT_EQ(rows[1].group.at("operation"), "upsert");
  EXPECT_EQ(rows[1].start_ms, kNow - kNow % kHour + kHour);
  // By day, one tenant's key: one row.
  q.granularity_ms = 24 * kHour;
  q.group_by = {"user"};
  q.tenant = "acme";
  q.key = "k1";
  rows = (*ledger)->Query(q);
  ASSERT_EQ(rows.size(), 2u) << "u1 and u2";
  EXPECT_EQ(rows[0].start_ms, DayStartMs(kNow));
  EXPECT_EQ(rows[0].group.at("user"), "u1");
  EXPECT_DOUBLE_EQ((*ledger)->Spent("acme", "", false, kNow), 2.0) << "spend is rebuilt from the file";
}

}  // namespace
}  // namespace contextd
