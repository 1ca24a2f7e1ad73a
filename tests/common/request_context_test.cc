#include "common/request_context.h"

#include <gtest/gtest.h>

#include "manual_clock.h"

namespace contextd {
namespace {

TEST(TraceContextTest, ParsesW3cTraceparentAndContinuesTheTrace) {
  auto t = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(t->flags, 1);
  const TraceContext mine = TraceContext::Continue(*t);
  EXPECT_EQ(mine.trace_id, t->trace_id);
  ASSERT_EQ(mine.span_id.size(), 16u);
  EXPECT_NE(mine.span_id, t->parent_id);
  EXPECT_EQ(mine.Header(), "00-4bf92f3577b34da6a3ce929d0e0e4736-" + mine.span_id + "-01");
  // A later version may append fields; they are ignored.
  EXPECT_TRUE(TraceContext::Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra").has_value());
}

TEST(TraceContextTest, RefusesMalformedTraceparents) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // version 00 has no more
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
       }) {
    EXPECT_FALSE(TraceContext::Parse(bad).has_value()) << bad;
  }
  const TraceContext fresh = TraceContext::Start();
  EXPECT_EQ(fresh.trace_id.size(), 32u);
  EXPECT_TRUE(TraceContext::Parse(fresh.Header()).has_value()) << fresh.Header();
  EXPECT_NE(TraceContext::Start().trace_id, fresh.trace_id);
}

TEST(RequestContextTest, DeadlineIsCheckedAgainstItsClock) {
  ManualClock clock;
  RequestContext ctx(&clock);
  EXPECT_TRUE(ctx.CheckDeadline("anything").ok()) << "no deadline";
  EXPECT_EQ(ctx.RemainingMs(), 0);
  ctx.deadline_ns = clock.NowNanos() + 5'000'000;
  EXPECT_EQ(ctx.RemainingMs(), 5);
  EXPECT_TRUE(ctx.CheckDeadline("the search").ok());
  clock.AdvanceMs(5);
  const Status st = ctx.CheckDeadline("the search");
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(st.message().find("before the search"), std::string::npos) << st.message();
  EXPECT_EQ(ctx.RemainingMs(), 1) << "never 0 (which means no deadline) once set";
}

struct WordCounter final : TokenCounter {
  size_t Count(std::string_view text) const override {
    return text.empty() ? 0 : 1 + std::count(text.begin(), text.end(), ' ');
  }
};

TEST(RequestContextTest, CountsEmbeddingTokensOnlyWithACounter) {
  RequestContext ctx;
  ctx.CountEmbeddingTokens({"a b c", "d"});
  EXPECT_EQ(ctx.usage.embedding_tokens.load(), 0);
  WordCounter words;
  ctx.token_counter = &words;
  ctx.CountEmbeddingTokens({"a b c", "d"});
  EXPECT_EQ(ctx.usage.embedding_tokens.load(), 4);
}

}  // namespace
}  // namespace contextd
