#include "server/request_codec.h"
#include "server/field_reader.h"

#include <gtest/gtest.h>

#include "embed/embedder_registry.h"

namespace contextd {
namespace {

Json J(const std::string& s) { return *ParseJson(s); }

std::string Reason(const Status& s) { return s.reason(); }

TEST(RequestCodecTest, CollectionDefaultsAndValidation) {
  EmbedderRegistry reg("/nonexistent");
  auto c = ParseCollectionRequest(Json(), reg);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->embedder, "glove");
  EXPECT_EQ(c->chunking.max_tokens, 200);
  auto none = ParseCollectionRequest(J(R"({"embedder":"none","dim":3,"distance":"l2"})"), reg);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->dim, 3);
  EXPECT_EQ(none->metric, Metric::kL2);
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"embedder":"none"})"), reg).status()), "missing_field");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"embedder":"bert"})"), reg).status()), "unknown_embedder");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"distance":"manhattan"})"), reg).status()), "invalid_distance");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"embedder":5})"), reg).status()), "invalid_type");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"chunking":{"max_tokens":50,"overlap":50}})"), reg).status()),
            "out_of_range");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"colour":"red"})"), reg).status()), "unknown_field");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"embedder":"none","dim":0})"), reg).status()), "out_of_range");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"embedder":"hash","dim":12})"), reg).status()), "dimension_mismatch");
  // 1e-300 is above 0 as a double, 0 as the float the threshold is kept as.
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"cache":{"threshold":1e-300}})"), reg).status()), "out_of_range");
}

TEST(RequestCodecTest, IndexSettings) {
  EmbedderRegistry reg("/nonexistent");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"index":{"M":100}})"), reg).status()), "out_of_range");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"index":{"efc":10}})"), reg).status()), "unknown_field");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"index":[]})"), reg).status()), "invalid_type");
  EXPECT_EQ(Reason(ParseCollectionRequest(J(R"({"index":{"quantization":"pq"}})"), reg).status()),
            "invalid_quantization");
  auto tuned = ParseCollectionRequest(J(R"({"index":{"M":8,"ef_construction":64,"quantization":"int8"}})"), reg);
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->hnsw_m, 8);
  EXPECT_EQ(tuned->hnsw_ef_construction, 64);
  EXPECT_TRUE(tuned->int8);
  auto stored = CollectionConfig::FromStored(tuned->ToJson());
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->int8);
  EXPECT_EQ(stored->hnsw_m, 8);
  EXPECT_EQ(stored->hnsw_ef_construction, 64);
  EXPECT_EQ(ParseQueryRequest(J(R"({"query":"x","ef":99})"), 3, true)->ef, 99u);
  EXPECT_EQ(ParseQueryRequest(J(R"({"query":"x","depth":40})"), 3, true)->depth, 40u);
  EXPECT_EQ(ParseQueryRequest(J(R"({"query":"x"})"), 3, true)->depth, 0u);
}

TEST(RequestCodecTest, NamesAndIds) {
  EXPECT_TRUE(ValidateCollectionName("docs_2024-v1").ok());
  EXPECT_FALSE(ValidateCollectionName("").ok());
  EXPECT_FALSE(ValidateCollectionName("a/b").ok());
  EXPECT_FALSE(ValidateCollectionName(std::string(65, 'a')).ok());
  EXPECT_TRUE(ValidateDocumentId("doc 1/ü").ok());
  EXPECT_FALSE(ValidateDocumentId(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateDocumentId(std::string(513, 'a')).ok());
}

TEST(RequestCodecTest, UpsertParsing) {
  auto docs = ParseUpsertRequest(
      J(R"({"documents":[{"id":"a","text":"hello","metadata":{"y":1}},{"_id":7,"title":"T","text":"x"}]})"), 3, false);
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[1].id, "7");
  EXPECT_EQ((*docs)[1].title, "T");
  EXPECT_EQ((*docs)[0].metadata.Dump(), R"({"y":1})");
}

