#include "common/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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
  // Integers meet doubles exactly, so equality stays transitive past 2^53.
  EXPECT_FALSE(*ParseJson("9007199254740993") == *ParseJson("9007199254740992.0"));
  EXPECT_TRUE(*ParseJson("9007199254740992") == *ParseJson("9007199254740992.0"));
  EXPECT_TRUE(*ParseJson("-0.0") == *ParseJson("0"));
  EXPECT_FALSE(*ParseJson("1.5") == *ParseJson("1"));
  EXPECT_FALSE(*ParseJson("1e300") == Json(int64_t{9223372036854775807}));
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

// The on-demand path (bodies over 1 MB) gives what the DOM path gives, value for value and
// error for error, whatever the input.
TEST(JsonTest, TheOnDemandParseMatchesTheDomParse) {
  const std::vector<std::string> inputs = {
      R"({"a":1,"b":[true,null,"x",{"c":[]}],"c":{"d":-2.5,"e":{}},"e":"q\"\n\u00e9\ud83d\ude00"})",
      R"([9007199254740993, 1.0, 3, -0.0, 1e-300, 18446744073709551615, -9223372036854775808])",
      R"({"big":100000000000000000000,"list":[18446744073709551616,1],"s":"99999999999999999999999"})",
      R"({"a":1,"b":2,"a":3})",
      R"(  [ {"x" : "y"} ]  )",
      "\"just a string\"",
      "42",
      "true",
      "null",
      "",
      "{",
      "{\"a\":}",
      "[1,]",
      "nul",
      "{\"a\" 1}",
      "NaN",
      "[1] [2]",
      "{\"a\":1}x",
      "[1e400]",
      "{\"a\":\"\xff\xfe\"}",
      "[\"\\x\"]",
      "{\"a\":tru}",
      "[[[[]]]",
      "{\"a\":[1,2}",
  };
  for (const std::string& in : inputs) {
    auto dom = ParseJson(in);  // small: the DOM path
    auto od = ParseJsonOnDemand(in);
    ASSERT_EQ(dom.ok(), od.ok()) << in;
    if (dom.ok()) {
      EXPECT_EQ(od->Dump(), dom->Dump()) << in;
      EXPECT_EQ(od->is_object(), dom->is_object()) << in;
    } else {
      EXPECT_EQ(od.status().message(), dom.status().message()) << in;
      EXPECT_EQ(od.status().reason(), dom.status().reason()) << in;
    }
  }
  // Twenty keys and more go through the key index: a duplicate far down still wins.
  std::string many = "{";
  for (int i = 0; i < 40; ++i) many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  many += "\"k3\":\"last\",\"k39\":null}";
  auto dom = ParseJson(many), od = ParseJsonOnDemand(many);
  ASSERT_TRUE(dom.ok() && od.ok());
  EXPECT_EQ(od->Dump(), dom->Dump());
  EXPECT_EQ(dom->as_object().size(), 40u);
  EXPECT_EQ(dom->Find("k3")->as_string(), "last");
  EXPECT_TRUE(dom->Find("k39")->is_null());
}

// A body past the on-demand threshold: an upsert-shaped document round-trips, and a
// malformed one is refused as a small one is.
TEST(JsonTest, LargeBodiesParseAsSmallOnesDo) {
  Json docs = Json::MakeArray();
  for (int i = 0; docs.Dump().size() < kOnDemandParseMinBytes + 4096; ++i) {
    for (int b = 0; b < 100; ++b, ++i) {
      Json d = Json::MakeObject();
      d["id"] = "doc-" + std::to_string(i);
      d["text"] = "text of document " + std::to_string(i) + " \u00e9 \"quoted\" \n line";
      d["metadata"]["n"] = i;
      d["metadata"]["score"] = i * 0.25;
      d["vector"] = Json::Array{Json(0.5), Json(-1.25), Json(static_cast<int64_t>(i))};
      docs.push_back(std::move(d));
    }
  }
  Json body = Json::MakeObject();
  body["documents"] = docs;
  const std::string text = body.Dump();
  ASSERT_GT(text.size(), kOnDemandParseMinBytes);
  auto parsed = ParseJson(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->Dump(), text);
  auto bad = ParseJson(text.substr(0, text.size() - 1));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), ParseJson("{\"a\":[1]").status().message());
}

// A hostile body of many keys is parsed in time proportional to its size (each member once
// against a hash of the keys before it), not quadratic time.
TEST(JsonTest, AnObjectOfManyKeysIsNotQuadratic) {
  for (size_t n : {size_t{300000}, size_t{10}}) {
    std::string text = "{";
    for (size_t i = 0; i < n; ++i) text += "\"key-" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    text += "\"key-0\":\"again\"}";
    auto j = ParseJson(text);
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(j->as_object().size(), n);
    EXPECT_EQ(j->Find("key-0")->as_string(), "again");
    EXPECT_EQ(j->Find("key-" + std::to_string(n - 1))->as_int(), static_cast<int64_t>(n - 1));
  }
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
