// The framing of log records too large for one NATS message: parts, then an index.
#include "cluster/record_parts.h"

#include <string>

#include <gtest/gtest.h>

namespace contextd {
namespace {

std::string Record(size_t n) {
  std::string r(n, '\0');
  for (size_t i = 0; i < n; ++i) r[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return r;
}

// What a node does with an index: the parts the index names, in its order, then the check.
Status Assemble(const RecordIndex& index, const std::vector<std::string>& parts, std::string* out) {
  for (size_t i = 0; i < parts.size(); ++i) CTX_RETURN_IF_ERROR(AppendRecordPart(parts[i], i, parts.size(), out));
  return CheckAssembledRecord(index, *out);
}

TEST(RecordPartsTest, ARecordSplitAndIndexedComesBackWhole) {
  for (size_t size : {1u, 999u, 1000u, 1001u, 25000u}) {
    const std::string record = Record(size);
    const auto parts = SplitRecord(record, 1000);
    EXPECT_EQ(parts.size(), (size + 999) / 1000) << size;
    RecordIndex index;
    index.size = record.size();
    index.hash = RecordHash(record);
    for (size_t i = 0; i < parts.size(); ++i) {
      EXPECT_TRUE(IsRecordPart(parts[i]));
      EXPECT_FALSE(IsRecordIndex(parts[i]));
      EXPECT_LE(parts[i].size(), 1000u + 8) << "a part is its slice and a few bytes of framing";
      index.sequences.push_back(100 + 3 * i);  // other writers' messages between them
    }
    const std::string encoded = EncodeRecordIndex(index);
    ASSERT_TRUE(IsRecordIndex(encoded));
    auto decoded = DecodeRecordIndex(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->size, index.size);
    EXPECT_EQ(decoded->hash, index.hash);
    EXPECT_EQ(decoded->sequences, index.sequences);
    std::string whole;
    ASSERT_TRUE(Assemble(*decoded, parts, &whole).ok());
    EXPECT_EQ(whole, record);
  }
}

TEST(RecordPartsTest, PartsOutOfPlaceOrOfAnotherRecordAreRejected) {
  const std::string record = Record(3000);
  const auto parts = SplitRecord(record, 1000);
  RecordIndex index;
  index.size = record.size();
  index.hash = RecordHash(record);
  index.sequences = {1, 2, 3};
  std::string out;
  Status swapped = AppendRecordPart(parts[1], 0, 3, &out);
  EXPECT_EQ(swapped.reason(), "invalid_mutation");
  EXPECT_NE(swapped.message().find("part 1 of 3 is where the index expects part 0 of 3"), std::string::npos)
      << swapped.message();
  // The same sizes, other bytes (a retry whose body changed, under the same key).
  std::string other = record;
  other[1500] ^= 1;
  const auto other_parts = SplitRecord(other, 1000);
  out.clear();
  Status mixed = Assemble(index, {parts[0], other_parts[1], parts[2]}, &out);
  EXPECT_EQ(mixed.reason(), "invalid_mutation");
  EXPECT_NE(mixed.message().find("hash"), std::string::npos) << mixed.message();
  out.clear();
  EXPECT_FALSE(Assemble(index, {parts[0], parts[1]}, &out).ok()) << "a part missing";
  // An index's message is not a part.
  out.clear();
  EXPECT_FALSE(AppendRecordPart(EncodeRecordIndex(index), 0, 1, &out).ok());
}

TEST(RecordPartsTest, AMalformedIndexIsRejected) {
  RecordIndex index;
  index.size = 10;
  index.hash = 42;
  index.sequences = {7, 8};
  const std::string good = EncodeRecordIndex(index);
  for (size_t cut = 2; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeRecordIndex(good.substr(0, cut)).ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(DecodeRecordIndex(good + "x").ok()) << "trailing bytes";
  RecordIndex none = index;
  none.sequences.clear();
  EXPECT_FALSE(DecodeRecordIndex(EncodeRecordIndex(none)).ok()) << "no parts";
  std::string other_version = good;
  other_version[1] = 9;
  EXPECT_FALSE(DecodeRecordIndex(other_version).ok());
}

}  // namespace
}  // namespace contextd
