// cl100k_base tokenization against token ids the vocabulary file itself pins down
// (each expected id decodes to the expected piece), the pre-tokenizer's rules, and round
// trips over real text (SciFact abstracts, Quora questions, Unicode, invalid bytes).
#include "text/tiktoken.h"

#include <cctype>
#include <fstream>

#include <gtest/gtest.h>

namespace contextd {
namespace {

const std::string kVocab = std::string(CONTEXTD_SHARED_DIR) + "/data/tiktoken/cl100k_base.tiktoken";

class TiktokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = TiktokenEncoder::Load(kVocab);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enc_ = std::move(e).value().release();
  }
  static TiktokenEncoder* enc_;
};
TiktokenEncoder* TiktokenTest::enc_ = nullptr;

TEST_F(TiktokenTest, KnownEncodings) {
  EXPECT_EQ(enc_->vocab_size(), 100256u);
  EXPECT_EQ(enc_->Encode("hello world"), (std::vector<uint32_t>{15339, 1917}));
  EXPECT_EQ(enc_->Encode("Hello, world!"), (std::vector<uint32_t>{9906, 11, 1917, 0}));
  // "tiktoken" is not one token: t + ik + token, by merge rank.
  EXPECT_EQ(enc_->Encode("tiktoken is great!"), (std::vector<uint32_t>{83, 1609, 5963, 374, 2294, 0}));
  EXPECT_TRUE(enc_->Encode("").empty());
}

TEST_F(TiktokenTest, PreTokenizerRules) {
  auto split = [&](std::string_view s) {
    std::vector<std::string> out;
    for (auto p : enc_->Split(s)) out.emplace_back(p);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("I'm don't WE'LL"), (V{"I", "'m", " don", "'t", " WE", "'LL"}));
  EXPECT_EQ(split("12345 abc"), (V{"123", "45", " abc"}));
  EXPECT_EQ(split("x  y"), (V{"x", " ", " y"})) << "a run of spaces leaves one for the next word";
  EXPECT_EQ(split("a \n\n b"), (V{"a", " \n\n", " b"}));
  EXPECT_EQ(split("end   "), (V{"end", "   "}));
  EXPECT_EQ(split("hi!!! ok?\n"), (V{"hi", "!!!", " ok", "?\n"}));
  EXPECT_EQ(split(" 42"), (V{" ", "42"}));
  EXPECT_EQ(split("$100"), (V{"$", "100"}));
  EXPECT_EQ(split("naïve café"), (V{"naïve", " café"}));
}

TEST_F(TiktokenTest, RoundTripsRealAndOddText) {
  std::vector<std::string> texts = {"",
                                    " ",
                                    "\n\n\n",
                                    "日本語のテキスト",
                                    "emoji 😀🚀 test",
                                    "tabs\tand\r\nCRLF",
                                    std::string("bad \xff\xfe bytes"),
                                    "Ünïcödé ÀÉÎÕÜ"};
  for (const char* path : {"/data/scifact/corpus.jsonl", "/data/quora/questions.csv"}) {
    std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + path);
    std::string line;
    for (int i = 0; i < 300 && std::getline(in, line); ++i) texts.push_back(line);
  }
  size_t tokens = 0, bytes = 0;
  for (const auto& t : texts) {
    const auto ids = enc_->Encode(t);
    EXPECT_EQ(enc_->Decode(ids), t);
    EXPECT_EQ(enc_->Count(t), ids.size());
    tokens += ids.size();
    bytes += t.size();
  }
  // English averages about four bytes per token in cl100k.
  EXPECT_GT(static_cast<double>(bytes) / tokens, 3.0);
  EXPECT_LT(static_cast<double>(bytes) / tokens, 6.0);
}

// Long text is encoded block by block; where the blocks meet must not change the tokens.
// A paragraph that starts with a space and ends with a letter ends a piece where the next
// copy begins, so n copies are exactly n times its tokens.
TEST_F(TiktokenTest, LongTextEncodesAsItsParts) {
  std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/corpus.jsonl");
  std::string line, paragraph;
  while (paragraph.size() < 3000 && std::getline(in, line)) paragraph += " " + line;
  while (!paragraph.empty() && !std::isalpha(static_cast<unsigned char>(paragraph.back()))) paragraph.pop_back();
  const std::vector<uint32_t> one = enc_->Encode(paragraph);
  std::string text;
  std::vector<uint32_t> expected;
  while (text.size() < 5 * TiktokenEncoder::kBlockBytes) {
    text += paragraph;
    expected.insert(expected.end(), one.begin(), one.end());
  }
  EXPECT_EQ(enc_->Encode(text), expected);
  EXPECT_EQ(enc_->Count(text), expected.size());
  EXPECT_EQ(enc_->CountUpTo(text, expected.size()), expected.size());
  EXPECT_EQ(enc_->CountUpTo(text, 100), 101u) << "past the limit is limit + 1";
  EXPECT_EQ(enc_->CountUpTo("hello world", 100), 2u);
  // Block ends fall where a letter meets a space, inside the slack.
  for (size_t from = 0; from < text.size();) {
    const size_t end = TiktokenEncoder::BlockEnd(text, from);
    ASSERT_GT(end, from);
    if (end < text.size()) {
      EXPECT_EQ(text[end], ' ');
      EXPECT_LE(end - from, TiktokenEncoder::kBlockBytes + TiktokenEncoder::kBlockSlackBytes);
    }
    from = end;
  }
}

// Text with no place to cut (one endless "word", one endless number, multi-byte letters)
// is cut anyway, at a character boundary, and merged a bounded piece at a time: fast, and
// it still decodes to itself.
TEST_F(TiktokenTest, PathologicalTextIsBoundedAndRoundTrips) {
  for (const std::string& text : {std::string(1 << 20, 'a'), std::string(300000, '7'), [] {
                                    std::string s;
                                    while (s.size() < 200000) s += "ä";
                                    return s;
                                  }()}) {
    const auto ids = enc_->Encode(text);
    EXPECT_EQ(enc_->Decode(ids), text);
    EXPECT_EQ(enc_->Count(text), ids.size());
    EXPECT_LT(ids.size(), text.size());
    EXPECT_EQ(enc_->CountUpTo(text, 10), 11u);
  }
}

TEST(TiktokenLoadTest, BadFilesAreNamed) {
  EXPECT_EQ(TiktokenEncoder::Load("/nonexistent.tiktoken").status().code(), StatusCode::kNotFound);
  const std::string path = ::testing::TempDir() + "/bad.tiktoken";
  std::ofstream(path) << "not base64!! 0\n";
  auto bad = TiktokenEncoder::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.tiktoken:1"), std::string::npos);
}

}  // namespace
}  // namespace contextd
