// Chunk records: a chunk cut from its document's text is stored as a span of it, any other
// as its bytes; both decode to the chunk's text, and a span outside the text is refused.
#include "engine/chunk_record.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(ChunkRecordTest, SpansAndInlineTextBothDecode) {
  const std::string doc = "the quick brown fox jumps over the lazy dog";
  const float vec[3] = {1.5f, -2.0f, 0.25f};
  uint32_t slot = 0;
  std::string_view text;
  const char* raw = nullptr;

  const std::string span = EncodeChunkSpan(7, 10, 9, vec, 3);
  EXPECT_EQ(span.size(), 16u + sizeof(vec)) << "no text in a span record";
  ASSERT_TRUE(DecodeChunk(span, 3, doc, &slot, &text, &raw));
  EXPECT_EQ(slot, 7u);
  EXPECT_EQ(text, "brown fox");
  EXPECT_EQ(text.data(), doc.data() + 10) << "a view into the document's text";
  float back[3];
  std::memcpy(back, raw, sizeof(back));
  EXPECT_EQ(back[1], -2.0f);

  const std::string inline_record = EncodeChunk(8, "not in the text", vec, 3);
  ASSERT_TRUE(DecodeChunk(inline_record, 3, doc, &slot, &text, &raw));
  EXPECT_EQ(slot, 8u);
  EXPECT_EQ(text, "not in the text");
  std::memcpy(back, raw, sizeof(back));
  EXPECT_EQ(back[2], 0.25f);

  // Refused: a span past the text's end, a record of the wrong dimension, a short one.
  EXPECT_FALSE(DecodeChunk(EncodeChunkSpan(1, 40, 9, vec, 3), 3, doc, &slot, &text, &raw));
  EXPECT_FALSE(DecodeChunk(span, 2, doc, &slot, &text, &raw));
  EXPECT_FALSE(DecodeChunk(inline_record, 4, doc, &slot, &text, &raw));
  EXPECT_FALSE(DecodeChunk(span.substr(0, 6), 3, doc, &slot, &text, &raw));
}

}  // namespace
}  // namespace contextd
