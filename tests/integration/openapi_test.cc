// GET /openapi.json: the document names every route and no other, and what the real
// server says (requests and replies recorded over HTTP, errors included) validates against
// its schemas (Ajv, JSON Schema 2020-12, in tests/js/openapi_validate.mjs).
#include <cstdio>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

const std::string kJsDir = std::string(CONTEXTD_SOURCE_DIR) + "/tests/js";
const std::string kAdmin = "openapi-admin-key-0123456789";

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.path() + "/data", std::vector<std::string>{"--auth"},
        std::vector<std::pair<std::string, std::string>>{{"CONTEXTD_ADMIN_KEY", kAdmin}});
    server_->Start();
    client_ = server_->Client();
    records_ = Json::MakeArray();
  }
  // Sends a request as the admin and records it with the route's pattern.
  Json Send(const std::string& method, const std::string& pattern, const std::string& target,
            const std::string& body = "") {
    auto res = client_->Request(method, target, body, {{"Authorization", "Bearer " + kAdmin}});
    EXPECT_TRUE(res.ok());
    if (!res.ok()) return Json();
    auto parsed = ParseJson(res->body);
    EXPECT_TRUE(parsed.ok()) << method << " " << target << ": " << res->body;
    Json record = Json::MakeObject();
    record["method"] = method;
    record["pattern"] = pattern;
    record["request"] = body.empty() ? Json() : *ParseJson(body);
    record["status"] = res->status;
    record["response"] = parsed.ok() ? *parsed : Json();
    records_.push_back(record);
    return record["response"];
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  Json records_;
};

