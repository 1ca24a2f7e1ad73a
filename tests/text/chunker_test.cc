#include "text/chunker.h"

#include <string>

#include <gtest/gtest.h>

namespace contextd {
namespace {

std::string Sentence(int i, int words) {
  std::string s = "S" + std::to_string(i);
  for (int w = 1; w < words - 1; ++w) s += " w" + std::to_string(w);
  return s + ".";  // words-1 word tokens + '.' => `words` tokens
}

TEST(ChunkerTest, ShortTextIsOneChunk) {
  std::string text = "One sentence. Another one!";
  auto chunks = ChunkText(text, {200, 20});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(text.substr(chunks[0].begin, chunks[0].end - chunks[0].begin), text);
  EXPECT_EQ(chunks[0].tokens, 6);
}

TEST(ChunkerTest, EmptyAndBlankTextHaveNoChunks) {
  EXPECT_TRUE(ChunkText("", {200, 20}).empty());
  EXPECT_TRUE(ChunkText(" \n\t ", {200, 20}).empty());
}

TEST(ChunkerTest, WindowsRespectTheTokenLimitAndCoverEverything) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += Sentence(i, 9) + " ";
  auto chunks = ChunkText(text, {50, 10});
  ASSERT_GT(chunks.size(), 5u);
  for (const auto& c : chunks) EXPECT_LE(c.tokens, 50);
  EXPECT_EQ(chunks.front().begin, 0u);
  EXPECT_EQ(chunks.back().end, text.find_last_not_of(' ') + 1);
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_LT(chunks[i].begin, chunks[i - 1].end) << "windows must overlap";
    EXPECT_GT(chunks[i].begin, chunks[i - 1].begin) << "windows must advance";
  }
}

TEST(ChunkerTest, CutsAtSentenceBoundaries) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += Sentence(i, 9) + " ";
  auto chunks = ChunkText(text, {40, 10});
  for (const auto& c : chunks) {
    std::string piece = text.substr(c.begin, c.end - c.begin);
    EXPECT_EQ(piece.front(), 'S') << piece;  // starts a sentence
    EXPECT_EQ(piece.back(), '.') << piece;   // ends one
    EXPECT_EQ(c.tokens % 9, 0) << "whole sentences only: " << piece;
  }
}

TEST(ChunkerTest, OverlapRepeatsTheLastSentence) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += Sentence(i, 9) + " ";
  auto chunks = ChunkText(text, {36, 9});
  ASSERT_GE(chunks.size(), 2u);
  std::string first = text.substr(chunks[0].begin, chunks[0].end - chunks[0].begin);
  std::string second = text.substr(chunks[1].begin, chunks[1].end - chunks[1].begin);
  EXPECT_EQ(first.substr(first.rfind("S")), second.substr(0, second.find('.') + 1));
}

TEST(ChunkerTest, SplitsASentenceLongerThanTheWindow) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word ";
  auto chunks = ChunkText(text, {30, 5});
  ASSERT_GE(chunks.size(), 4u);
  for (const auto& c : chunks) EXPECT_LE(c.tokens, 30);
  EXPECT_EQ(chunks[0].tokens, 30);
}

TEST(ChunkerTest, CountsWordsAndPunctuation) {
  EXPECT_EQ(CountTokens("Hello, world!"), 4);
  EXPECT_EQ(CountTokens("naïve café"), 2);
}

}  // namespace
}  // namespace contextd
