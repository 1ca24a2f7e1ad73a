#include "common/status.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd", "odd_number");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  CTX_ASSIGN_OR_RETURN(int h, Half(x));
  CTX_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "odd_number");
  EXPECT_EQ(r.status().ToString(), "invalid_argument: odd");
}

TEST(StatusTest, OkStatusOrHasOkStatus) {
  StatusOr<std::string> s = std::string("x");
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(s.status().ok());
}

}  // namespace
}  // namespace contextd