TEST_F(OpenApiTest, RecordedExchangesValidateAgainstTheDocument) {
  auto spec = client_->Request("GET", "/openapi.json");
  ASSERT_TRUE(spec.ok());
  ASSERT_EQ(spec->status, 200);
  auto doc = ParseJson(spec->body);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->Find("openapi")->as_string(), "3.1.0");

  Send("GET", "/healthz", "/healthz");
  Send("POST", "/v1/admin/tenants", "/v1/admin/tenants", R"({"id":"acme","limits":{"rpm":100}})");
  Send("GET", "/v1/admin/tenants", "/v1/admin/tenants");
  Send("GET", "/v1/admin/tenants/{t}", "/v1/admin/tenants/acme");
  Send("PATCH", "/v1/admin/tenants/{t}", "/v1/admin/tenants/acme", R"({"limits":{"rpm":200}})");
  Json key = Send("POST", "/v1/admin/tenants/{t}/keys", "/v1/admin/tenants/acme/keys", R"({"role":"writer"})");
  Send("GET", "/v1/admin/tenants/{t}/keys", "/v1/admin/tenants/acme/keys");
  ASSERT_NE(key.Find("id"), nullptr);
  const std::string key_path = "/v1/admin/tenants/acme/keys/" + key.Find("id")->as_string();
  Send("POST", "/v1/admin/tenants/{t}/keys/{id}/rotate", key_path + "/rotate");
  Send("DELETE", "/v1/admin/tenants/{t}/keys/{id}", key_path);
  Send("DELETE", "/v1/admin/tenants/{t}", "/v1/admin/tenants/acme");
  Send("GET", "/v1/cluster", "/v1/cluster");
  Send("PUT", "/v1/collections/{name}", "/v1/collections/docs", R"({"embedder":"glove"})");
  Send("PUT", "/v1/collections/{name}", "/v1/collections/docs", R"({"embedder":"glove"})");  // 409
  Send("POST", "/v1/collections/{name}/documents", "/v1/collections/docs/documents",
       R"({"documents":[{"id":"a","text":"red apples grow on trees","metadata":{"k":1}},)"
       R"({"id":"b","title":"Pears","text":"green pears ripen in autumn"}]})");
  Send("POST", "/v1/collections/{name}/documents", "/v1/collections/docs/documents", R"({"documents":[{}]})");
  Send("GET", "/v1/collections", "/v1/collections");
  Send("GET", "/v1/collections/{name}", "/v1/collections/docs");
  Send("GET", "/v1/collections/{name}", "/v1/collections/none");  // 404
  Send("GET", "/v1/collections/{name}/documents/{id}", "/v1/collections/docs/documents/a");
  Send("GET", "/v1/collections/{name}/shards", "/v1/collections/docs/shards");
  Send("POST", "/v1/collections/{name}/query", "/v1/collections/docs/query", R"({"query":"apples","k":2})");
  Send("POST", "/v1/collections/{name}/query", "/v1/collections/docs/query",
       R"({"query":"pears","mode":"keyword","filter":{"k":1},"consistency":"strong"})");
  Send("POST", "/v1/collections/{name}/query", "/v1/collections/docs/query", R"({"k":0})");  // 400
  Send("POST", "/v1/context", "/v1/context", R"({"collection":"docs","query":"apples","max_tokens":100})");
  Send("POST", "/v1/sessions/{id}/turns", "/v1/sessions/s1/turns", R"({"role":"user","content":"hi"})");
  Send("GET", "/v1/sessions/{id}", "/v1/sessions/s1");
  Send("POST", "/v1/context", "/v1/context",
       R"({"collection":"docs","query":"apples","max_tokens":100,"session_id":"s1"})");
  Send("DELETE", "/v1/sessions/{id}", "/v1/sessions/s1");
  Send("PUT", "/v1/cache/{ns}", "/v1/cache/faq", R"({"threshold":0.9})");
  Send("GET", "/v1/cache/{ns}", "/v1/cache/faq");
  Json stored = Send("POST", "/v1/cache/{ns}/store", "/v1/cache/faq/store",
                     R"({"prompt":"hi","response":{"text":"hello"},"scope":{"user":"u1"}})");
  Send("POST", "/v1/cache/{ns}/lookup", "/v1/cache/faq/lookup", R"({"prompt":"hi","scope":{"user":"u1"}})");
  Send("POST", "/v1/cache/{ns}/lookup", "/v1/cache/faq/lookup", R"({"prompt":"bye"})");
  ASSERT_NE(stored.Find("id"), nullptr);
  Send("DELETE", "/v1/cache/{ns}/entries/{id}", "/v1/cache/faq/entries/" + stored.Find("id")->as_string());
  Send("DELETE", "/v1/cache/{ns}/entries", "/v1/cache/faq/entries?all=true");
  Send("POST", "/v1/embeddings", "/v1/embeddings", R"({"model":"glove","input":["hi","there"]})");
  Send("POST", "/v1/embeddings", "/v1/embeddings", R"({"model":"glove","input":"hi","encoding_format":"base64"})");
  Send("POST", "/v1/embeddings", "/v1/embeddings", R"({"model":"nope","input":"hi"})");  // 404
  Send("GET", "/v1/models", "/v1/models");
  Send("GET", "/v1/models/{id}", "/v1/models/glove");
  Send("POST", "/embed", "/embed", R"({"inputs":["hi"]})");
  Send("POST", "/tokenize", "/tokenize", R"({"inputs":"hello world"})");
  Send("GET", "/info", "/info");
  Send("GET", "/health", "/health");
  Send("DELETE", "/v1/collections/{name}/documents/{id}", "/v1/collections/docs/documents/a");
  Send("DELETE", "/v1/collections/{name}", "/v1/collections/docs");

  // The interactive page and Swagger UI's files (installed by scripts/setup), served locally.
  auto page = client_->Request("GET", "/docs");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->Header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/openapi.json"), std::string::npos);
  auto bundle = client_->Request("GET", "/docs/swagger-ui-bundle.js");
  ASSERT_TRUE(bundle.ok());
  EXPECT_EQ(bundle->status, 200) << "scripts/setup puts Swagger UI in models/swagger-ui";
  EXPECT_NE(bundle->body.find("SwaggerUIBundle"), std::string::npos);
  EXPECT_EQ(client_->Request("GET", "/docs/swagger-ui.css")->status, 200);
  EXPECT_EQ(client_->Request("GET", "/docs/%2e%2e%2fopenapi.json")->status, 404) << "only the two files";

  // Every exchange above is checked against the document.
  ASSERT_TRUE(std::ifstream(kJsDir + "/node_modules/ajv/package.json").good())
      << "the npm packages are missing; scripts/setup installs them into " << kJsDir;
  const std::string spec_file = dir_.path() + "/openapi.json", records_file = dir_.path() + "/records.json";
  std::ofstream(spec_file) << spec->body;
  std::ofstream(records_file) << records_.Dump();
  const std::string cmd = "cd " + kJsDir + " && node openapi_validate.mjs " + spec_file + " " + records_file;
  int rc = 0;
  const std::string out = RunShell(cmd, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(" 0 failures"), std::string::npos) << out;
}

}  // namespace
}  // namespace contextd
