// Usage queries and rows through JSON (how nodes of a cluster exchange them), and rows from
// several nodes summed per period and group.
#include "usage/usage_wire.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(UsageWireTest, QueriesAndRowsRoundTrip) {
  UsageQuery q;
  q.tenant = "acme";
  q.key = "k1";
  q.from_ms = 1000;
  q.to_ms = 9000;
  q.granularity_ms = 86400000;
  q.group_by = {"operation", "user"};
  auto back = UsageQueryFromJson(*ParseJson(UsageQueryToJson(q).Dump()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->tenant, "acme");
  EXPECT_EQ(back->key, "k1");
  EXPECT_EQ(back->from_ms, 1000);
  EXPECT_EQ(back->to_ms, 9000);
  EXPECT_EQ(back->granularity_ms, 86400000);
  EXPECT_EQ(back->group_by, q.group_by);
  EXPECT_FALSE(UsageQueryFromJson(*ParseJson(R"({"tenant":"a"})")).ok());

  std::vector<UsageRow> rows = {{3600000, {{"operation", "query"}}, 5, 100, 0.25}};
  auto rows_back = UsageRowsFromJson(*ParseJson(UsageRowsToJson(rows).Dump()));
  ASSERT_TRUE(rows_back.ok());
  ASSERT_EQ(rows_back->size(), 1u);
  EXPECT_EQ((*rows_back)[0].group.at("operation"), "query");
  EXPECT_EQ((*rows_back)[0].requests, 5);
  EXPECT_EQ((*rows_back)[0].tokens, 100);
  EXPECT_DOUBLE_EQ((*rows_back)[0].cost_usd, 0.25);
  EXPECT_FALSE(UsageRowsFromJson(*ParseJson(R"([{"start_ms":1}])")).ok());
}

TEST(UsageWireTest, RowsOfSeveralNodesAreSummedPerPeriodAndGroup) {
  const std::vector<UsageRow> n1 = {{0, {{"operation", "query"}}, 2, 10, 0.5},
                                    {3600000, {{"operation", "query"}}, 1, 0, 0}};
  const std::vector<UsageRow> n2 = {{0, {{"operation", "query"}}, 3, 5, 0.25}, {0, {{"operation", "upsert"}}, 1, 7, 1}};
  const auto merged = MergeUsageRows({n1, n2});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].start_ms, 0);
  EXPECT_EQ(merged[0].group.at("operation"), "query");
  EXPECT_EQ(merged[0].requests, 5);
  EXPECT_EQ(merged[0].tokens, 15);
  EXPECT_DOUBLE_EQ(merged[0].cost_usd, 0.75);
  EXPECT_EQ(merged[1].group.at("operation"), "upsert");
  EXPECT_EQ(merged[2].start_ms, 3600000);
  EXPECT_TRUE(MergeUsageRows({}).empty());
}

}  // namespace
}  // namespace contextd
