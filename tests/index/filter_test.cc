#include "index/filter.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

Json J(const char* s) {
  auto j = ParseJson(s);
  EXPECT_TRUE(j.ok()) << s;
  return *j;
}

bool Match(const char* filter, const char* metadata) {
  auto f = Filter::Parse(J(filter));
  EXPECT_TRUE(f.ok()) << filter << ": " << f.status().ToString();
  return f->Matches(J(metadata));
}

TEST(FilterTest, ImplicitAndExplicitEquality) {
  EXPECT_TRUE(Match(R"({"year":2024})", R"({"year":2024})"));
  EXPECT_TRUE(Match(R"({"year":2024})", R"({"year":2024.0})"));
  EXPECT_FALSE(Match(R"({"year":2024})", R"({"year":"2024"})"));
  EXPECT_TRUE(Match(R"({"lang":{"$eq":"en"}})", R"({"lang":"en"})"));
  EXPECT_FALSE(Match(R"({"lang":{"$eq":"en"}})", R"({})"));
}

TEST(FilterTest, Comparisons) {
  const char* m = R"({"year":2021,"name":"bob"})";
  EXPECT_TRUE(Match(R"({"year":{"$gt":2020}})", m));
  EXPECT_FALSE(Match(R"({"year":{"$gt":2021}})", m));
  EXPECT_TRUE(Match(R"({"year":{"$gte":2021,"$lte":2021}})", m));
  EXPECT_TRUE(Match(R"({"year":{"$lt":2022}})", m));
  EXPECT_FALSE(Match(R"({"year":{"$gte":2020,"$lt":2021}})", m));
  EXPECT_TRUE(Match(R"({"name":{"$gt":"alice"}})", m));
  EXPECT_FALSE(Match(R"({"name":{"$gt":5}})", m));  // mixed types never compare
}

TEST(FilterTest, SetMembershipAndNegation) {
  const char* m = R"({"tag":"b","tags":["x","y"]})";
  EXPECT_TRUE(Match(R"({"tag":{"$in":["a","b"]}})", m));
  EXPECT_FALSE(Match(R"({"tag":{"$nin":["a","b"]}})", m));
  EXPECT_TRUE(Match(R"({"tag":{"$ne":"a"}})", m));
  EXPECT_TRUE(Match(R"({"missing":{"$ne":"a"}})", m));  // MongoDB semantics
  EXPECT_TRUE(Match(R"({"missing":{"$nin":["a"]}})", m));
  EXPECT_TRUE(Match(R"({"tags":"y"})", m));  // array contains
  EXPECT_TRUE(Match(R"({"tags":{"$in":["q","x"]}})", m));
  EXPECT_FALSE(Match(R"({"tags":{"$ne":"x"}})", m));
}

TEST(FilterTest, LogicalOperatorsNest) {
  const char* m = R"({"a":1,"b":2})";
  EXPECT_TRUE(Match(R"({"$or":[{"a":5},{"b":2}]})", m));
  EXPECT_FALSE(Match(R"({"$and":[{"a":1},{"b":3}]})", m));
  EXPECT_TRUE(Match(R"({"$and":[{"a":1},{"$or":[{"b":3},{"b":{"$gt":1}}]}]})", m));
  EXPECT_TRUE(Match(R"({"a":1,"b":{"$lt":3}})", m));
}

TEST(FilterTest, DottedPathsReachNestedFields) {
  EXPECT_TRUE(Match(R"({"author.name":"ann"})", R"({"author":{"name":"ann"}})"));
  EXPECT_FALSE(Match(R"({"author.name":"ann"})", R"({"author":"ann"})"));
}

TEST(FilterTest, EmptyFilterMatchesEverything) {
  EXPECT_TRUE(Match("{}", R"({"a":1})"));
  EXPECT_TRUE(Filter::Parse(Json())->empty());
}

TEST(FilterTest, InvalidFiltersAreRejectedWithAReason) {
  for (const char* bad :
       {R"({"a":{"$regex":"x"}})", R"({"$not":{"a":1}})", R"({"a":{"$in":5}})", R"({"$or":{}})", R"({"$and":[]})",
        R"({"a":{"$gt":[1]}})", R"({"a":[1,2]})", R"([1])", R"({"a":{"$in":[{"x":1}]}})", R"({"":1})"}) {
    auto f = Filter::Parse(J(bad));
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().reason(), "invalid_filter") << bad;
  }
}

}  // namespace
}  // namespace contextd