TEST(RequestCodecTest, UpsertRejectsEveryKindOfBadDocument) {
  struct Case {
    const char* body;
    const char* reason;
  } cases[] = {
      {R"([])", "invalid_type"},
      {R"({})", "missing_field"},
      {R"({"documents":{}})", "invalid_type"},
      {R"({"documents":[]})", "empty_batch"},
      {R"({"documents":[{"text":"x"}]})", "missing_field"},
      {R"({"documents":[{"id":"a"}]})", "missing_field"},
      {R"({"documents":[{"id":"a","text":""}]})", "empty_text"},
      {R"({"documents":[{"id":"a","text":"  \n"}]})", "empty_text"},
      {R"({"documents":[{"id":"a","text":5}]})", "invalid_type"},
      {R"({"documents":[{"id":true,"text":"x"}]})", "invalid_type"},
      {R"({"documents":[{"id":"","text":"x"}]})", "invalid_id"},
      {R"({"documents":[{"id":"a","text":"x","metadata":[1]}]})", "invalid_type"},
      {R"({"documents":[{"id":"a","text":"x","vector":[1,2]}]})", "dimension_mismatch"},
      {R"({"documents":[{"id":"a","text":"x","vector":[1,"2",3]}]})", "invalid_type"},
      {R"({"documents":[{"id":"a","text":"x","vector":[1,2,1e39]}]})", "invalid_vector"},
      {R"({"documents":[{"id":"a","text":"x","vector":[1,2,-1e20]}]})",
       "invalid_vector"},  // finite, but distances overflow
      {R"({"documents":[{"id":"a","text":"x"},{"id":"a","text":"y"}]})", "duplicate_id"},
      {R"({"documents":[{"id":"a","text":"x","colour":1}]})", "unknown_field"},
      {R"({"documents":[{"id":"a","text":"x"}],"wait":true})", "unknown_field"},
  };
  for (const auto& c : cases) {
    auto r = ParseUpsertRequest(J(c.body), 3, false);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().reason(), c.reason) << c.body << ": " << r.status().message();
  }
  EXPECT_EQ(ParseUpsertRequest(J(R"({"documents":[{"id":"a","text":"x"}]})"), 3, true).status().reason(),
            "missing_field");
  EXPECT_TRUE(ParseUpsertRequest(J(R"({"documents":[{"id":"a","vector":[1,2,3]}]})"), 3, true).ok());
}

