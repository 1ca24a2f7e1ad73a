// Reading documents back in bulk over HTTP: the export (GET .../documents, pages in id
// order with a cursor and an optional metadata filter) and POST .../documents/get.
#include <set>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "net/http_client.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr int kDocs = 250;

std::string Id(int i) { return "d" + std::to_string(i); }

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    server_->Start();
    client_ = server_->Client();
    ASSERT_EQ(Do("PUT", "/v1/collections/ex", R"({"embedder":"glove"})").first, 201);
    for (int first = 0; first < kDocs; first += 50) {
      Json docs = Json::MakeArray();
      for (int i = first; i < first + 50; ++i) {
        Json d = Json::MakeObject();
        d["id"] = Id(i);
        d["text"] = "document number " + std::to_string(i) + " about rivers and mountains";
        d["metadata"]["n"] = i;
        d["metadata"]["even"] = i % 2 == 0;
        docs.push_back(std::move(d));
      }
      Json body = Json::MakeObject();
      body["documents"] = std::move(docs);
      ASSERT_EQ(Do("POST", "/v1/collections/ex/documents", body.Dump()).first, 200);
    }
  }
  std::pair<int, Json> Do(const std::string& method, const std::string& target, const std::string& body = "") {
    return Call(*client_, method, target, body);
  }
  // Every page from the start; checks each page's size and that ids only ever increase.
  std::vector<Json> ExportAll(const std::string& query, size_t limit) {
    std::vector<Json> out;
    std::string after;
    for (int page = 0; page < 1000; ++page) {
      std::string target = "/v1/collections/ex/documents?limit=" + std::to_string(limit) + query;
      if (!after.empty()) target += "&after=" + UrlEncode(after);
      auto [status, body] = Do("GET", target);
      EXPECT_EQ(status, 200) << body.Dump();
      if (status != 200) break;
      const auto& docs = body.Find("documents")->as_array();
      EXPECT_LE(docs.size(), limit);
      for (const Json& d : docs) {
        if (!out.empty()) EXPECT_LT(out.back().Find("id")->as_string(), d.Find("id")->as_string());
        out.push_back(d);
      }
      if (body.Find("next")->is_null()) break;
      after = body.Find("next")->as_string();
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ExportTest, PagesThroughEveryDocumentInIdOrder) {
  std::vector<Json> all = ExportAll("", 100);
  ASSERT_EQ(all.size(), static_cast<size_t>(kDocs));
  std::set<std::string> ids;
  for (const Json& d : all) {
    const std::string id = d.Find("id")->as_string();
    ids.insert(id);
    const int n = static_cast<int>(d.Find("metadata")->Find("n")->as_int());
    EXPECT_EQ(id, Id(n));
    EXPECT_EQ(d.Find("text")->as_string(), "document number " + std::to_string(n) + " about rivers and mountains");
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kDocs));
  // The last page says there is no next one; the first page's cursor is its last id.
  auto [status, first] = Do("GET", "/v1/collections/ex/documents?limit=100");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(first.Find("next")->as_string(), first.Find("documents")->as_array().back().Find("id")->as_string());
  // A cursor need not be a stored id: the page starts at the next id in order.
  auto [s2, mid] = Do("GET", "/v1/collections/ex/documents?limit=2&after=d12");
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(mid.Find("documents")->as_array()[0].Find("id")->as_string(), "d120");
  // A document deleted between pages is not on the later ones.
  ASSERT_EQ(Do("DELETE", "/v1/collections/ex/documents/d99").first, 200);
  EXPECT_EQ(ExportAll("", 100).size(), static_cast<size_t>(kDocs - 1));
}

TEST_F(ExportTest, AFilterSelectsByMetadata) {
  std::vector<Json> even = ExportAll("&filter=" + UrlEncode(R"({"even":true})"), 30);
  ASSERT_EQ(even.size(), static_cast<size_t>(kDocs / 2));
  for (const Json& d : even) EXPECT_EQ(d.Find("metadata")->Find("n")->as_int() % 2, 0);
  std::vector<Json> range = ExportAll("&filter=" + UrlEncode(R"({"n":{"$gte":10,"$lt":20}})"), 1000);
  EXPECT_EQ(range.size(), 10u);
}

TEST_F(ExportTest, GetsManyByIdAndNamesTheMissing) {
  auto [status, body] = Do("POST", "/v1/collections/ex/documents/get", R"({"ids":["d7","nope","d5"]})");
  ASSERT_EQ(status, 200) << body.Dump();
  const auto& docs = body.Find("documents")->as_array();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].Find("id")->as_string(), "d7");
  EXPECT_EQ(docs[1].Find("id")->as_string(), "d5");
  EXPECT_EQ(docs[1].Find("metadata")->Find("n")->as_int(), 5);
  ASSERT_EQ(body.Find("missing")->as_array().size(), 1u);
  EXPECT_EQ(body.Find("missing")->as_array()[0].as_string(), "nope");
  // A document named "get" is still read with GET.
  EXPECT_EQ(Do("GET", "/v1/collections/ex/documents/get").first, 404);
}

TEST_F(ExportTest, BadRequestsSayWhatIsWrong) {
  struct Case {
    std::string method, target, body, reason;
  };
  std::string many = "{\"ids\":[";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + "\"x" + std::to_string(i) + "\"";
  many += "]}";
  const Case cases[] = {
      {"GET", "/v1/collections/ex/documents?limit=0", "", "out_of_range"},
      {"GET", "/v1/collections/ex/documents?limit=1001", "", "out_of_range"},
      {"GET", "/v1/collections/ex/documents?limit=ten", "", "out_of_range"},
      {"GET", "/v1/collections/ex/documents?filter=" + UrlEncode("{not json"), "", "invalid_filter"},
      {"GET", "/v1/collections/ex/documents?filter=" + UrlEncode(R"({"n":{"$near":1}})"), "", "invalid_filter"},
      {"GET", "/v1/collections/ex/documents?offset=5", "", "invalid_value"},
      {"GET", "/v1/collections/missing/documents", "", "collection_not_found"},
      {"POST", "/v1/collections/ex/documents/get", "{}", "missing_field"},
      {"POST", "/v1/collections/ex/documents/get", R"({"ids":"d1"})", "invalid_type"},
      {"POST", "/v1/collections/ex/documents/get", R"({"ids":["d1",""]})", "invalid_type"},
      {"POST", "/v1/collections/ex/documents/get", many, "out_of_range"},
  };
  for (const Case& c : cases) {
    auto [status, body] = Do(c.method, c.target, c.body);
    EXPECT_EQ(status, c.reason == "collection_not_found" ? 404 : 400) << c.target;
    const Json* reason = body.Find("error") ? body.Find("error")->Find("code") : nullptr;
    ASSERT_NE(reason, nullptr) << body.Dump();
    EXPECT_EQ(reason->as_string(), c.reason) << c.target << " " << body.Dump();
  }
}

}  // namespace
}  // namespace contextd
