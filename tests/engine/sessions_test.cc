// Conversation sessions: ordered turns, expiry after the last turn (injected clock),
// persistence across a reopen, bad input; and /v1/context's use of them (turns within the
// budget, follow-up questions resolved through the last user turns).
#include "engine/sessions.h"
#include "server/request_codec.h"

#include <gtest/gtest.h>

#include "engine/context.h"
#include "engine/test_engine.h"
#include "manual_clock.h"
#include "test_util.h"

namespace contextd {
namespace {

TEST(SessionStoreTest, TurnsExpiryAndPersistence) {
  TempDir dir;
  ManualClock clock;
  auto store = SessionStore::Open(dir.path() + "/s", &clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Append("chat-1", {"user", "What is green tea?"}), 1u);
  EXPECT_EQ(*(*store)->Append("chat-1", {"assistant", "Tea from unoxidised leaves."}), 2u);
  ASSERT_TRUE((*store)->Append("short", {"user", "hi"}, /*ttl_s=*/10).ok());
  EXPECT_EQ((*store)->Append("chat-1", {"robot", "x"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Append("chat-1", {"user", ""}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Append("bad id!", {"user", "x"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Turns("nobody").status().code(), StatusCode::kNotFound);

  store->reset();  // reopen: turns come back in order
  store = SessionStore::Open(dir.path() + "/s", &clock);
  ASSERT_TRUE(store.ok());
  auto turns = (*store)->Turns("chat-1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 2u);
  EXPECT_EQ((*turns)[0]->role, "user");
  EXPECT_EQ((*turns)[1]->content, "Tea from unoxidised leaves.");

  clock.AdvanceMs(11000);
  EXPECT_EQ((*store)->Turns("short").status().code(), StatusCode::kNotFound) << "expired 10 s after its last turn";
  EXPECT_TRUE((*store)->Turns("chat-1").ok()) << "the default TTL is a day";
  clock.AdvanceMs(SessionStore::kDefaultTtlS * 1000);
  store->reset();
  store = SessionStore::Open(dir.path() + "/s", &clock);
  EXPECT_EQ((*store)->Turns("chat-1").status().code(), StatusCode::kNotFound) << "expired while closed";
  ASSERT_TRUE((*store)->Append("chat-1", {"user", "new start"}).ok());
  EXPECT_EQ((*store)->Turns("chat-1")->size(), 1u) << "an expired session starts over";
  ASSERT_TRUE((*store)->Delete("chat-1").ok());
  EXPECT_EQ((*store)->Delete("chat-1").code(), StatusCode::kNotFound);
}

TEST(SessionStoreTest, TurnsAreCountedOnceWhenWritten) {
  TempDir dir;
  ManualClock clock;
  auto tok = TiktokenEncoder::Load(std::string(CONTEXTD_SHARED_DIR) + "/data/tiktoken/cl100k_base.tiktoken");
  ASSERT_TRUE(tok.ok());
  std::shared_ptr<const TiktokenEncoder> counter = std::move(tok).value();
  auto store = SessionStore::Open(dir.path() + "/s", &clock, counter);
  ASSERT_TRUE(store.ok());
  const std::string text = "Green tea is made from unoxidised leaves, and it contains caffeine.";
  ASSERT_TRUE((*store)->Append("chat-1", {"user", text}).ok());
  EXPECT_EQ((*(*store)->Turns("chat-1"))[0]->tokens, static_cast<int64_t>(counter->Count(text)));
  store->reset();  // the count is stored with the turn, so a reopened store still has it
  store = SessionStore::Open(dir.path() + "/s", &clock);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*(*store)->Turns("chat-1"))[0]->tokens, static_cast<int64_t>(counter->Count(text)));
  ASSERT_TRUE((*store)->Append("chat-1", {"assistant", "ok"}).ok());
  EXPECT_EQ((*(*store)->Turns("chat-1"))[1]->tokens, -1) << "no counter: unknown, counted when read";
}

// An engine with one GloVe collection of two documents (green tea, bicycles) and cl100k.
class SessionContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), &metrics_);
    auto tok = TiktokenEncoder::Load(std::string(CONTEXTD_SHARED_DIR) + "/data/tiktoken/cl100k_base.tiktoken");
    ASSERT_TRUE(tok.ok());
    tok_ = std::move(tok).value();
    c_ = *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "kb", J(R"({"embedder":"glove"})"));
    UpsertResult ur;
    ASSERT_TRUE(c_->Upsert(*ParseUpsertRequest(J(R"({"documents":[
        {"id":"tea","text":"Green tea contains caffeine and catechins."},
        {"id":"bikes","text":"Bicycles have two wheels and a chain."}]})"),
                                               c_->config().dim, false),
                           &ur)
                    .ok());
  }
  StatusOr<ContextResult> Build(const std::string& body, const SessionTurnList& turns) {
    auto req = ParseContextRequest(J(body), true);
    if (!req.ok()) return req.status();
    return BuildContext(RequestContext::Background(), *c_, *tok_, *req, SystemClock::Default(), turns);
  }
  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TiktokenEncoder> tok_;
  std::shared_ptr<Collection> c_;
};

