#include "net/content_encoding.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

const std::string kJson = R"({"documents":[{"id":"a","text":"Compressed bodies decode to the same bytes."}]})";

std::string Decode(std::string_view encoding, const std::string& body, size_t max = 1 << 20) {
  auto r = DecodeContentEncoding(encoding, body, max);
  EXPECT_TRUE(r.ok()) << encoding << ": " << r.status().ToString();
  return r.ok() ? *r : "";
}

std::string Reason(std::string_view encoding, const std::string& body, size_t max = 1 << 20) {
  auto r = DecodeContentEncoding(encoding, body, max);
  EXPECT_FALSE(r.ok()) << encoding;
  return r.ok() ? "" : r.status().reason();
}

TEST(ContentEncodingTest, DecodesEachCoding) {
  EXPECT_EQ(Decode("", kJson), kJson);
  EXPECT_EQ(Decode("identity", kJson), kJson);
  EXPECT_EQ(Decode("gzip", EncodeBody("gzip", kJson)), kJson);
  EXPECT_EQ(Decode(" GZip ", EncodeBody("gzip", kJson)), kJson);
  EXPECT_EQ(Decode("x-gzip", EncodeBody("gzip", kJson)), kJson);
  EXPECT_EQ(Decode("deflate", ZlibDeflate(kJson, 15)), kJson);
  EXPECT_EQ(Decode("deflate", ZlibDeflate(kJson, -15)), kJson) << "raw deflate, as some clients send";
  EXPECT_EQ(Decode("zstd", EncodeBody("zstd", kJson)), kJson);
  // Listed in the order applied: zstd first, then gzip.
  EXPECT_EQ(Decode("zstd, gzip", EncodeBody("gzip", EncodeBody("zstd", kJson))), kJson);
  const std::string big(3 << 20, 'x');  // several output buffers' worth
  EXPECT_EQ(Decode("gzip", EncodeBody("gzip", big), big.size()), big);
  EXPECT_EQ(Decode("zstd", EncodeBody("zstd", big), big.size()), big);
}

TEST(ContentEncodingTest, RefusesUnknownCorruptAndTruncatedBodies) {
  EXPECT_EQ(Reason("br", kJson), "unsupported_encoding");
  EXPECT_EQ(Reason("gzip, compress", EncodeBody("gzip", kJson)), "unsupported_encoding");
  EXPECT_EQ(Reason("gzip", kJson), "bad_encoding") << "not compressed at all";
  EXPECT_EQ(Reason("zstd", kJson), "bad_encoding");
  const std::string gz = EncodeBody("gzip", kJson);
  EXPECT_EQ(Reason("gzip", gz.substr(0, gz.size() / 2)), "bad_encoding");
  const std::string zs = EncodeBody("zstd", kJson);
  EXPECT_EQ(Reason("zstd", zs.substr(0, zs.size() - 3)), "bad_encoding");
  EXPECT_EQ(Reason("gzip", ""), "bad_encoding");
}

// 64 MB of zeros compress to a few hundred KB, under a 1 MB limit as sent: decoding stops
// at the limit instead of allocating it all.
TEST(ContentEncodingTest, StopsAtTheLimitOnceDecoded) {
  const std::string zeros(64 << 20, '\0');
  const std::string gz = EncodeBody("gzip", zeros);
  const std::string zs = EncodeBody("zstd", zeros);
  ASSERT_LT(gz.size(), 1u << 20);
  ASSERT_LT(zs.size(), 1u << 20);
  EXPECT_EQ(Reason("gzip", gz, 1 << 20), "body_too_large");
  EXPECT_EQ(Reason("zstd", zs, 1 << 20), "body_too_large");
  EXPECT_EQ(Decode("gzip", EncodeBody("gzip", kJson), kJson.size()), kJson) << "exactly at the limit";
  EXPECT_EQ(Reason("gzip", EncodeBody("gzip", kJson), kJson.size() - 1), "body_too_large");
}

TEST(ContentEncodingTest, ChoosesAReplyCodingFromAcceptEncoding) {
  EXPECT_EQ(ChooseResponseEncoding(""), "");
  EXPECT_EQ(ChooseResponseEncoding("identity"), "");
  EXPECT_EQ(ChooseResponseEncoding("br"), "");
  EXPECT_EQ(ChooseResponseEncoding("gzip"), "gzip");
  EXPECT_EQ(ChooseResponseEncoding("deflate, gzip, br, zstd"), "zstd");  // curl --compressed
  EXPECT_EQ(ChooseResponseEncoding("gzip;q=1.0, zstd;q=0"), "gzip");
  EXPECT_EQ(ChooseResponseEncoding("gzip; q=0.000, zstd ; q=0.5"), "zstd");
  EXPECT_EQ(ChooseResponseEncoding("gzip;q=0"), "");
  EXPECT_EQ(ChooseResponseEncoding("*"), "gzip");
  EXPECT_EQ(ChooseResponseEncoding(" GZIP "), "gzip");
}

TEST(ContentEncodingTest, EncodedRepliesDecodeToTheSameBytes) {
  std::string reply;
  for (int i = 0; i < 500; ++i) reply += R"({"id":"doc)" + std::to_string(i) + R"(","score":0.5},)";
  for (const char* coding : {"gzip", "zstd"}) {
    const std::string encoded = EncodeBody(coding, reply);
    EXPECT_LT(encoded.size(), reply.size() / 4) << coding;
    EXPECT_EQ(Decode(coding, encoded, reply.size()), reply) << coding;
  }
}

}  // namespace
}  // namespace contextd
