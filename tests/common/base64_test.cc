#include "common/base64.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

std::string Encode(std::string_view s) {
  std::string out;
  AppendBase64(s, &out);
  return out;
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Encode(""), "");
  EXPECT_EQ(Encode("f"), "Zg==");
  EXPECT_EQ(Encode("fo"), "Zm8=");
  EXPECT_EQ(Encode("foo"), "Zm9v");
  EXPECT_EQ(Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64Test, RoundTripsEveryByteAndRejectsOtherCharacters) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    std::string back;
    ASSERT_TRUE(DecodeBase64(Encode(all.substr(0, n)), &back));
    EXPECT_EQ(back, all.substr(0, n));
  }
  std::string out;
  EXPECT_FALSE(DecodeBase64("Zm9v*", &out));
}

}  // namespace
}  // namespace contextd
