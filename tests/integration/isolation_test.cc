// The isolation matrix, against the real server with --auth: every route (the table below
// must name every route of /openapi.json) for every role of one tenant, with no key, and
// for another tenant's key on the first tenant's names. What a role may not do is 403
// permission_denied, a missing key 401, and another tenant's collection, session or cache
// namespace is 404, never 403: its existence is not revealed. Nothing the other tenant
// tried changed the first tenant's data.
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

const std::string kAdmin = "isolation-admin-key-0123456789";

enum class Kind { kOpen, kRead, kWrite, kKeyAdmin, kAdmin };

struct Case {
  std::string method, pattern, target, body;
  Kind kind;
  bool owned = false;  // names something acme owns: another tenant gets 404
};

// Every route, with a target naming acme's things. Writes that would destroy what later
// cases need name throwaway things ("tmp", "gone").
std::vector<Case> Cases(const std::string& key_id) {
  const std::string doc = R"({"documents":[{"id":"x","text":"isolation probe"}]})";
  return {
      {"GET", "/healthz", "/healthz", "", Kind::kOpen},
      {"GET", "/readyz", "/readyz", "", Kind::kOpen},
      {"GET", "/openapi.json", "/openapi.json", "", Kind::kOpen},
      {"GET", "/docs", "/docs", "", Kind::kOpen},
      {"GET", "/docs/{file}", "/docs/swagger-ui.css", "", Kind::kOpen},
      {"GET", "/metrics", "/metrics", "", Kind::kOpen},
      {"GET", "/health", "/health", "", Kind::kRead},
      {"GET", "/info", "/info", "", Kind::kRead},
      {"GET", "/v1/cluster", "/v1/cluster", "", Kind::kRead},
      {"GET", "/v1/usage", "/v1/usage", "", Kind::kRead},
      {"GET", "/v1/models", "/v1/models", "", Kind::kRead},
      {"GET", "/v1/models/{id}", "/v1/models/glove", "", Kind::kRead},
      {"GET", "/v1/models/{org}/{name}", "/v1/models/sentence-transformers/none", "", Kind::kRead},
      {"POST", "/v1/embeddings", "/v1/embeddings", R"({"model":"glove","input":"hi"})", Kind::kRead},
      {"POST", "/embed", "/embed", R"({"inputs":"hi"})", Kind::kRead},
      {"POST", "/tokenize", "/tokenize", R"({"inputs":"hi"})", Kind::kRead},
      {"POST", "/mcp", "/mcp", R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})", Kind::kRead},
      {"DELETE", "/mcp", "/mcp", "", Kind::kRead},
      {"GET", "/v1/collections", "/v1/collections", "", Kind::kRead},
      {"GET", "/v1/collections/{name}", "/v1/collections/docs", "", Kind::kRead, true},
      {"GET", "/v1/collections/{name}/shards", "/v1/collections/docs/shards", "", Kind::kRead, true},
      {"GET", "/v1/collections/{name}/documents/{id}", "/v1/collections/docs/documents/d1", "", Kind::kRead, true},
      {"POST", "/v1/collections/{name}/query", "/v1/collections/docs/query", R"({"query":"apples"})", Kind::kRead,
       true},
      {"POST", "/v1/context", "/v1/context", R"({"collection":"docs","query":"apples"})", Kind::kRead, true},
      {"GET", "/v1/sessions/{id}", "/v1/sessions/s1", "", Kind::kRead, true},
      {"GET", "/v1/cache/{ns}", "/v1/cache/faq", "", Kind::kRead, true},
      {"POST", "/v1/cache/{ns}/lookup", "/v1/cache/faq/lookup", R"({"prompt":"hello"})", Kind::kRead, true},
      {"PUT", "/v1/collections/{name}", "/v1/collections/tmp", R"({"embedder":"glove"})", Kind::kWrite},
      {"POST", "/v1/collections/{name}/documents", "/v1/collections/docs/documents", doc, Kind::kWrite, true},
      {"DELETE", "/v1/collections/{name}/documents/{id}", "/v1/collections/docs/documents/gone", "", Kind::kWrite,
       true},
      {"GET", "/v1/collections/{name}/documents", "/v1/collections/docs/documents?limit=5", "", Kind::kRead, true},
      {"POST", "/v1/collections/{name}/documents/get", "/v1/collections/docs/documents/get", R"({"ids":["d1"]})",
       Kind::kRead, true},
      {"POST", "/v1/collections/{name}/snapshots", "/v1/collections/docs/snapshots", "", Kind::kWrite, true},
      {"GET", "/v1/collections/{name}/snapshots", "/v1/collections/docs/snapshots", "", Kind::kRead, true},
      {"GET", "/v1/collections/{name}/snapshots/{snapshot}", "/v1/collections/docs/snapshots/nope", "", Kind::kRead,
       true},
      {"DELETE", "/v1/collections/{name}/snapshots/{snapshot}", "/v1/collections/docs/snapshots/nope", "", Kind::kWrite,
       true},
      {"POST", "/v1/collections/{name}/snapshots/restore", "/v1/collections/tmp2/snapshots/restore", "{}",
       Kind::kWrite},
      {"DELETE", "/v1/collections/{name}", "/v1/collections/tmp", "", Kind::kWrite},
      {"POST", "/v1/sessions/{id}/turns", "/v1/sessions/s2/turns", R"({"role":"user","content":"hi"})", Kind::kWrite},
      {"DELETE", "/v1/sessions/{id}", "/v1/sessions/s2", "", Kind::kWrite},
      {"PUT", "/v1/cache/{ns}", "/v1/cache/faq", R"({"threshold":0.9})", Kind::kWrite},
      {"POST", "/v1/cache/{ns}/store", "/v1/cache/faq/store", R"({"prompt":"p","response":"r"})", Kind::kWrite, true},
      {"POST", "/v1/cache/{ns}/feedback", "/v1/cache/faq/feedback",
       R"({"id":"0123456789abcdef0123456789abcdef","prompt":"hello","correct":true})", Kind::kWrite, true},
      {"DELETE", "/v1/cache/{ns}/entries", "/v1/cache/faq/entries?scope.user=nobody", "", Kind::kWrite, true},
      {"DELETE", "/v1/cache/{ns}/entries/{id}", "/v1/cache/faq/entries/0123456789abcdef0123456789abcdef", "",
       Kind::kWrite, true},
      {"GET", "/v1/admin/tenants/{t}/keys", "/v1/admin/tenants/acme/keys", "", Kind::kKeyAdmin},
      {"POST", "/v1/admin/tenants/{t}/keys", "/v1/admin/tenants/acme/keys", R"({"role":"reader"})", Kind::kKeyAdmin},
      {"POST", "/v1/admin/tenants/{t}/keys/{id}/rotate", "/v1/admin/tenants/acme/keys/" + key_id + "/rotate", "",
       Kind::kKeyAdmin},
      {"DELETE", "/v1/admin/tenants/{t}/keys/{id}", "/v1/admin/tenants/acme/keys/ffffffffffffffff", "",
       Kind::kKeyAdmin},
      {"GET", "/v1/admin/tenants", "/v1/admin/tenants", "", Kind::kAdmin},
      {"GET", "/v1/admin/digest", "/v1/admin/digest", "", Kind::kAdmin},
      {"GET", "/v1/admin/checkpoint", "/v1/admin/checkpoint", "", Kind::kAdmin},
      {"POST", "/v1/admin/tenants", "/v1/admin/tenants", R"({"id":"gamma"})", Kind::kAdmin},
      {"GET", "/v1/admin/tenants/{t}", "/v1/admin/tenants/acme", "", Kind::kAdmin},
      {"PATCH", "/v1/admin/tenants/{t}", "/v1/admin/tenants/acme", R"({"limits":{"rpm":0}})", Kind::kAdmin},
      {"DELETE", "/v1/admin/tenants/{t}", "/v1/admin/tenants/gamma", "", Kind::kAdmin},
  };
}

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.path() + "/data", std::vector<std::string>{"--auth"},
        std::vector<std::pair<std::string, std::string>>{{"CONTEXTD_ADMIN_KEY", kAdmin}});
    server_->Start();
    client_ = server_->Client();
    for (const char* t : {"acme", "beta"}) {
      ASSERT_EQ(As(kAdmin, "POST", "/v1/admin/tenants", std::string(R"({"id":")") + t + "\"}"), 201);
    }
    reader_ = NewKey("acme", "reader");
    writer_ = NewKey("acme", "writer");
    admin_ = NewKey("acme", "admin");
    other_ = NewKey("beta", "admin");
    ASSERT_EQ(As(writer_, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})"), 201);
    ASSERT_EQ(As(writer_, "POST", "/v1/collections/docs/documents",
                 R"({"documents":[{"id":"d1","text":"red apples"},{"id":"gone","text":"to delete"}]})"),
              200);
    ASSERT_EQ(As(writer_, "POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"secret plans"})"), 200);
    ASSERT_EQ(As(writer_, "PUT", "/v1/cache/faq", "{}"), 200);
    ASSERT_EQ(As(writer_, "POST", "/v1/cache/faq/store", R"({"prompt":"hello","response":"acme's answer"})"), 200);
  }
  int As(const std::string& key, const std::string& method, const std::string& target, const std::string& body = "") {
    HttpHeaders h;
    if (!key.empty()) h.emplace_back("Authorization", "Bearer " + key);
    h.emplace_back("Accept", "application/json, text/event-stream");
    auto r = client_->Request(method, target, body, h);
    EXPECT_TRUE(r.ok());
    last_ = r.ok() ? r->body : "";
    return r.ok() ? r->status : 0;
  }
  std::string NewKey(const std::string& tenant, const std::string& role) {
    EXPECT_EQ(As(kAdmin, "POST", "/v1/admin/tenants/" + tenant + "/keys", R"({"role":")" + role + "\"}"), 201);
    auto j = ParseJson(last_);
    EXPECT_TRUE(j.ok());
    if (!j.ok()) return "";
    key_ids_[tenant + "/" + role] = j->Find("id")->as_string();
    return j->Find("key")->as_string();
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  std::string reader_, writer_, admin_, other_, last_;
  std::map<std::string, std::string> key_ids_;
};

