#include "text/analyzer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "text/utf8.h"

namespace contextd {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Terms(const char* analyzer, const char* text) {
  auto a = MakeAnalyzer(analyzer);
  EXPECT_TRUE(a.ok());
  std::vector<std::string> terms;
  (*a)->Analyze(text, &terms);
  return terms;
}

TEST(AnalyzerTest, EnglishStemsAndDropsStopwords) {
  EXPECT_THAT(Terms("english", "The runners were running in the races"), ElementsAre("runner", "run", "race"));
}

TEST(AnalyzerTest, StandardOnlyFoldsCase) {
  EXPECT_THAT(Terms("standard", "The Runners, RUNNING!"), ElementsAre("the", "runners", "running"));
}

TEST(AnalyzerTest, FoldsUnicodeCase) {
  EXPECT_THAT(Terms("standard", "ÉCOLE Straße"), ElementsAre("école", "strasse"));
}

TEST(AnalyzerTest, NoneKeepsWordsAsWritten) { EXPECT_THAT(Terms("none", "The Cat"), ElementsAre("The", "Cat")); }

TEST(AnalyzerTest, UnknownAnalyzerIsAnError) { EXPECT_FALSE(MakeAnalyzer("klingon").ok()); }

TEST(Utf8Test, ValidatesUtf8) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("naïve 日本"));
  EXPECT_FALSE(IsValidUtf8("bad \xff byte"));
  EXPECT_FALSE(IsValidUtf8("truncated \xe6\x97"));
}

TEST(Utf8Test, ToValidUtf8ReplacesEachBadSequence) {
  EXPECT_EQ(ToValidUtf8("naïve 日本"), "naïve 日本");
  EXPECT_EQ(ToValidUtf8("a\xff b"), "a\xEF\xBF\xBD b");
  EXPECT_EQ(ToValidUtf8("cut \xe6\x97"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xc0\x80\xed\xa0\x80")));
}

TEST(Utf8Test, PreTokenizerSplitsWordsAndPunctuation) {
  std::vector<TokenSpan> spans;
  std::string text = "Hi, 日本 ok.";
  PreTokenize(text, &spans);
  std::vector<std::string> got;
  for (auto& s : spans) got.push_back(text.substr(s.begin, s.end - s.begin));
  EXPECT_THAT(got, ElementsAre("Hi", ",", "日本", "ok", "."));
}

TEST(Utf8Test, BlankTextIsTextWithoutTokens) {
  std::vector<TokenSpan> spans;
  for (std::string text : {std::string(""), std::string(" \t\n"), std::string("\x01\x7f", 2), std::string("\0\0", 2),
                           std::string("\xe2\x80\x83\xc2\xa0")}) {  // em space, nbsp
    EXPECT_TRUE(IsBlankText(text)) << text;
    PreTokenize(text, &spans);
    EXPECT_TRUE(spans.empty()) << text;
  }
  for (std::string text : {"a", " . ", "\x01x", "\xff", "\xe6\x97\xa5"}) {
    EXPECT_FALSE(IsBlankText(text)) << text;
    PreTokenize(text, &spans);
    EXPECT_FALSE(spans.empty()) << text;
  }
}

TEST(Utf8Test, NfcComposesCombiningMarks) { EXPECT_EQ(NormalizeNfc("e\xcc\x81"), "\xc3\xa9"); }

}  // namespace
}  // namespace contextd
