// Governance with the real binary started with --auth: keys and roles, tenants that cannot
// see each other (collections, sessions, cache namespaces), per-key rate limits with exact
// Retry-After, rotation and revocation, and keys that survive a restart.
#include <fstream>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr char kAdminKey[] = "admin-key-for-the-governance-test";

class GovernanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.path() + "/data", std::vector<std::string>{"--auth"},
        std::vector<std::pair<std::string, std::string>>{{"CONTEXTD_ADMIN_KEY", kAdminKey}});
    server_->Start();
    client_ = server_->Client();
  }

  struct Reply {
    int status = 0;
    Json body;
    ClientResponse raw;
  };
  Reply As(const std::string& key, const std::string& method, const std::string& target, const std::string& body = "") {
    HttpHeaders h;
    if (!key.empty()) h.emplace_back("Authorization", "Bearer " + key);
    auto r = client_->Request(method, target, body, h);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    auto j = ParseJson(r->body);
    return {r->status, j.ok() ? *j : Json(r->body), *r};
  }
  static std::string Code(Reply& r) {
    const Json* e = r.body.Find("error");
    return e != nullptr && e->Find("code") != nullptr ? e->Find("code")->as_string() : "";
  }
  // A key for `tenant` made by the admin key.
  std::string NewKey(const std::string& tenant, const std::string& body) {
    Reply r = As(kAdminKey, "POST", "/v1/admin/tenants/" + tenant + "/keys", body);
    EXPECT_EQ(r.status, 201) << r.raw.body;
    return r.status == 201 ? r.body["key"].as_string() : "";
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(GovernanceTest, KeysRolesIsolationLimitsAndRevocation) {
  // Health checks stay open; everything else wants a key.
  EXPECT_EQ(As("", "GET", "/healthz").status, 200);
  Reply none = As("", "GET", "/v1/collections");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Code(none), "missing_api_key");
  EXPECT_EQ(none.raw.Header("www-authenticate"), "Bearer");
  Reply bogus = As("ctxd_0000000000000000_" + std::string(64, 'a'), "GET", "/v1/collections");
  EXPECT_EQ(bogus.status, 401);
  EXPECT_EQ(Code(bogus), "invalid_api_key");

  ASSERT_EQ(As(kAdminKey, "POST", "/v1/admin/tenants", R"({"id":"acme","limits":{"rpm":1000}})").status, 201);
  ASSERT_EQ(As(kAdminKey, "POST", "/v1/admin/tenants", R"({"id":"globex"})").status, 201);
  EXPECT_EQ(As(kAdminKey, "POST", "/v1/admin/tenants", R"({"id":"acme"})").status, 409);
  EXPECT_EQ(As(kAdminKey, "POST", "/v1/admin/tenants", R"({"id":"a/b"})").status, 400);
  const std::string acme = NewKey("acme", R"({"role":"writer"})");
  const std::string reader = NewKey("acme", R"({"role":"reader","collections":{"docs*":"r"}})");
  const std::string acme_admin = NewKey("acme", R"({"role":"admin"})");
  const std::string limited = NewKey("acme", R"({"role":"reader","limits":{"rpm":3}})");
  const std::string globex = NewKey("globex", R"({"role":"writer"})");
  Reply listed = As(kAdminKey, "GET", "/v1/admin/tenants/acme/keys");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body["keys"].as_array().size(), 4u);
  EXPECT_EQ(listed.raw.body.find("secret"), std::string::npos) << "no secret or hash is ever shown again";

  // acme writes; globex cannot see it, and has a "docs" of its own.
  ASSERT_EQ(As(acme, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})").status, 201);
  ASSERT_EQ(As(acme, "POST", "/v1/collections/docs/documents",
               R"({"documents":[{"id":"d1","text":"Mitochondria make ATP."}]})")
                .status,
            200);
  EXPECT_EQ(As(globex, "GET", "/v1/collections/docs").status, 404);
  EXPECT_EQ(As(globex, "POST", "/v1/collections/docs/query", R"({"query":"ATP"})").status, 404);
  ASSERT_EQ(As(globex, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})").status, 201);
  Reply globex_docs = As(globex, "GET", "/v1/collections/docs");
  EXPECT_EQ(globex_docs.body["documents"].as_int(), 0);
  EXPECT_EQ(As(globex, "GET", "/v1/collections").body["collections"].as_array().size(), 1u);

  // The command-line clients send a key too (--api-key, or CONTEXTD_API_KEY).
  {
    const std::string corpus = dir_.path() + "/corpus.jsonl";
    std::ofstream(corpus) << R"({"_id":"c1","title":"","text":"Ribosomes build proteins."})"
                          << "\n"
                          << R"({"_id":"c2","title":"","text":"Neurons fire action potentials."})"
                          << "\n";
    const std::string ingest = std::string(CONTEXTD_BINARY) +
                               " ingest --url http://127.0.0.1:" + std::to_string(server_->port()) +
                               " --collection docs " + corpus + " > /dev/null 2>&1";
    EXPECT_NE(std::system(ingest.c_str()), 0) << "without a key the ingest is refused";
    EXPECT_EQ(std::system((ingest + " --api-key " + acme).c_str()), 0);
    EXPECT_EQ(As(acme, "GET", "/v1/collections/docs").body["documents"].as_int(), 3);
  }

  // Sessions and cache namespaces are per tenant too.
  ASSERT_EQ(As(acme, "POST", "/v1/sessions/chat-1/turns", R"({"role":"user","content":"hi"})").status, 200);
  EXPECT_EQ(As(globex, "GET", "/v1/sessions/chat-1").status, 404);
  EXPECT_EQ(As(acme, "GET", "/v1/sessions/chat-1").status, 200);
  ASSERT_EQ(As(acme, "PUT", "/v1/cache/faq", R"({"embedder":"glove"})").status, 200);
  EXPECT_EQ(As(globex, "GET", "/v1/cache/faq").status, 404);
  EXPECT_EQ(As(acme, "GET", "/v1/sessions/acme%2Fchat-1").status, 400) << "no path into another tenant's names";

  // Roles and collection grants.
  EXPECT_EQ(As(reader, "POST", "/v1/collections/docs/query", R"({"query":"ATP"})").status, 200);
  Reply denied = As(reader, "POST", "/v1/collections/docs/documents", R"({"documents":[{"id":"x","text":"y"}]})");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(Code(denied), "permission_denied");
  EXPECT_NE(denied.body["error"]["message"].as_string().find("write"), std::string::npos);
  EXPECT_EQ(As(acme, "PUT", "/v1/collections/notes", R"({"embedder":"glove"})").status, 201);
  EXPECT_EQ(As(reader, "GET", "/v1/collections/notes").status, 403) << "outside its docs* grant";
  EXPECT_EQ(As(acme, "POST", "/v1/admin/tenants", R"({"id":"evil"})").status, 403);
  EXPECT_EQ(As(acme_admin, "POST", "/v1/admin/tenants/acme/keys", R"({"role":"reader"})").status, 201);
  EXPECT_EQ(As(acme_admin, "POST", "/v1/admin/tenants/globex/keys", R"({"role":"reader"})").status, 403);

  // A key's own limit: three a minute, then 429 with an exact Retry-After.
  for (int i = 0; i < 3; ++i) {
    Reply ok = As(limited, "GET", "/v1/collections");
    ASSERT_EQ(ok.status, 200) << i;
    EXPECT_EQ(ok.raw.Header("x-ratelimit-limit-requests"), "3");
    EXPECT_EQ(ok.raw.Header("x-ratelimit-remaining-requests"), std::to_string(2 - i));
  }
  Reply limited_out = As(limited, "GET", "/v1/collections");
  EXPECT_EQ(limited_out.status, 429);
  EXPECT_EQ(Code(limited_out), "rate_limit_exceeded");
  const int retry = std::atoi(limited_out.raw.Header("retry-after").c_str());
  EXPECT_GE(retry, 19);
  EXPECT_LE(retry, 20);
  EXPECT_EQ(As(acme, "GET", "/v1/collections").status, 200) << "another key of the tenant is not limited";

  // Rotation and revocation take effect at once.
  const std::string id = acme.substr(5, 16);
  Reply rotated = As(kAdminKey, "POST", "/v1/admin/tenants/acme/keys/" + id + "/rotate");
  ASSERT_EQ(rotated.status, 200);
  const std::string acme2 = rotated.body["key"].as_string();
  EXPECT_EQ(As(acme, "GET", "/v1/collections").status, 401);
  EXPECT_EQ(As(acme2, "GET", "/v1/collections").status, 200);
  ASSERT_EQ(As(kAdminKey, "DELETE", "/v1/admin/tenants/acme/keys/" + id).status, 200);
  EXPECT_EQ(As(acme2, "GET", "/v1/collections").status, 401);
  // A tenant with collections is not deleted under them.
  EXPECT_EQ(As(kAdminKey, "DELETE", "/v1/admin/tenants/globex").status, 409);

  // Tenants and keys are durable.
  server_->Kill(SIGKILL);
  server_->Start();
  client_ = server_->Client();
  EXPECT_EQ(As(globex, "GET", "/v1/collections/docs").status, 200);
  EXPECT_EQ(As(acme2, "GET", "/v1/collections").status, 401);
  Reply tenants = As(kAdminKey, "GET", "/v1/admin/tenants");
  EXPECT_EQ(tenants.body["tenants"].as_array().size(), 2u);
}

}  // namespace
}  // namespace contextd