// A user who pastes a long document and then asks: the turn is far over the budget (left
// out, and counted only as far as the budget), and the question at its end still steers
// the search (the query takes a turn's last words, not all of it).
TEST_F(SessionContextTest, AHugeTurnIsLeftOutAndItsQuestionStillCounts) {
  std::string pasted;
  while (pasted.size() < 4'000'000) pasted += "lorem ipsum dolor sit amet consectetur ";
  // An old record (no stored count) and a new one.
  const SessionTurnList turns = {
      std::make_shared<const SessionTurn>(SessionTurn{"user", pasted + "What about green tea?"}),
      std::make_shared<const SessionTurn>(SessionTurn{"assistant", pasted, 0, 900000})};
  auto built = Build(R"({"query":"and the caffeine?","max_tokens":400,"mode":"keyword"})", turns);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_TRUE(built->turns.empty()) << "neither turn fits a quarter of 400 tokens";
  ASSERT_FALSE(built->pieces.empty());
  EXPECT_EQ(built->pieces[0].doc_id, "tea");
  EXPECT_LE(built->tokens, 400u);
}

TEST_F(SessionContextTest, FollowUpsUseTheConversation) {
  const SessionTurnList turns = {
      std::make_shared<const SessionTurn>(SessionTurn{"user", "Tell me about green tea."}),
      std::make_shared<const SessionTurn>(SessionTurn{"assistant", "It is made from unoxidised leaves."})};
  auto with = Build(R"({"query":"and the price?","max_tokens":200,"mode":"keyword"})", turns);
  ASSERT_TRUE(with.ok());
  ASSERT_FALSE(with->pieces.empty());
  EXPECT_EQ(with->pieces[0].doc_id, "tea") << "the follow-up is resolved through the earlier user turn";
  EXPECT_EQ(with->turns.size(), 2u);
  size_t counted = 0;
  for (const auto& t : with->turns) counted += t.tokens;
  for (const auto& p : with->pieces) counted += p.tokens;
  EXPECT_EQ(with->tokens, counted);
  EXPECT_LE(with->tokens, 200u);
  // Alone, the follow-up has nothing to go on.
  auto without = Build(R"({"query":"and the price?","max_tokens":200,"mode":"keyword"})", {});
  ASSERT_TRUE(without.ok());
  EXPECT_TRUE(without->pieces.empty());
  // A tight budget leaves the turns out rather than overflow.
  auto small = Build(R"({"query":"green tea","max_tokens":8,"mode":"keyword"})", turns);
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->turns.empty());
  EXPECT_LE(small->tokens, 8u);
}

}  // namespace
}  // namespace contextd
