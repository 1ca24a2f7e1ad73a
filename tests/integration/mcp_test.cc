// POST /mcp: the transport's rules over raw HTTP (sessions, Origin, Accept, notifications),
// then the real @modelcontextprotocol/sdk client (tests/js/mcp.test.mjs) calling every
// tool against the real binary with auth on.
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "integration/node_tests.h"
#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

const std::string kAdmin = "mcp-admin-key-0123456789";

class McpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.path() + "/config.json";
    std::ofstream(config) << R"({"auth":{"enabled":true},"mcp":{"store":true}})";
    server_ = std::make_unique<ServerProcess>(
        dir_.path() + "/data", std::vector<std::string>{"--config", config},
        std::vector<std::pair<std::string, std::string>>{{"CONTEXTD_ADMIN_KEY", kAdmin}});
    server_->Start();
    client_ = server_->Client();
    const HttpHeaders admin = {{"Authorization", "Bearer " + kAdmin}};
    ASSERT_EQ(client_->Request("POST", "/v1/admin/tenants", R"({"id":"acme"})", admin)->status, 201);
    writer_ = NewKey("writer");
    reader_ = NewKey("reader");
    const HttpHeaders as_writer = {{"Authorization", "Bearer " + writer_}};
    ASSERT_EQ(client_->Request("PUT", "/v1/collections/docs", R"({"embedder":"glove"})", as_writer)->status, 201);
    auto docs = client_->Request(
        "POST", "/v1/collections/docs/documents",
        R"({"documents":[{"id":"mito","text":"Mitochondria make ATP through oxidative phosphorylation."},)"
        R"({"id":"ribo","text":"Ribosomes translate messenger RNA into proteins."}]})",
        as_writer);
    ASSERT_EQ(docs->status, 200) << docs->body;
  }
  std::string NewKey(const std::string& role) {
    auto made = client_->Request("POST", "/v1/admin/tenants/acme/keys", R"({"role":")" + role + R"("})",
                                 {{"Authorization", "Bearer " + kAdmin}});
    EXPECT_EQ(made->status, 201) << made->body;
    return ParseJson(made->body)->Find("key")->as_string();
  }
  // One JSON-RPC message to /mcp with the writer key.
  StatusOr<ClientResponse> Post(const std::string& body, HttpHeaders extra = {}) {
    HttpHeaders h = {{"Authorization", "Bearer " + writer_}, {"Accept", "application/json, text/event-stream"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return client_->Request("POST", "/mcp", body, h);
  }
  std::string Initialize() {
    auto r = Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
                  R"("capabilities":{},"clientInfo":{"name":"raw","version":"0"}}})");
    EXPECT_EQ(r->status, 200) << r->body;
    return r->Header("mcp-session-id");
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  std::string writer_, reader_;
};

TEST_F(McpTest, TheTransportsRules) {
  auto init = Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2099-01-01"}})");
  ASSERT_EQ(init->status, 200) << init->body;
  EXPECT_EQ(ParseJson(init->body)->Find("result")->Find("protocolVersion")->as_string(), "2025-06-18")
      << "an unknown version is answered with the one this server speaks";
  const std::string session = Initialize();
  ASSERT_EQ(session.size(), 64u);
  const HttpHeaders with_session = {{"Mcp-Session-Id", session}};

  // A notification is accepted with no body; a request without a session is a 400, with an
  // unknown one a 404 (the client starts over).
  auto note = Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", with_session);
  EXPECT_EQ(note->status, 202);
  EXPECT_EQ(note->body, "");
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})")->status, 400);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})", {{"Mcp-Session-Id", "feed"}})->status, 404);
  auto listed = Post(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})", with_session);
  ASSERT_EQ(listed->status, 200);
  EXPECT_EQ(ParseJson(listed->body)->Find("id")->as_int(), 2);

  // A client that accepts only a stream gets the answer as one SSE event.
  auto sse = client_->Request(
      "POST", "/mcp", R"({"jsonrpc":"2.0","id":3,"method":"ping"})",
      {{"Authorization", "Bearer " + writer_}, {"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}});
  ASSERT_EQ(sse->status, 200);
  EXPECT_EQ(sse->Header("content-type"), "text/event-stream");
  EXPECT_EQ(sse->body, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n");
  EXPECT_EQ(
      client_->Request("POST", "/mcp", "{}", {{"Authorization", "Bearer " + writer_}, {"Accept", "text/html"}})->status,
      406);

  // A browser page from elsewhere may not use it; this machine's may.
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":4,"method":"ping"})",
                 {{"Mcp-Session-Id", session}, {"Origin", "https://evil.example"}})
                ->status,
            403);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":4,"method":"ping"})",
                 {{"Mcp-Session-Id", session}, {"Origin", "http://localhost:6274"}})
                ->status,
            200);

  // Malformed messages get JSON-RPC errors; unknown methods too; a bad protocol header 400.
  auto garbled = Post("{not json", with_session);
  EXPECT_EQ(garbled->status, 400);
  EXPECT_EQ(ParseJson(garbled->body)->Find("error")->Find("code")->as_int(), -32700);
  auto batch = Post(R"([{"jsonrpc":"2.0","id":5,"method":"ping"}])", with_session);
  EXPECT_EQ(ParseJson(batch->body)->Find("error")->Find("code")->as_int(), -32600);
  auto unknown = Post(R"({"jsonrpc":"2.0","id":6,"method":"resources/list"})", with_session);
  EXPECT_EQ(ParseJson(unknown->body)->Find("error")->Find("code")->as_int(), -32601);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":7,"method":"ping"})",
                 {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "1999-01-01"}})
                ->status,
            400);
  // No key, no tools; GET (a server stream) is not offered; DELETE ends the session.
  EXPECT_EQ(client_->Request("POST", "/mcp", R"({"jsonrpc":"2.0","id":8,"method":"ping"})")->status, 401);
  EXPECT_EQ(client_->Request("GET", "/mcp", "", {{"Authorization", "Bearer " + writer_}})->status, 405);
  EXPECT_EQ(
      client_->Request("DELETE", "/mcp", "", {{"Authorization", "Bearer " + writer_}, {"Mcp-Session-Id", session}})
          ->status,
      200);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":9,"method":"ping"})", with_session)->status, 404);
}

// The real MCP SDK client: connect, list tools, call each, and read a tool error.
TEST_F(McpTest, RealMcpSdkClient) {
  ExpectNodeTestsPass("mcp.test.mjs",
                      "CONTEXTD_URL=http://127.0.0.1:" + std::to_string(server_->port()) + " WRITER_KEY=" + writer_ +
                          " READER_KEY=" + reader_,
                      6, "@modelcontextprotocol/sdk");
}

}  // namespace
}  // namespace contextd
