// Every kind of bad input gets a 4xx with a reason, and changes nothing.
#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "net/content_encoding.h"
#include "test_util.h"

namespace contextd {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = new ServerProcess(dir_->path() + "/data", {"--max-body-bytes", "100000", "--max-query-tokens", "50"});
    server_->Start();
    auto c = server_->Client();
    ASSERT_EQ(Call(*c, "PUT", "/v1/collections/docs", R"({"embedder":"glove"})").first, 201);
    ASSERT_EQ(Call(*c, "PUT", "/v1/collections/vecs", R"({"embedder":"none","dim":3})").first, 201);
    ASSERT_EQ(Call(*c, "POST", "/v1/collections/docs/documents",
                   R"({"documents":[{"id":"keep","text":"original text","metadata":{"v":1}}]})")
                  .first,
              200);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { client_ = server_->Client(); }

  // Sends a request that must fail with `status` and error code `reason`, then checks that
  // the collections are exactly as seeded.
  void ExpectRejected(const std::string& method, const std::string& target, const std::string& body, int status,
                      const std::string& reason, const HttpHeaders& headers = {}) {
    auto r = client_->Request(method, target, body, headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, status) << method << " " << target << " " << body.substr(0, 200) << " -> " << r->body;
    auto j = ParseJson(r->body);
    ASSERT_TRUE(j.ok()) << r->body;
    const Json* err = j->Find("error");
    ASSERT_NE(err, nullptr) << r->body;
    EXPECT_EQ(err->Find("code")->as_string(), reason) << r->body;
    EXPECT_FALSE(err->Find("message")->as_string().empty());
    ExpectUnchanged();
  }
  void ExpectUnchanged() {
    auto list = Call(*client_, "GET", "/v1/collections").second;
    EXPECT_EQ(list.Find("collections")->as_array().size(), 2u);
    auto docs = Call(*client_, "GET", "/v1/collections/docs").second;
    EXPECT_EQ(docs.Find("documents")->as_int(), 1);
    EXPECT_EQ(docs.Find("chunks")->as_int(), 1);
    EXPECT_EQ(Call(*client_, "GET", "/v1/collections/vecs").second.Find("documents")->as_int(), 0);
    auto keep = Call(*client_, "GET", "/v1/collections/docs/documents/keep").second;
    EXPECT_EQ(keep.Find("text")->as_string(), "original text");
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  std::unique_ptr<HttpClient> client_;
};
TempDir* BadInputTest::dir_ = nullptr;
ServerProcess* BadInputTest::server_ = nullptr;

const char kDocs[] = "/v1/collections/docs/documents";
const char kQuery[] = "/v1/collections/docs/query";

TEST_F(BadInputTest, MalformedJson) {
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a","text":"x"})", 400, "invalid_json");
  ExpectRejected("POST", kDocs, "", 400, "invalid_json");
  ExpectRejected("POST", kQuery, "{query: 'x'}", 400, "invalid_json");
  ExpectRejected("PUT", "/v1/collections/new", "{", 400, "invalid_json");
}

TEST_F(BadInputTest, InvalidUtf8) {
  ExpectRejected("POST", kDocs, "{\"documents\":[{\"id\":\"a\",\"text\":\"caf\xe9\"}]}", 400, "invalid_utf8");
}

TEST_F(BadInputTest, WrongTypesAndMissingFields) {
  ExpectRejected("POST", kDocs, R"({"documents":"a"})", 400, "invalid_type");
  ExpectRejected("POST", kDocs, R"({"docs":[]})", 400, "missing_field");
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a"}]})", 400, "missing_field");
  ExpectRejected("POST", kDocs, R"({"documents":[{"text":"x"}]})", 400, "missing_field");
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a","text":["x"]}]})", 400, "invalid_type");
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a","text":"x","metadata":"m"}]})", 400, "invalid_type");
  ExpectRejected("POST", kQuery, R"({"query":5})", 400, "invalid_type");
  ExpectRejected("POST", kQuery, R"({"k":5})", 400, "missing_field");
  ExpectRejected("PUT", "/v1/collections/new", R"({"embedder":"none"})", 400, "missing_field");
  ExpectRejected("PUT", "/v1/collections/new", R"({"distance":"cosine","dim":"100"})", 400, "invalid_type");
  ExpectRejected("PUT", "/v1/collections/new", R"({"dim":64})", 400, "dimension_mismatch");
}

TEST_F(BadInputTest, EmptyText) {
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a","text":""}]})", 400, "empty_text");
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"a","text":" \t\n "}]})", 400, "empty_text");
  ExpectRejected("POST", kQuery, R"({"query":"   "})", 400, "empty_text");
  ExpectRejected("POST", kQuery, R"({"query":"\u0001\u0000"})", 400, "empty_text");
  // Only control characters: no token, so no chunk; stored, no query could ever find it.
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"good","text":"fine"},{"id":"c","text":"\u0000\u0001"}]})", 400,
                 "empty_text");
  EXPECT_EQ(Call(*client_, "GET", "/v1/collections/docs/documents/good").first, 404);
}

