// Compressed log records: what goes in compressed, what goes in as it was, and every way a
// compressed message can be malformed.
#include "cluster/record_compression.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "cluster/record_parts.h"
#include "engine/wire_format.h"

namespace contextd {
namespace {

// Text-like bytes: words from a small vocabulary, as documents and their terms are.
std::string Words(size_t n, uint32_t seed = 1) {
  static const char* const kWords[] = {"protein",  "cell",  "the",  "of",     "expression", "tumor", "and",
                                       "patients", "study", "gene", "levels", "increased",  "in",    "a"};
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < n) {
    out += kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
    out += ' ';
  }
  out.resize(n);
  return out;
}

std::string Noise(size_t n, uint32_t seed = 2) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::string RoundTrip(const std::string& message) {
  std::string out;
  const Status st = DecompressRecord(message, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(RecordCompressionTest, TextLikeRecordsGoInCompressedAndComeBackExactly) {
  for (size_t size : {kMinCompressedRecordBytes, size_t{4096}, size_t{370 * 1000}, size_t{3 * 1000 * 1000}}) {
    const std::string record = Words(size);
    const std::string message = CompressRecord(record, LogCompression::kZstd);
    ASSERT_TRUE(IsCompressedRecord(message)) << size;
    EXPECT_LT(message.size(), record.size() / 2) << size;
    EXPECT_EQ(RoundTrip(message), record) << size;
    // The same record compresses to the same bytes: a retry under the same key publishes
    // the same parts (their ids carry the hash of what is published).
    EXPECT_EQ(CompressRecord(record, LogCompression::kZstd), message) << size;
  }
}

TEST(RecordCompressionTest, WhatWouldNotShrinkByAnEighthGoesInAsItWas) {
  const std::string noise = Noise(100 * 1000);
  EXPECT_EQ(CompressRecord(noise, LogCompression::kZstd), noise);
  const std::string small = Words(kMinCompressedRecordBytes - 1);
  EXPECT_EQ(CompressRecord(small, LogCompression::kZstd), small);
  const std::string text = Words(100 * 1000);
  EXPECT_EQ(CompressRecord(text, LogCompression::kNone), text);
  // A mutation begins with 'M', parts and indexes with 'P' and 'I': none is taken for a
  // compressed record.
  EXPECT_FALSE(IsCompressedRecord("M\x03\x01"));
  EXPECT_FALSE(IsCompressedRecord(SplitRecord(text, 1000)[0]));
  // Half text, half noise saves more than an eighth: compressed.
  EXPECT_TRUE(IsCompressedRecord(CompressRecord(Words(50 * 1000) + Noise(50 * 1000), LogCompression::kZstd)));
}

TEST(RecordCompressionTest, AMalformedMessageIsAnInvalidMutationAndAllocatesNothingHuge) {
  const std::string record = Words(20000);
  const std::string message = CompressRecord(record, LogCompression::kZstd);
  ASSERT_TRUE(IsCompressedRecord(message));
  auto rejected = [](const std::string& m) {
    std::string out;
    const Status st = DecompressRecord(m, &out);
    EXPECT_EQ(st.reason(), "invalid_mutation") << st.ToString();
    return st.message();
  };
  // Every truncation: the header, the frame, or its last bytes.
  for (size_t n = 2; n < message.size(); n += (n < 64 ? 1 : 97)) rejected(message.substr(0, n));
  // Another framing version.
  std::string version = message;
  version[1] = 2;
  EXPECT_NE(rejected(version).find("unknown framing"), std::string::npos);
  // A declared size the frame does not hold (the header's varint is its bytes 2..4 here).
  std::string lied = std::string("Z\x01") + "\x80\x80\x01" + message.substr(5);
  EXPECT_NE(rejected(lied).find("another size"), std::string::npos);
  // A size past the limit is refused before anything is allocated for it.
  std::string huge("Z\x01", 2);
  wire::PutVarint(&huge, uint64_t{1} << 40);
  EXPECT_NE(rejected(huge + message.substr(5)).find("declares"), std::string::npos);
  // A corrupt frame body: the frame's checksum catches what decodes to other bytes.
  for (size_t at : {size_t{8}, message.size() / 2, message.size() - 5}) {
    std::string corrupt = message;
    corrupt[at] = static_cast<char>(corrupt[at] ^ 0x10);
    rejected(corrupt);
  }
}

// What a node does with a delivered record: decompressed if it is, then decoded.
TEST(RecordCompressionTest, ALogRecordDecodesToItsMutationEitherWay) {
  Mutation m = NewMutation(MutationKind::kUpsertDocuments, "default");
  m.collection = "docs";
  m.dim = 2;
  MutationDocument d;
  d.id = "a";
  d.text = Words(5000);
  d.AddChunk(d.text);
  m.documents.push_back(d);
  m.vectors = {0.5f, -1.0f};
  const std::string encoded = EncodeMutation(m);
  const std::string compressed = CompressRecord(encoded, LogCompression::kZstd);
  ASSERT_TRUE(IsCompressedRecord(compressed));
  for (const std::string& record : {encoded, compressed}) {
    auto got = DecodeLogRecord(record);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(EncodeMutation(*got), encoded);
  }
  std::string corrupt = compressed;
  corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x10);
  EXPECT_EQ(DecodeLogRecord(corrupt).status().reason(), "invalid_mutation");
}

TEST(RecordCompressionTest, ParsesItsSettingAndSaysWhatIsAllowed) {
  EXPECT_EQ(*ParseLogCompression("zstd"), LogCompression::kZstd);
  EXPECT_EQ(*ParseLogCompression("none"), LogCompression::kNone);
  for (LogCompression how : {LogCompression::kZstd, LogCompression::kNone})
    EXPECT_EQ(*ParseLogCompression(LogCompressionName(how)), how);
  auto bad = ParseLogCompression("gzip");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"zstd\" or \"none\""), std::string::npos);
}

}  // namespace
}  // namespace contextd
