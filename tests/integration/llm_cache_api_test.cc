// /v1/cache/{namespace} end to end: settings, store, exact and semantic lookups, scope,
// deletes through the query string and by id, bad input, and stored entries surviving a
// SIGKILL of the server.
#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

TEST(LlmCacheApiTest, StoreLookupDeleteAndSurviveKill9) {
  TempDir dir;
  auto server = std::make_unique<ServerProcess>(dir.path() + "/data");
  server->Start();
  auto c = server->Client();
  auto [ps, settings] = Call(*c, "PUT", "/v1/cache/chat", R"({"embedder":"glove","threshold":0.85})");
  ASSERT_EQ(ps, 200) << settings.Dump();
  EXPECT_NEAR(settings.Find("threshold")->as_double(), 0.85, 1e-6);
  auto [ss, stored] = Call(*c, "POST", "/v1/cache/chat/store",
                           R"({"prompt":"What is the tallest mountain in the world?",
                               "response":{"choices":[{"text":"Mount Everest"}]},"scope":{"model":"gpt-4"}})");
  ASSERT_EQ(ss, 200) << stored.Dump();
  const std::string id = stored.Find("id")->as_string();
  Call(*c, "POST", "/v1/cache/chat/store",
       R"({"prompt":"Who wrote Hamlet?","response":"Shakespeare","scope":{"model":"gpt-3.5"}})");

  auto [ls, hit] = Call(*c, "POST", "/v1/cache/chat/lookup",
                        R"({"prompt":"Which is the tallest mountain in the world?","scope":{"model":"gpt-4"}})");
  ASSERT_EQ(ls, 200) << hit.Dump();
  ASSERT_TRUE(hit.Find("hit")->as_bool()) << hit.Dump();
  EXPECT_EQ(hit.Find("id")->as_string(), id);
  EXPECT_EQ(hit.Find("response")->Find("choices")->as_array()[0].Find("text")->as_string(), "Mount Everest");
  EXPECT_GE(hit.Find("similarity")->as_double(), 0.85);
  auto [ms, miss] = Call(*c, "POST", "/v1/cache/chat/lookup",
                         R"({"prompt":"Which is the tallest mountain in the world?","scope":{"model":"claude"}})");
  ASSERT_EQ(ms, 200);
  EXPECT_FALSE(miss.Find("hit")->as_bool());
  EXPECT_EQ(miss.Find("response"), nullptr);

  // The lookup listed what it considered; feedback with a fresh response that disagrees
  // ("K2") tells the cache that entry was wrong for this prompt, and it is not served again.
  ASSERT_NE(hit.Find("candidates"), nullptr) << hit.Dump();
  EXPECT_EQ(hit.Find("candidates")->as_array()[0].Find("id")->as_string(), id);
  const std::string paraphrase =
      R"({"prompt":"Which is the tallest mountain in the world?","scope":{"model":"gpt-4"}})";
  auto [fs, feedback] =
      Call(*c, "POST", "/v1/cache/chat/feedback",
           R"({"id":")" + id + R"(","prompt":"Which is the tallest mountain in the world?","response":"K2"})");
  ASSERT_EQ(fs, 200) << feedback.Dump();
  EXPECT_FALSE(feedback.Find("correct")->as_bool());
  EXPECT_GT(feedback.Find("entry_min_confidence")->as_double(), feedback.Find("confidence")->as_double());
  auto [ws, wrong] = Call(*c, "POST", "/v1/cache/chat/lookup", paraphrase);
  ASSERT_EQ(ws, 200);
  EXPECT_FALSE(wrong.Find("hit")->as_bool()) << wrong.Dump();
  EXPECT_EQ(wrong.Find("verification")->Find("vetoed_by")->as_string(), "feedback");
  EXPECT_EQ(Call(*c, "GET", "/v1/cache/chat").second.Find("feedback")->Find("observations")->as_int(), 1);
  EXPECT_EQ(Call(*c, "POST", "/v1/cache/chat/feedback", R"({"id":")" + id + R"(","prompt":"x"})").first, 400);

  // Bad input: clear 4xx, nothing stored.
  EXPECT_EQ(Call(*c, "POST", "/v1/cache/nowhere/lookup", R"({"prompt":"x"})").first, 404);
  EXPECT_EQ(Call(*c, "POST", "/v1/cache/chat/store", R"({"prompt":"no response"})").first, 400);
  EXPECT_EQ(Call(*c, "POST", "/v1/cache/chat/lookup", R"({"prompt":"x","threshold":2})").first, 400);
  EXPECT_EQ(Call(*c, "DELETE", "/v1/cache/chat/entries?model=gpt-4").first, 400);
  // No filter at all would wipe the namespace: it takes an explicit ?all=true.
  auto [us, unfiltered] = Call(*c, "DELETE", "/v1/cache/chat/entries");
  EXPECT_EQ(us, 400);
  EXPECT_EQ(unfiltered.Find("error")->Find("code")->as_string(), "missing_filter") << unfiltered.Dump();
  EXPECT_EQ(Call(*c, "DELETE", "/v1/cache/chat/entries?all=maybe").first, 400);
  EXPECT_EQ(Call(*c, "DELETE", "/v1/cache/chat/entries?all=true&scope.model=gpt-4").first, 400);
  // TTLs past ten years overflowed expiry arithmetic; they are refused.
  EXPECT_EQ(Call(*c, "POST", "/v1/cache/chat/store", R"({"prompt":"p","response":1,"ttl_s":1e18})").first, 400);
  EXPECT_EQ(Call(*c, "PUT", "/v1/cache/other", R"({"ttl_s":1000000000000})").first, 400);
  EXPECT_EQ(Call(*c, "POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"hi","ttl_s":1e18})").first, 400);
  EXPECT_EQ(Call(*c, "GET", "/v1/cache/chat").second.Find("entries")->as_int(), 2);

  // SIGKILL: both acknowledged entries are still there after a restart.
  server = std::make_unique<ServerProcess>(dir.path() + "/data");
  server->Start();
  c = server->Client();
  auto [rs, again] = Call(*c, "POST", "/v1/cache/chat/lookup",
                          R"({"prompt":"What is the tallest mountain in the world?","scope":{"model":"gpt-4"}})");
  ASSERT_EQ(rs, 200);
  EXPECT_TRUE(again.Find("hit")->as_bool());
  EXPECT_TRUE(again.Find("exact")->as_bool());
  EXPECT_FALSE(Call(*c, "POST", "/v1/cache/chat/lookup", paraphrase).second.Find("hit")->as_bool())
      << "what feedback taught survives the kill";

  // Deletes: by scope through the query string, then by id.
  auto [ds, del] = Call(*c, "DELETE", "/v1/cache/chat/entries?scope.model=gpt-3.5");
  ASSERT_EQ(ds, 200) << del.Dump();
  EXPECT_EQ(del.Find("deleted")->as_int(), 1);
  EXPECT_FALSE(
      Call(*c, "POST", "/v1/cache/chat/lookup", R"({"prompt":"Who wrote Hamlet?","scope":{"model":"gpt-3.5"}})")
          .second.Find("hit")
          ->as_bool());
  EXPECT_EQ(Call(*c, "DELETE", "/v1/cache/chat/entries/" + id).first, 200);
  EXPECT_EQ(Call(*c, "DELETE", "/v1/cache/chat/entries/" + id).first, 404);
  EXPECT_EQ(Call(*c, "GET", "/v1/cache/chat").second.Find("entries")->as_int(), 0);
  // ?all=true empties the namespace.
  Call(*c, "POST", "/v1/cache/chat/store", R"({"prompt":"one","response":1})");
  Call(*c, "POST", "/v1/cache/chat/store", R"({"prompt":"two","response":2,"scope":{"model":"m"}})");
  auto [as, all] = Call(*c, "DELETE", "/v1/cache/chat/entries?all=true");
  ASSERT_EQ(as, 200) << all.Dump();
  EXPECT_EQ(all.Find("deleted")->as_int(), 2);
  EXPECT_EQ(Call(*c, "GET", "/v1/cache/chat").second.Find("entries")->as_int(), 0);
}

}  // namespace
}  // namespace contextd
