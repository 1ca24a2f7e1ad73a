#include "index/payload_index.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "index/filter.h"

namespace contextd {
namespace {

Json J(const std::string& s) {
  auto j = ParseJson(s);
  EXPECT_TRUE(j.ok()) << s;
  return *j;
}

// Random metadata over the shapes the payload index must get right: ints and whole
// doubles, strings, bools, nulls, arrays (equality by element, never ranges), nested
// objects, a key with a literal dot, and missing fields.
Json RandomMetadata(std::mt19937* rng) {
  auto pick = [&](int n) { return static_cast<int>((*rng)() % static_cast<uint32_t>(n)); };
  const char* tags[] = {"a", "b", "c", "d"};
  std::string s = "{";
  auto add = [&](const std::string& kv) { s += (s.size() > 1 ? "," : "") + kv; };
  if (pick(5) != 0) add("\"year\":" + std::to_string(2000 + pick(10)) + (pick(3) == 0 ? ".0" : ""));
  if (pick(4) != 0) add("\"score\":" + std::to_string(pick(100) / 10.0));
  if (pick(4) != 0) add(std::string("\"tag\":\"") + tags[pick(4)] + "\"");
  if (pick(3) == 0) add(std::string("\"tags\":[\"") + tags[pick(4)] + "\",\"" + tags[pick(4)] + "\",7]");
  if (pick(3) == 0) add("\"nested\":{\"n\":" + std::to_string(pick(5)) + "}");
  if (pick(4) == 0) add("\"flag\":" + std::string(pick(2) ? "true" : "false"));
  if (pick(6) == 0) add("\"tag\":null");
  if (pick(5) == 0) add("\"a.b\":1");
  if (pick(5) == 0) add("\"a\":{\"b\":2}");
  return J(s + "}");
}

const char* kFilters[] = {
    R"({"year":2004})",
    R"({"year":2004.0})",
    R"({"year":{"$gte":2003,"$lt":2007}})",
    R"({"year":{"$gt":2008}})",
    R"({"year":{"$lte":2001.5}})",
    R"({"year":{"$gt":2007,"$lt":2003}})",
    R"({"score":{"$gte":4.5}})",
    R"({"tag":"b"})",
    R"({"tag":{"$ne":"b"}})",
    R"({"tag":{"$in":["a","c"]}})",
    R"({"tag":{"$nin":["a","c"]}})",
    R"({"tag":{"$gt":"b"}})",
    R"({"tag":null})",
    R"({"tags":"c"})",
    R"({"tags":7})",
    R"({"tags":{"$gt":"a"}})",
    R"({"tags":{"$nin":["a"]}})",
    R"({"nested.n":3})",
    R"({"nested.n":{"$lt":2}})",
    R"({"a.b":1})",
    R"({"a.b":2})",
    R"({"flag":true})",
    R"({"flag":{"$ne":false}})",
    R"({"missing":{"$ne":1}})",
    R"({"$or":[{"tag":"a"},{"year":{"$gte":2008}}]})",
    R"({"$and":[{"tags":"a"},{"$or":[{"flag":true},{"score":{"$lt":2}}]}]})",
    R"({"year":{"$gte":2002},"tag":{"$in":["b","d"]}})",
};

// The contract: Select() over the index equals Matches() on every slot's metadata,
// through adds, removes and re-adds of slots.
TEST(PayloadIndexTest, SelectAgreesWithMatchesEverywhere) {
  std::mt19937 rng(11);
  PayloadIndex index;
  std::vector<Json> meta(3000);
  std::vector<bool> live(meta.size(), false);
  for (uint32_t s = 0; s < meta.size(); ++s) {
    meta[s] = RandomMetadata(&rng);
    index.Add(s, meta[s]);
    live[s] = true;
  }
  auto check = [&](const char* round) {
    for (const char* spec : kFilters) {
      auto f = Filter::Parse(J(spec));
      ASSERT_TRUE(f.ok()) << spec;
      SlotBitset got = f->Select(index);
      size_t matches = 0;
      for (uint32_t s = 0; s < meta.size(); ++s) {
        const bool want = live[s] && f->Matches(meta[s]);
        ASSERT_EQ(got.Test(s), want) << round << ": " << spec << " slot " << s << " " << meta[s].Dump();
        matches += want;
      }
      EXPECT_EQ(got.Count(), matches) << spec;
    }
  };
  check("initial");
  // Remove a third, give another third new metadata.
  for (uint32_t s = 0; s < meta.size(); ++s) {
    if (s % 3 == 0) {
      index.Remove(s, meta[s]);
      live[s] = false;
    } else if (s % 3 == 1) {
      index.Remove(s, meta[s]);
      meta[s] = RandomMetadata(&rng);
      index.Add(s, meta[s]);
    }
  }
  check("after churn");
  EXPECT_GT(index.memory_bytes(), 0u);
}

TEST(PayloadIndexTest, EmptyFilterSelectsAllAndUnknownFieldsNothing) {
  PayloadIndex index;
  index.Add(0, J(R"({"x":1})"));
  index.Add(5, J(R"({})"));
  auto all = Filter::Parse(J("{}"));
  EXPECT_EQ(all->Select(index).Count(), 2u);
  auto none = Filter::Parse(J(R"({"y":1})"));
  EXPECT_EQ(none->Select(index).Count(), 0u);
  auto not_y = Filter::Parse(J(R"({"y":{"$ne":1}})"));
  EXPECT_EQ(not_y->Select(index).Count(), 2u);
}

// Cases the filter fuzzer found where Select() and Matches() disagreed.
TEST(PayloadIndexTest, SelectAgreesWithMatchesOnLargeNumbersAndNulKeys) {
  const std::vector<std::pair<const char*, std::vector<const char*>>> cases = {
      // 2^53 + 1 is not 2^53.0, though converting it to a double says so.
      {R"({"x":9007199254740993})", {R"({"x":9007199254740992.0})", R"({"x":9007199254740993})"}},
      {R"({"x":9007199254740992.0})", {R"({"x":9007199254740993})", R"({"x":9007199254740992})"}},
      // Whole doubles up to int64's bound meet their integers.
      {R"({"x":9210000000000000000})", {R"({"x":9.21e18})", R"({"x":9.21e19})"}},
      // A key holding NUL is one key, not a path of two.
      {R"({"a.b":1})", {R"({"a\u0000b":1})", R"({"a":{"b":1}})", R"({"a\u0001b":1})"}},
      {R"({"a\u0000b":1})", {R"({"a\u0000b":1})", R"({"a":{"b":1}})"}},
      // An empty first key is a key: ".tag" is "" then "tag", not "tag".
      {R"({".tag":"a"})", {R"({"tag":"a"})", R"({"":{"tag":"a"}})"}},
      {R"({"tag":"a"})", {R"({"tag":"a"})", R"({"":{"tag":"a"}})"}},
  };
  for (const auto& [spec, docs] : cases) {
    auto f = Filter::Parse(J(spec));
    ASSERT_TRUE(f.ok()) << spec;
    PayloadIndex index;
    std::vector<Json> meta;
    for (const char* d : docs) {
      meta.push_back(J(d));
      index.Add(static_cast<uint32_t>(meta.size() - 1), meta.back());
    }
    const SlotBitset got = f->Select(index);
    for (uint32_t s = 0; s < meta.size(); ++s) {
      EXPECT_EQ(got.Test(s), f->Matches(meta[s])) << spec << " on " << docs[s];
    }
  }
  // And the answers themselves: exact, so only the same number matches.
  auto exact = Filter::Parse(J(R"({"x":9007199254740993})"));
  EXPECT_FALSE(exact->Matches(J(R"({"x":9007199254740992.0})")));
  EXPECT_TRUE(exact->Matches(J(R"({"x":9007199254740993})")));
  auto nested = Filter::Parse(J(R"({"a.b":1})"));
  EXPECT_FALSE(nested->Matches(J(R"({"a\u0000b":1})")));
}

}  // namespace
}  // namespace contextd