TEST_F(BadInputTest, BadVectors) {
  const std::string vecs = "/v1/collections/vecs/documents";
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","vector":[1,2]}]})", 400, "dimension_mismatch");
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","vector":[1,2,3,4]}]})", 400, "dimension_mismatch");
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","vector":[1,2,1e300]}]})", 400, "invalid_vector");
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","vector":[1,2,NaN]}]})", 400, "invalid_json");
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","vector":[1,2,Infinity]}]})", 400, "invalid_json");
  ExpectRejected("POST", vecs, R"({"documents":[{"id":"a","text":"no vector"}]})", 400, "missing_field");
  ExpectRejected("POST", "/v1/collections/vecs/query", R"({"vector":[1,2]})", 400, "dimension_mismatch");
  ExpectRejected("POST", "/v1/collections/vecs/query", R"({"vector":[1,-1e39,0]})", 400, "invalid_vector");
}

TEST_F(BadInputTest, KOutOfRange) {
  ExpectRejected("POST", kQuery, R"({"query":"x","k":0})", 400, "out_of_range");
  ExpectRejected("POST", kQuery, R"({"query":"x","k":-3})", 400, "out_of_range");
  ExpectRejected("POST", kQuery, R"({"query":"x","k":100000})", 400, "out_of_range");
  ExpectRejected("POST", kQuery, R"({"query":"x","k":1.5})", 400, "invalid_type");
}

TEST_F(BadInputTest, BadFiltersAndModes) {
  ExpectRejected("POST", kQuery, R"({"query":"x","filter":{"v":{"$like":1}}})", 400, "invalid_filter");
  ExpectRejected("POST", kQuery, R"({"query":"x","filter":[1]})", 400, "invalid_filter");
  ExpectRejected("POST", kQuery, R"({"query":"x","mode":"semantic"})", 400, "invalid_mode");
}

TEST_F(BadInputTest, UnknownAndDuplicateCollections) {
  ExpectRejected("POST", "/v1/collections/nope/documents", R"({"documents":[{"id":"a","text":"x"}]})", 404,
                 "collection_not_found");
  ExpectRejected("POST", "/v1/collections/nope/query", R"({"query":"x"})", 404, "collection_not_found");
  ExpectRejected("GET", "/v1/collections/nope", "", 404, "collection_not_found");
  ExpectRejected("GET", "/v1/collections/docs/documents/missing", "", 404, "not_found");
  ExpectRejected("PUT", "/v1/collections/docs", R"({"embedder":"glove"})", 409, "collection_exists");
  ExpectRejected("PUT", "/v1/collections/bad.name", "{}", 400, "invalid_name");
  ExpectRejected("GET", "/v1/collections/docs/documents/%zz", "", 400, "invalid_path");
}

TEST_F(BadInputTest, BodyOverTheLimit) {
  std::string big = R"({"documents":[{"id":"a","text":")" + std::string(200000, 'x') + R"("}]})";
  ExpectRejected("POST", kDocs, big, 413, "body_too_large");
}

// The limit holds for the body once decoded: 200 KB gzipped to a few hundred bytes is still
// over 100 KB. Unknown codings and bodies that are not what the header says are refused.
TEST_F(BadInputTest, CompressedBodiesOverTheLimitOrUndecodable) {
  std::string big = R"({"documents":[{"id":"a","text":")" + std::string(200000, 'x') + R"("}]})";
  ASSERT_LT(EncodeBody("gzip", big).size(), 100000u);
  ExpectRejected("POST", kDocs, EncodeBody("gzip", big), 413, "body_too_large", {{"Content-Encoding", "gzip"}});
  ExpectRejected("POST", kDocs, EncodeBody("zstd", big), 413, "body_too_large", {{"Content-Encoding", "zstd"}});
  const std::string doc = R"({"documents":[{"id":"keep","text":"replaced?"}]})";
  ExpectRejected("POST", kDocs, doc, 415, "unsupported_encoding", {{"Content-Encoding", "br"}});
  ExpectRejected("POST", kDocs, doc, 400, "bad_encoding", {{"Content-Encoding", "gzip"}});
  const std::string gz = EncodeBody("gzip", doc);
  ExpectRejected("POST", kDocs, gz.substr(0, gz.size() - 10), 400, "bad_encoding", {{"Content-Encoding", "gzip"}});
}

TEST_F(BadInputTest, OneBadDocumentRejectsTheWholeBatch) {
  ExpectRejected(
      "POST", kDocs,
      R"({"documents":[{"id":"good","text":"fine"},{"id":"keep","text":"replaced?"},{"id":"bad","text":""}]})", 400,
      "empty_text");
  EXPECT_EQ(Call(*client_, "GET", "/v1/collections/docs/documents/good").first, 404);
  ExpectRejected("POST", kDocs, R"({"documents":[{"id":"x","text":"a"},{"id":"x","text":"b"}]})", 400, "duplicate_id");
}

TEST_F(BadInputTest, QueriesPastTheWordLimitAreRefusedBeforeAnyWork) {
  // The server runs with --max-query-tokens 50.
  std::string words;
  for (int i = 0; i < 51; ++i) words += "tea ";
  ExpectRejected("POST", "/v1/collections/docs/query", R"({"query":")" + words + R"("})", 400, "query_too_long");
  ExpectRejected("POST", "/v1/context", R"({"collection":"docs","query":")" + words + R"("})", 400, "query_too_long");
  // Long in bytes (one 4 KB "word"): refused without counting.
  ExpectRejected("POST", "/v1/collections/docs/query", R"({"query":")" + std::string(4000, 'x') + R"("})", 400,
                 "query_too_long");
  words.resize(words.size() - 4);  // 50 words
  EXPECT_EQ(Call(*client_, "POST", "/v1/collections/docs/query", R"({"query":")" + words + R"("})").first, 200);
}

}  // namespace
}  // namespace contextd
