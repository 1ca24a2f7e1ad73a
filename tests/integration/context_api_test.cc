// POST /v1/context over HTTP: cited pieces within the budget, and clear errors.
#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

TEST(ContextApiTest, CitedPiecesWithinTheBudget) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  auto c = server.Client();
  ASSERT_EQ(Call(*c, "PUT", "/v1/collections/kb", R"({"embedder":"glove"})").first, 201);
  ASSERT_EQ(Call(*c, "POST", "/v1/collections/kb/documents", R"({"documents":[
      {"id":"tea","title":"Tea","text":"Green tea is made from unoxidised leaves. It contains catechins."},
      {"id":"coffee","title":"Coffee","text":"Coffee beans are roasted seeds. Espresso is brewed under pressure."},
      {"id":"rain","text":"Rain forms when droplets in clouds grow heavy."}]})")
                .first,
            200);
  auto [st, ctx] =
      Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"how is green tea made","max_tokens":50})");
  ASSERT_EQ(st, 200) << ctx.Dump();
  const auto& pieces = ctx.Find("pieces")->as_array();
  ASSERT_FALSE(pieces.empty());
  EXPECT_EQ(pieces[0].Find("id")->as_string(), "tea");
  EXPECT_EQ(pieces[0].Find("chunks")->as_array().size(), 2u);
  EXPECT_NE(pieces[0].Find("text")->as_string().find("Green tea"), std::string::npos);
  EXPECT_LE(ctx.Find("tokens")->as_int(), 50);
  EXPECT_EQ(ctx.Find("max_tokens")->as_int(), 50);
  EXPECT_TRUE(ctx.Find("retrieval")->Find("stopped")->is_string());
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"tea","max_tokens":0})").first, 400);
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"collection":"nope","query":"tea"})").first, 404);
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"query":"tea"})").first, 400);

  // Sessions: turns stored over HTTP, used by /v1/context, unknown sessions are 404.
  auto [as, appended] =
      Call(*c, "POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"Tell me about coffee."})");
  ASSERT_EQ(as, 200) << appended.Dump();
  EXPECT_EQ(appended.Find("turns")->as_int(), 1);
  EXPECT_EQ(Call(*c, "POST", "/v1/sessions/s1/turns", R"({"role":"robot","content":"x"})").first, 400);
  auto [fs, follow] = Call(*c, "POST", "/v1/context",
                           R"({"collection":"kb","query":"how is it brewed?","session_id":"s1","max_tokens":200})");
  ASSERT_EQ(fs, 200) << follow.Dump();
  ASSERT_EQ(follow.Find("turns")->as_array().size(), 1u);
  ASSERT_FALSE(follow.Find("pieces")->as_array().empty());
  EXPECT_EQ(follow.Find("pieces")->as_array()[0].Find("id")->as_string(), "coffee");
  EXPECT_LE(follow.Find("tokens")->as_int(), 200);
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"x","session_id":"ghost"})").first, 404);
  EXPECT_EQ(Call(*c, "GET", "/v1/sessions/s1").second.Find("turns")->as_array().size(), 1u);
  EXPECT_EQ(Call(*c, "DELETE", "/v1/sessions/s1").first, 200);
  EXPECT_EQ(Call(*c, "GET", "/v1/sessions/s1").first, 404);
}

}  // namespace
}  // namespace contextd
