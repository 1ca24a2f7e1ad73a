// POST /v1/context over HTTP: cited pieces within the budget, and clear errors.
#include <set>

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
  const Json* route = ctx.Find("route");
  ASSERT_NE(route, nullptr) << ctx.Dump();
  EXPECT_EQ(route->Find("strategy")->as_string(), "simple");
  EXPECT_FALSE(route->Find("fallback")->as_bool());
  EXPECT_EQ(route->Find("shards")->as_array().size(), 1u);

  // Streamed: one event per wave as it is decided, then "done" with the totals.
  auto streamed = c->Request("POST", "/v1/context",
                             R"({"collection":"kb","query":"how is green tea made","max_tokens":50,"stream":true})");
  ASSERT_TRUE(streamed.ok());
  ASSERT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->Header("content-type"), "text/event-stream");
  const std::string& events = streamed->body;
  ASSERT_EQ(events.rfind("event: wave\ndata: ", 0), 0u) << events;
  const size_t done = events.find("event: done\ndata: ");
  ASSERT_NE(done, std::string::npos) << events;
  int64_t streamed_tokens = 0;
  for (size_t at = 0; (at = events.find("event: wave\ndata: ", at)) != std::string::npos;) {
    at += 18;
    Json wave = *ParseJson(events.substr(at, events.find('\n', at) - at));
    EXPECT_TRUE(wave.Find("wave")->is_string());
    for (const auto& p : wave.Find("pieces")->as_array()) streamed_tokens += p.Find("tokens")->as_int();
  }
  Json summary = *ParseJson(events.substr(done + 18, events.find('\n', done + 18) - done - 18));
  EXPECT_EQ(summary.Find("tokens")->as_int(), streamed_tokens);
  EXPECT_LE(streamed_tokens, 50);
  EXPECT_TRUE(summary.Find("route")->Find("strategy")->is_string());
  // Refusals are still plain JSON errors, before any stream starts; and the connection
  // goes on serving after a stream.
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"tea","stream":"yes"})").first, 400);
  EXPECT_EQ(Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"tea","max_tokens":0,"stream":true})").first,
            400);
  auto [fs0, forced] =
      Call(*c, "POST", "/v1/context", R"({"collection":"kb","query":"green tea and espresso","strategy":"complex"})");
  ASSERT_EQ(fs0, 200) << forced.Dump();
  EXPECT_EQ(forced.Find("route")->Find("strategy")->as_string(), "complex");
  EXPECT_EQ(forced.Find("route")->Find("sub_queries")->as_array().size(), 2u);

  // The planner on /query too, and the shards of a collection.
  auto [qs, planned] = Call(*c, "POST", "/v1/collections/kb/query",
                            R"({"query":"compare green tea versus coffee","strategy":"auto","k":2})");
  ASSERT_EQ(qs, 200) << planned.Dump();
  EXPECT_EQ(planned.Find("route")->Find("strategy")->as_string(), "moderate");
  EXPECT_EQ(planned.Find("results")->as_array().size(), 2u);
  auto [ss, shards] = Call(*c, "GET", "/v1/collections/kb/shards");
  ASSERT_EQ(ss, 200) << shards.Dump();
  ASSERT_EQ(shards.Find("shards")->as_array().size(), 1u);
  EXPECT_EQ(shards.Find("shards")->as_array()[0].Find("chunks")->as_int(), 3);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/nope/shards").first, 404);
  auto metrics = c->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("contextd_collection_shards{tenant=\"default\",collection=\"kb\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("contextd_plan_requests_total{strategy=\"complex\",answered_by=\"complex\","
                               "fallback=\"false\"} 1"),
            std::string::npos)
      << metrics->body.substr(metrics->body.find("contextd_plan"), 400);

  // Citations: a document's refs are pulled in with "expand_refs", in /query and /v1/context.
  ASSERT_EQ(Call(*c, "POST", "/v1/collections/kb/documents",
                 R"({"documents":[{"id":"matcha","text":"Matcha is powdered green tea.","refs":["rain"]}]})")
                .first,
            200);
  auto [rs, refd] = Call(*c, "POST", "/v1/collections/kb/query",
                         R"({"query":"matcha powdered","mode":"keyword","k":1,"expand_refs":true})");
  ASSERT_EQ(rs, 200) << refd.Dump();
  ASSERT_EQ(refd.Find("results")->as_array().size(), 2u) << refd.Dump();
  EXPECT_EQ(refd.Find("results")->as_array()[1].Find("id")->as_string(), "rain");
  EXPECT_EQ(refd.Find("results")->as_array()[1].Find("ref_of")->as_string(), "matcha");
  auto [cs, cited] = Call(*c, "POST", "/v1/context",
                          R"({"collection":"kb","query":"matcha powdered","mode":"keyword","candidates":1,
                              "expand_refs":true,"max_tokens":500})");
  ASSERT_EQ(cs, 200) << cited.Dump();
  std::set<std::string> ids;
  for (const auto& p : cited.Find("pieces")->as_array()) ids.insert(p.Find("id")->as_string());
  EXPECT_EQ(ids, std::set<std::string>({"matcha", "rain"}));
  EXPECT_EQ(
      Call(*c, "POST", "/v1/collections/kb/documents", R"({"documents":[{"id":"x","text":"y","refs":"rain"}]})").first,
      400);
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
