// The WordPiece tokenizer against all-MiniLM-L6-v2's tokenizer files, case by case against
// ids from the reference BertTokenizer in scripts/make_encoder_fixtures.py (Hugging Face's
// algorithm over Python's unicodedata): accents, CJK, punctuation, long words, empty text,
// emoji, control characters and invalid UTF-8.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json.h"
#include "encoder/encoder_reference.h"
#include "encoder/wordpiece.h"

namespace contextd {
namespace {

const std::string kMiniLm = std::string(CONTEXTD_SHARED_DIR) + "/models/all-MiniLM-L6-v2-tokenizer";

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<int32_t> Ids(const Json& j) {
  std::vector<int32_t> out;
  for (const Json& v : j.as_array()) out.push_back(static_cast<int32_t>(v.as_int()));
  return out;
}

TEST(WordPieceTest, HelloWorldFromTokenizerJson) {
  auto t = WordPieceTokenizer::FromDir(kMiniLm);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Encode("Hello World", 256), (std::vector<int32_t>{101, 7592, 2088, 102}));
  EXPECT_EQ((*t)->vocab_size(), 30522u);
}

TEST(WordPieceTest, MatchesTheReferenceTokenizerOnEveryCase) {
  auto t = WordPieceTokenizer::FromDir(kMiniLm);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const Json ref = LoadEncoderReference();
  const auto& cases = ref.Find("tokenizer")->as_array();
  ASSERT_GE(cases.size(), 20u);
  for (const Json& c : cases) {
    const std::string text =
        c.Find("text") != nullptr ? c.Find("text")->as_string() : FromHex(c.Find("bytes_hex")->as_string());
    EXPECT_EQ((*t)->Encode(text, 256), Ids(*c.Find("ids"))) << "text: " << text;
  }
}

TEST(WordPieceTest, VocabTxtGivesTheSameIdsAsTokenizerJson) {
  // A directory with only vocab.txt and tokenizer_config.json (do_lower_case).
  const std::string dir = ::testing::TempDir() + "/vocab_only";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kMiniLm + "/vocab.txt", dir + "/vocab.txt",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir + "/tokenizer_config.json") << R"({"do_lower_case": true})";
  auto from_vocab = WordPieceTokenizer::FromDir(dir);
  auto from_json = WordPieceTokenizer::FromDir(kMiniLm);
  ASSERT_TRUE(from_vocab.ok() && from_json.ok());
  for (const char* text : {"Héllo, Wörld! naïve café", "中文 tokenization", "don't (stop)"})
    EXPECT_EQ((*from_vocab)->Encode(text, 64), (*from_json)->Encode(text, 64)) << text;
}

TEST(WordPieceTest, CasedVocabularyKeepsCaseAndAccents) {
  auto t = WordPieceTokenizer::Create({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "Héllo", "hello", "W", "##orld"},
                                      WordPieceOptions{.lowercase = false, .strip_accents = false});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->Encode("Héllo World hello", 16), (std::vector<int32_t>{2, 4, 6, 7, 5, 3}));
}

TEST(WordPieceTest, TruncatesAtMaxLengthKeepingSep) {
  auto t = WordPieceTokenizer::FromDir(kMiniLm);
  ASSERT_TRUE(t.ok());
  auto ids = (*t)->Encode("one two three four five six", 5);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
  EXPECT_EQ(ids[1], 2028);  // "one"
}

TEST(WordPieceTest, MissingFilesAreNamed) {
  auto t = WordPieceTokenizer::FromDir(::testing::TempDir() + "/no_such_model");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.json nor vocab.txt"), std::string::npos);
  auto bad = WordPieceTokenizer::Create({"a", "b"}, WordPieceOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[UNK]"), std::string::npos);
}

}  // namespace
}  // namespace contextd
