// BEIR metrics against values computed by hand, and the BEIR file readers.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "eval/metrics.h"

namespace contextd {
namespace {

TEST(MetricsTest, NdcgAgainstHandComputedValues) {
  // Relevant: a (2), b (1). Ranking: x a y b.
  const Judgements q = {{"a", 2}, {"b", 1}, {"z", 0}};
  const std::vector<std::string> ranked = {"x", "a", "y", "b"};
  // DCG = 2/log2(3) + 1/log2(5); IDCG = 2/log2(2) + 1/log2(3).
  const double dcg = 2 / std::log2(3.0) + 1 / std::log2(5.0);
  const double idcg = 2 / 1.0 + 1 / std::log2(3.0);
  EXPECT_NEAR(NdcgAtK(ranked, q, 10), dcg / idcg, 1e-12);
  EXPECT_NEAR(NdcgAtK(ranked, q, 2), (2 / std::log2(3.0)) / idcg, 1e-12);  // b falls outside
  EXPECT_NEAR(NdcgAtK({"a", "b"}, q, 10), 1.0, 1e-12);
  EXPECT_EQ(NdcgAtK({"x", "y"}, q, 10), 0.0);
  EXPECT_EQ(NdcgAtK({"a"}, {{"a", 0}}, 10), 0.0) << "nothing relevant";
}

TEST(MetricsTest, RecallAndMrr) {
  const Judgements q = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 0}};
  EXPECT_NEAR(RecallAtK({"x", "a", "d", "c"}, q, 100), 2.0 / 3, 1e-12);
  EXPECT_NEAR(RecallAtK({"x", "a", "d", "c"}, q, 2), 1.0 / 3, 1e-12);
  EXPECT_NEAR(MrrAtK({"x", "d", "b"}, q, 10), 1.0 / 3, 1e-12);
  EXPECT_EQ(MrrAtK({"x", "d", "b"}, q, 2), 0.0);
}

TEST(MetricsTest, PercentileIsNearestRank) {
  EXPECT_EQ(Percentile({5, 1, 4, 2, 3}, 50), 3);
  EXPECT_EQ(Percentile({5, 1, 4, 2, 3}, 99), 5);
  EXPECT_EQ(Percentile({5, 1, 4, 2, 3}, 0), 1);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(MetricsTest, ReadsBeirFilesAndNamesBadLines) {
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/q.jsonl")
      << "{\"_id\":\"1\",\"text\":\"first\",\"metadata\":{}}\n\n{\"_id\":\"2\",\"text\":\"second\"}\n";
  auto q = ReadBeirQueries(dir + "/q.jsonl");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[1].text, "second");
  std::ofstream(dir + "/r.tsv") << "query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td9\t0\n";
  auto r = ReadBeirQrels(dir + "/r.tsv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at("1").at("d2"), 2);
  EXPECT_EQ(r->at("2").at("d9"), 0);
  std::ofstream(dir + "/bad.tsv") << "query-id\tcorpus-id\tscore\n1\td1\n";
  auto bad = ReadBeirQrels(dir + "/bad.tsv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.tsv:2"), std::string::npos);
  std::ofstream(dir + "/badq.jsonl") << "{\"_id\":3}\n";
  EXPECT_FALSE(ReadBeirQueries(dir + "/badq.jsonl").ok());
  // The real SciFact files.
  auto scifact = ReadBeirQrels(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/qrels/train.tsv");
  ASSERT_TRUE(scifact.ok());
  EXPECT_EQ(scifact->size(), 809u);
}

}  // namespace
}  // namespace contextd