TEST_F(IsolationTest, EveryRouteEveryRoleAndAnotherTenantsNames) {
  // A spare key of acme for the rotate case (rotating a tested key would lock it out).
  NewKey("acme", "writer");
  const std::vector<Case> cases = Cases(key_ids_["acme/writer"]);
  // The table names every route the server documents, and nothing else.
  auto spec = ParseJson(client_->Request("GET", "/openapi.json")->body);
  ASSERT_TRUE(spec.ok());
  std::set<std::string> routes, covered;
  for (const auto& [path, methods] : spec->Find("paths")->as_object()) {
    for (const auto& [method, op] : methods.as_object()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      routes.insert(upper + " " + path);
    }
  }
  for (const Case& c : cases) covered.insert(c.method + " " + c.pattern);
  EXPECT_EQ(covered, routes) << "the isolation table must name every route";

  for (const Case& c : cases) {
    const std::string what = c.method + " " + c.target;
    // No key: only the open routes answer.
    const int anonymous = As("", c.method, c.target, c.body);
    if (c.kind == Kind::kOpen) {
      EXPECT_EQ(anonymous, 200) << what << ": " << last_;
      continue;
    }
    EXPECT_EQ(anonymous, 401) << what << ": " << last_;
    const struct {
      const std::string& key;
      const char* name;
      bool allowed;
    } roles[] = {
        {reader_, "reader", c.kind == Kind::kRead},
        {writer_, "writer", c.kind == Kind::kRead || c.kind == Kind::kWrite},
        {admin_, "tenant admin", c.kind != Kind::kAdmin},
    };
    for (const auto& role : roles) {
      const int status = As(role.key, c.method, c.target, c.body);
      if (role.allowed) {
        EXPECT_TRUE(status != 401 && status != 403) << role.name << " " << what << " -> " << status << ": " << last_;
        EXPECT_LT(status, 500) << role.name << " " << what << ": " << last_;
      } else {
        EXPECT_EQ(status, 403) << role.name << " " << what << ": " << last_;
        EXPECT_NE(last_.find("permission_denied"), std::string::npos) << last_;
      }
    }
    // Another tenant (its own admin) on acme's names: not found, never forbidden.
    if (c.owned) {
      const int status = As(other_, c.method, c.target, c.body);
      EXPECT_EQ(status, 404) << "beta " << what << ": " << last_;
    }
    if (c.kind == Kind::kKeyAdmin) {
      EXPECT_EQ(As(other_, c.method, c.target, c.body), 403) << "beta managing acme's keys: " << last_;
    }
  }
  // Acme's things are as acme left them, and beta never saw them.
  EXPECT_EQ(As(reader_, "GET", "/v1/collections/docs/documents/d1"), 200);
  EXPECT_EQ(As(reader_, "GET", "/v1/sessions/s1"), 200);
  EXPECT_NE(last_.find("secret plans"), std::string::npos);
  EXPECT_EQ(As(reader_, "POST", "/v1/cache/faq/lookup", R"({"prompt":"hello"})"), 200);
  EXPECT_NE(last_.find("acme's answer"), std::string::npos);
  EXPECT_EQ(As(other_, "GET", "/v1/collections"), 200);
  EXPECT_EQ(last_.find("\"docs\""), std::string::npos) << "beta lists only its own: " << last_;
}

}  // namespace
}  // namespace contextd
