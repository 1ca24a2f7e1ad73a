#include "common/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(JsonTest, ParsesAndDumpsRoundTrip) {
  auto j = ParseJson(R"({"a":1,"b":[true,null,"x"],"c":{"d":-2.5},"e":"q\"\n"})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->Dump(), R"({"a":1,"b":[true,null,"x"],"c":{"d":-2.5},"e":"q\"\n"})");
}

TEST(JsonTest, KeepsIntegersExact) {
  auto j = ParseJson("[9007199254740993, 1.0, 3]");
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->as_array()[0].is_int());
  EXPECT_EQ(j->as_array()[0].as_int(), 9007199254740993LL);
  EXPECT_FALSE(j->as_array()[1].is_int());
  EXPECT_EQ(j->as_array()[2].Dump(), "3");
}

TEST(JsonTest, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "nul", "{\"a\" 1}", "NaN"}) {
    auto j = ParseJson(bad);
    EXPECT_FALSE(j.ok()) << bad;
    EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  }
}

// Valid JSON that simdjson 3.0 alone refuses: integers past 64 bits (JavaScript writes 1e20
// as 100000000000000000000). They read as doubles; integers that fit stay exact.
TEST(JsonTest, IntegersPastSixtyFourBitsReadAsDoubles) {
  auto j = ParseJson(R"({"big":100000000000000000000,"neg":-9223372036854775809,"max":9223372036854775807,
      "s":"12345678901234567890123","list":[18446744073709551616,1],"e":1e400})");
  EXPECT_FALSE(j.ok()) << "1e400 is out of a double's range";
  j = ParseJson(R"({"big":100000000000000000000,"neg":-9223372036854775809,"max":9223372036854775807,
      "s":"12345678901234567890123 \" 99999999999999999999999","list":[18446744073709551616,1]})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->Find("big")->as_double(), 1e20);
  EXPECT_FALSE(j->Find("big")->is_int());
  EXPECT_EQ(j->Find("neg")->as_double(), -9223372036854775809.0);
  EXPECT_TRUE(j->Find("max")->is_int());
  EXPECT_EQ(j->Find("max")->as_int(), INT64_MAX);
  EXPECT_EQ(j->Find("s")->as_string(), "12345678901234567890123 \" 99999999999999999999999") << "strings untouched";
  EXPECT_EQ(j->Find("list")->as_array()[0].as_double(), 18446744073709551616.0);
  EXPECT_TRUE(j->Find("list")->as_array()[1].is_int());
  EXPECT_FALSE(ParseJson("[123456789012345678901234,]").ok()) << "still malformed";
}

TEST(JsonTest, RejectsInvalidUtf8WithItsOwnReason) {
  auto j = ParseJson("{\"a\":\"\xff\xfe\"}");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().reason(), "invalid_utf8");
}

TEST(JsonTest, EscapesControlCharacters) {
  std::string out;
  AppendJsonString(std::string("a\x01"
                               "b",
                               3),
                   &out);
  EXPECT_EQ(out, "\"a\\u0001b\"");
}

TEST(JsonTest, NonFiniteNumbersBecomeNull) {
  EXPECT_EQ(Json(std::nan("")).Dump(), "null");
  EXPECT_EQ(Json(INFINITY).Dump(), "null");
}

TEST(JsonTest, FloatsPrintTheDigitsAFloatHolds) {
  EXPECT_EQ(Json(0.9f).Dump(), "0.9");
  EXPECT_EQ(Json(-1.0488088f).Dump(), "-1.0488088");
  EXPECT_EQ(Json(0.9).Dump(), "0.9");
  EXPECT_EQ(Json(static_cast<double>(0.9f)).Dump(), "0.8999999761581421");  // a double keeps its digits
  // Every float comes back from its text as the same float, through both paths.
  uint32_t bits = 12345;
  for (int i = 0; i < 100000; ++i) {
    bits = bits * 1664525u + 1013904223u;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    if (!std::isfinite(f)) continue;
    std::string text;
    AppendJsonNumber(f, &text);
    ASSERT_EQ(std::strtof(text.c_str(), nullptr), f) << text;
    ASSERT_LE(text.size(), 15u) << text;
    ASSERT_EQ(Json(f).Dump(), text);
    ASSERT_EQ(static_cast<float>(Json(f).as_double()), f) << text;
  }
}

TEST(JsonTest, ReadsWholeNumbersInRange) {
  int64_t n = 0;
  EXPECT_TRUE(ReadWholeNumber(*ParseJson("7"), "x", 1, 10, &n).ok());
  EXPECT_EQ(n, 7);
  EXPECT_TRUE(ReadWholeNumber(*ParseJson("1e3"), "x", 1, 1000, &n).ok());
  EXPECT_EQ(n, 1000);
  for (const char* bad : {"0", "11", "2.5", "1e300", "-1e300", "\"5\"", "null", "[]"}) {
    Status st = ReadWholeNumber(*ParseJson(bad), "'x'", 1, 10, &n);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message(), "'x' must be a whole number from 1 to 10, got " + ParseJson(bad)->Dump()) << bad;
  }
  EXPECT_EQ(ReadNumberAtLeast(*ParseJson("-1"), "y", 0, &n).message(), "y must be a whole number >= 0, got -1");
}

TEST(JsonTest, EqualityIgnoresKeyOrderAndIntDoubleForm) {
  auto a = ParseJson(R"({"x":1,"y":[1,2]})");
  auto b = ParseJson(R"({"y":[1.0,2],"x":1.0})");
  EXPECT_TRUE(*a == *b);
  EXPECT_FALSE(*a == *ParseJson(R"({"x":1})"));
}

TEST(JsonTest, BuildsObjectsInOrder) {
  Json j;
  j["b"] = 1;
  j["a"]["c"] = "x";
  j["b"] = 2;
  EXPECT_EQ(j.Dump(), R"({"b":2,"a":{"c":"x"}})");
  EXPECT_EQ(j.Find("a")->Find("c")->as_string(), "x");
  EXPECT_EQ(j.Find("zz"), nullptr);
}

TEST(JsonTest, LaterDuplicateKeysWin) {
  auto j = ParseJson(R"({"a":1,"a":2})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->Dump(), R"({"a":2})");
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

std::string NaiveEscape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\b')
      out += "\\b";
    else if (c == '\f')
      out += "\\f";
    else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else
      out.push_back(static_cast<char>(c));
  }
  return out + "\"";
}

TEST(JsonTest, WordAtATimeEscapingMatchesByteAtATime) {
  const char alphabet[] = "ab \"\\\n\x01\x1f\x7f\xc3\xa9 0123456789";
  uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    size_t len = round % 40;
    for (size_t i = 0; i < len; ++i) {
      seed = seed * 1103515245 + 12345;
      s.push_back(alphabet[(seed >> 16) % (sizeof(alphabet) - 1)]);
    }
    std::string got;
    AppendJsonString(s, &got);
    ASSERT_EQ(got, NaiveEscape(s)) << round;
  }
}

}  // namespace
}  // namespace contextd