TEST(RequestCodecTest, QueryParsingAndDefaults) {
  auto q = ParseQueryRequest(J(R"({"query":"x"})"), 3, true);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->mode, QueryMode::kHybrid);
  EXPECT_EQ(q->k, 10u);
  EXPECT_EQ(ParseQueryRequest(J(R"({"query":"x"})"), 3, false)->mode, QueryMode::kKeyword);
  EXPECT_EQ(ParseQueryRequest(J(R"({"vector":[1,2,3]})"), 3, false)->mode, QueryMode::kVector);
  struct Case {
    const char* body;
    const char* reason;
  } cases[] = {
      {R"({})", "missing_field"},
      {R"({"query":""})", "empty_text"},
      {R"({"query":"x","k":0})", "out_of_range"},
      {R"({"query":"x","k":1001})", "out_of_range"},
      {R"({"query":"x","k":2.5})", "invalid_type"},
      {R"({"query":"x","k":"3"})", "invalid_type"},
      {R"({"query":"x","mode":"fuzzy"})", "invalid_mode"},
      {R"({"vector":[1,2],"mode":"vector"})", "dimension_mismatch"},
      {R"({"vector":[1,2,3],"mode":"keyword"})", "missing_field"},
      {R"({"query":"x","filter":{"a":{"$regex":"b"}}})", "invalid_filter"},
      {R"({"query":"x","limit":3})", "unknown_field"},
      {R"({"query":"x","ef":0})", "out_of_range"},
      {R"({"query":"x","depth":0})", "out_of_range"},
      {R"({"query":"x","depth":"deep"})", "invalid_type"},
      {R"({"query":"x","ef":"big"})", "invalid_type"},
      {R"({"query":"x","fusion":"max"})", "invalid_value"},
      {R"({"query":"x","fusion":"weighted","alpha":1.5})", "out_of_range"},
      {R"({"query":"x","alpha":0.3})", "invalid_value"},
      {R"({"query":"x","mmr":0.7})", "invalid_type"},
      {R"({"query":"x","mmr":{"lambda":-1}})", "out_of_range"},
      {R"({"query":"x","mmr":{"lamda":0.5}})", "unknown_field"},
      {R"({"query":"x","group_by":"chunk"})", "invalid_value"},
      {R"({"query":"x","bm25":{"k1":-1}})", "out_of_range"},
      {R"({"query":"x","bm25":{"b":2}})", "out_of_range"},
      {R"({"query":"x","bm25":{"k3":1}})", "unknown_field"},
  };
  for (const auto& c : cases) {
    auto r = ParseQueryRequest(J(c.body), 3, true);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().reason(), c.reason) << c.body << ": " << r.status().message();
  }
  EXPECT_EQ(ParseQueryRequest(J(R"({"query":"x","mode":"vector"})"), 3, false).status().reason(), "missing_field");
  auto full = ParseQueryRequest(J(R"({"query":"x","fusion":"weighted","alpha":0.25,"mmr":{},"group_by":"document",
                                      "bm25":{"k1":0.9,"b":0.4}})"),
                                3, true);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->fusion, Fusion::kWeighted);
  EXPECT_FLOAT_EQ(full->alpha, 0.25f);
  EXPECT_FLOAT_EQ(*full->mmr_lambda, 0.7f) << "the default lambda";
  EXPECT_TRUE(full->group_by_document);
  EXPECT_FLOAT_EQ(*full->bm25_k1, 0.9f);
  EXPECT_FLOAT_EQ(*full->bm25_b, 0.4f);
  auto msg = ParseQueryRequest(J(R"({"query":"x","fusion":"weighted","alpha":2})"), 3, true).status().message();
  EXPECT_NE(msg.find("'alpha' must be a number from 0 to 1"), std::string::npos) << msg;
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

TEST(QueryCacheKeyTest, EqualRequestsShareAKeyAndEveryResultChangingFieldChangesIt) {
  const auto key = [](const std::string& body) {
    auto q = ParseQueryRequest(*ParseJson(body), 2, /*has_embedder=*/true);
    EXPECT_TRUE(q.ok()) << body << ": " << q.status().ToString();
    return q.ok() ? QueryCacheKey(*q) : std::string();
  };
  const std::string base = key(R"({"query":"a","k":5,"filter":{"year":{"$gte":2020},"lang":"en"}})");
  // The query itself and the cache switch are not part of it; member order is not either.
  EXPECT_EQ(base, key(R"({"filter":{"lang":"en","year":{"$gte":2020}},"k":5,"query":"b"})"));
  EXPECT_EQ(base, key(R"({"query":"a","k":5,"filter":{"year":{"$gte":2020},"lang":"en"},"cache":"default"})"));
  // A default given explicitly is the same request.
  EXPECT_EQ(key(R"({"query":"a"})"), key(R"({"query":"a","k":10,"mode":"hybrid"})"));
  for (const char* other : {
           R"({"query":"a","k":6,"filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"filter":{"year":{"$gte":2021},"lang":"en"}})",
           R"({"query":"a","k":5,"mode":"keyword","filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"ef":99,"filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"fusion":"weighted","alpha":0.3,"filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"mmr":{"lambda":0.5},"filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"group_by":"document","filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"bm25":{"k1":1.5},"filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"shards":"all","filter":{"year":{"$gte":2020},"lang":"en"}})",
           R"({"query":"a","k":5,"expand_refs":true,"filter":{"year":{"$gte":2020},"lang":"en"}})",
       }) {
    EXPECT_NE(base, key(other)) << other;
  }
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

