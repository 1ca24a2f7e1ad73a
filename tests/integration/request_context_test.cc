// The request context over HTTP: W3C traceparent accepted, echoed and sent on to remote
// providers; X-Request-Timeout-Ms bounding the work (504, nothing written); "usage" in the
// responses of the engine's endpoints.
#include <fstream>

#include <gtest/gtest.h>

#include "common/request_context.h"
#include "fake_provider.h"
#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr char kCallerTrace[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class RequestContextHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.path() + "/config.json";
    // "slow" answers after 300 ms: long enough for a short deadline to pass meanwhile.
    std::ofstream(config) << R"({"embedding":{"batch":{"max_wait_us":500},"cache":{"l2":false},"providers":{
        "fake":{"protocol":"openai","urls":[")"
                          << fast_.url() << R"("],"model":"m","dim":16,"health_interval_ms":0},
        "slow":{"protocol":"openai","urls":[")"
                          << slow_.url() << R"("],"model":"s","dim":16,"health_interval_ms":0,"max_attempts":1}}}})";
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"--config", config});
    server_->Start();
    client_ = server_->Client();
  }
  StatusOr<ClientResponse> Send(const std::string& method, const std::string& target, const std::string& body,
                                HttpHeaders headers = {}) {
    return client_->Request(method, target, body, headers);
  }
  static Json Body(const ClientResponse& r) {
    auto j = ParseJson(r.body);
    return j.ok() ? *j : Json();
  }

  TempDir dir_;
  FakeProvider fast_{16};
  FakeProvider slow_{16, /*per_call_us=*/300000};
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(RequestContextHttpTest, TraceparentIsContinuedEchoedAndSentToProviders) {
  ASSERT_EQ(Send("PUT", "/v1/collections/docs", R"({"embedder":"provider:fake"})")->status, 201);
  auto r = Send("POST", "/v1/collections/docs/documents", R"({"documents":[{"id":"a","text":"green tea"}]})",
                {{"traceparent", kCallerTrace}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto echoed = TraceContext::Parse(r->Header("traceparent"));
  ASSERT_TRUE(echoed.has_value()) << r->Header("traceparent");
  EXPECT_EQ(echoed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(echoed->parent_id, "00f067aa0ba902b7") << "this server's span, not the caller's";
  EXPECT_EQ(echoed->flags, 1);
  // The provider saw the same trace, as a child of this request's span.
  auto sent = TraceContext::Parse(fast_.last_traceparent());
  ASSERT_TRUE(sent.has_value()) << "provider got: '" << fast_.last_traceparent() << "'";
  EXPECT_EQ(sent->trace_id, echoed->trace_id);
  EXPECT_EQ(sent->parent_id, echoed->parent_id);

  // No traceparent, or a malformed one: a new trace.
  for (const HttpHeaders& h : {HttpHeaders{}, HttpHeaders{{"traceparent", "00-zz-bad-01"}}}) {
    auto q = Send("POST", "/v1/collections/docs/query", R"({"query":"tea","mode":"keyword"})", h);
    ASSERT_EQ(q->status, 200);
    auto fresh = TraceContext::Parse(q->Header("traceparent"));
    ASSERT_TRUE(fresh.has_value()) << q->Header("traceparent");
    EXPECT_NE(fresh->trace_id, echoed->trace_id);
  }
  auto e = Send("POST", "/v1/embeddings", R"({"model":"provider:fake","input":"fresh text"})",
                {{"traceparent", kCallerTrace}});
  ASSERT_EQ(e->status, 200) << e->body;
  EXPECT_EQ(TraceContext::Parse(fast_.last_traceparent())->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(Send("GET", "/healthz", "")->Header("traceparent").empty());
}

TEST_F(RequestContextHttpTest, TimeoutHeaderBoundsTheWorkAndWritesNothingLate) {
  ASSERT_EQ(Send("PUT", "/v1/collections/slowdocs", R"({"embedder":"provider:slow"})")->status, 201);
  for (const char* bad : {"abc", "0", "-5", "1.5", "99999999999"}) {
    auto r = Send("POST", "/v1/collections/slowdocs/query", R"({"query":"tea"})", {{"X-Request-Timeout-Ms", bad}});
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(Body(*r).Find("error")->Find("code")->as_string(), "invalid_header") << r->body;
  }
  // The provider takes 300 ms; the client gives the query 50.
  auto q = Send("POST", "/v1/collections/slowdocs/query", R"({"query":"tea","mode":"hybrid"})",
                {{"X-Request-Timeout-Ms", "50"}});
  EXPECT_EQ(q->status, 504) << q->body;
  EXPECT_EQ(Body(*q).Find("error")->Find("code")->as_string(), "deadline_exceeded") << q->body;
  // A write past its deadline is refused and leaves nothing behind.
  auto w = Send("POST", "/v1/collections/slowdocs/documents", R"({"documents":[{"id":"late","text":"too slow"}]})",
                {{"X-Request-Timeout-Ms", "50"}});
  EXPECT_EQ(w->status, 504) << w->body;
  EXPECT_EQ(Send("GET", "/v1/collections/slowdocs/documents/late", "")->status, 404);
  // With time enough, the same write goes through.
  auto ok = Send("POST", "/v1/collections/slowdocs/documents", R"({"documents":[{"id":"late","text":"too slow"}]})",
                 {{"X-Request-Timeout-Ms", "5000"}});
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(RequestContextHttpTest, ResponsesReportUsage) {
  ASSERT_EQ(Send("PUT", "/v1/collections/docs", R"({"embedder":"provider:fake"})")->status, 201);
  // "Green tea is made from leaves." is 7 cl100k tokens; the provider bills them.
  auto w =
      Send("POST", "/v1/collections/docs/documents",
           R"({"documents":[{"id":"a","text":"Green tea is made from leaves."},{"id":"b","text":"Coffee beans."}]})");
  ASSERT_EQ(w->status, 200) << w->body;
  const Json wu = *Body(*w).Find("usage");
  EXPECT_EQ(wu.Find("documents_written")->as_int(), 2);
  EXPECT_GT(wu.Find("bytes_written")->as_int(), 40);
  EXPECT_EQ(wu.Find("embedding_tokens")->as_int(), 7 + 3) << wu.Dump();
  auto q = Send("POST", "/v1/collections/docs/query", R"({"query":"green tea","mode":"hybrid","k":2})");
  ASSERT_EQ(q->status, 200) << q->body;
  const Json qu = *Body(*q).Find("usage");
  EXPECT_EQ(qu.Find("embedding_tokens")->as_int(), 2);
  EXPECT_GE(qu.Find("chunks_scored")->as_int(), 2);
  EXPECT_EQ(qu.Find("documents_written")->as_int(), 0);
  auto c = Send("POST", "/v1/context", R"({"collection":"docs","query":"how is tea made","max_tokens":200})");
  ASSERT_EQ(c->status, 200) << c->body;
  EXPECT_GE(Body(*c).Find("usage")->Find("chunks_scored")->as_int(), 1) << c->body;
  auto d = Send("DELETE", "/v1/collections/docs/documents/a", "");
  ASSERT_EQ(d->status, 200);
  EXPECT_EQ(Body(*d).Find("usage")->Find("documents_written")->as_int(), 1);
}

}  // namespace
}  // namespace contextd