TEST(RequestCodecTest, ContextRequests) {
  auto r =
      ParseContextRequest(J(R"({"collection":"c","query":"why","max_tokens":50,"max_ms":0.5,"stream":true})"), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->max_tokens, 50u);
  EXPECT_EQ(r->max_ms, 1) << "half a millisecond is a deadline, not none";
  EXPECT_EQ(r->mode, QueryMode::kHybrid);
  EXPECT_EQ(ParseContextRequest(J(R"({"query":"why"})"), false)->mode, QueryMode::kKeyword);
  EXPECT_EQ(ParseContextRequest(J(R"({"query":"why","strategy":"complex"})"), true)->strategy, Strategy::kComplex);
  EXPECT_EQ(r->fusion, Fusion::kAuto);
  EXPECT_EQ(ParseContextRequest(J(R"({"query":"why","fusion":"rrf"})"), true)->fusion, Fusion::kRrf);
  struct Case {
    const char* body;
    const char* reason;
  } cases[] = {
      {R"({})", "missing_field"},
      {R"({"query":" "})", "empty_text"},
      {R"({"query":"x","max_tokens":0})", "out_of_range"},
      {R"({"query":"x","max_tokens":"10"})", "invalid_type"},
      {R"({"query":"x","max_ms":-1})", "out_of_range"},
      {R"({"query":"x","candidates":1001})", "out_of_range"},
      {R"({"query":"x","strategy":"deep"})", "invalid_value"},
      {R"({"query":"x","fusion":"max"})", "invalid_value"},
      {R"({"query":"x","mode":"vector"})", "invalid_mode"},  // no embedder
      {R"({"query":"x","session_id":7})", "invalid_type"},
      {R"({"query":"x","budget":7})", "unknown_field"},
  };
  for (const auto& c : cases) {
    auto bad = ParseContextRequest(J(c.body), false);
    ASSERT_FALSE(bad.ok()) << c.body;
    EXPECT_EQ(bad.status().reason(), c.reason) << c.body << ": " << bad.status().message();
  }
}

// One mistake, one reason and one message shape, whichever endpoint reads it.
TEST(FieldReaderTest, OneReasonPerMistake) {
  const Json body = J(R"({"n":2.5,"big":1e300,"s":7,"o":{"x":{"deep":"y"}},"f":"a","b":1})");
  auto r = FieldReader::Open(body, "");
  ASSERT_TRUE(r.ok());
  int n = 3;
  EXPECT_EQ(r->Int("n", 0, 10, &n).reason(), "invalid_type");
  EXPECT_EQ(r->Int("big", 0, 10, &n).reason(), "out_of_range");
  EXPECT_EQ(r->Int("big", 0, 10, &n).message(), "'big' must be a whole number from 0 to 10, got 1e+300");
  EXPECT_EQ(r->Int("absent", 0, 10, &n).code(), StatusCode::kOk);
  EXPECT_EQ(n, 3) << "an absent member leaves the default";
  std::string s;
  EXPECT_EQ(r->String("s", &s).message(), "'s' must be a string, got a number");
  bool b = false;
  EXPECT_EQ(r->Bool("b", &b).reason(), "invalid_type");
  EXPECT_EQ(r->OneOf("f", {"x", "y"}, &s).reason(), "invalid_value");
  EXPECT_EQ(r->Require("missing").message(), "missing field 'missing'");
  EXPECT_EQ(r->Known({"n", "big"}).reason(), "unknown_field");
  auto o = r->Object("o");
  ASSERT_TRUE(o.ok() && o->has_value());
  auto x = (*o)->Object("x");
  ASSERT_TRUE(x.ok() && x->has_value());
  EXPECT_EQ((*x)->Known({"other"}).message(), "unknown field 'deep' in o.x; expected other");
  EXPECT_EQ((*x)->Int("deep", 0, 1, &n).message(), "'o.x.deep' must be an integer, got a string");
  EXPECT_EQ(r->Object("s").status().reason(), "invalid_type");
  float f = 0;
  EXPECT_EQ(r->Number("big", 0, 1, &f).reason(), "out_of_range");
  EXPECT_EQ(FieldReader::Open(J("[1]"), "").status().message(), "the request body must be a JSON object, got an array");
  EXPECT_EQ(FieldReader::Open(J("[1]"), "documents[0]").status().message(),
            "'documents[0]' must be an object, got an array");
  EXPECT_TRUE(FieldReader::Open(Json(), "", /*null_is_empty=*/true).ok());
}

}  // namespace
}  // namespace contextd
