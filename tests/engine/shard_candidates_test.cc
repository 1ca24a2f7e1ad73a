// A query spread over shards as if each lived on another node: every shard's candidates
// gathered on their own, through their wire form, and assembled, give exactly the answer
// of one search over the whole collection, in every mode.
#include "engine/shard_candidates.h"

#include <gtest/gtest.h>

#include "engine/collection.h"
#include "engine/query_executor.h"
#include "server/request_codec.h"
#include "test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

std::string Hits(const std::vector<QueryHit>& hits) {
  std::string out;
  for (const auto& h : hits) out += h.doc_id + "#" + std::to_string(h.chunk) + "=" + std::to_string(h.score) + " ";
  return out;
}

class ShardCandidatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), nullptr);
    // Small shards: several of them, each scanned exactly, so one search over all of them
    // is exact too and the comparison is the assembly's alone.
    collection_ =
        *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "sf",
                        J(R"({"embedder":"glove","sharding":{"max_shard_chunks":120},"cache":{"enabled":false}})"));
    UpsertResult r;
    std::vector<DocumentInput> docs = SciFactDocuments(300);
    for (size_t i = 0; i < docs.size(); i += 50) {
      std::vector<DocumentInput> batch(docs.begin() + static_cast<ptrdiff_t>(i),
                                       docs.begin() + static_cast<ptrdiff_t>(std::min(docs.size(), i + 50)));
      ASSERT_TRUE(collection_->Upsert(std::move(batch), &r).ok());
    }
    collection_->WaitForSplits();
    ASSERT_GE(collection_->ShardIds().size(), 3u) << "the test needs several shards";
  }

  // The query answered from the parts of every shard, each gathered alone and sent
  // through its wire form: its vector candidates when it is among `vector_shards` (the
  // routed ones), its keyword candidates always.
  QueryResult Assembled(const QueryRequest& req, const std::vector<uint32_t>& vector_shards) {
    std::vector<ShardCandidates> parts;
    QueryMode mode = req.mode;
    for (uint32_t id : collection_->ShardIds()) {
      const bool routed = std::find(vector_shards.begin(), vector_shards.end(), id) != vector_shards.end();
      auto part = collection_->Candidates(RequestContext::Background(), req,
                                          routed ? std::vector<uint32_t>{id} : std::vector<uint32_t>{}, {id}, &mode);
      EXPECT_TRUE(part.ok()) << part.status().ToString();
      if (!part.ok()) return {};
      auto decoded = DecodeShardCandidates(EncodeShardCandidates(*part));
      EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
      parts.push_back(std::move(decoded).value());
    }
    auto out = collection_->Assemble(RequestContext::Background(), req, mode, parts);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? std::move(out).value() : QueryResult();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<Collection> collection_;
};

TEST_F(ShardCandidatesTest, EveryShardGatheredAloneAndAssembledAnswersAsOneSearch) {
  const char* variants[] = {
      R"({"mode":"vector"})",
      R"({"mode":"keyword"})",
      R"({"mode":"hybrid"})",
      R"({"mode":"hybrid","fusion":"rrf"})",
      R"({"mode":"hybrid","fusion":"weighted","alpha":0.3})",
      R"({"mode":"hybrid","group_by":"document"})",
      R"({"mode":"hybrid","mmr":{"lambda":0.5}})",
      R"({"mode":"keyword","filter":{"year":{"$gte":2010}}})",
      R"({"mode":"vector","filter":{"year":{"$lt":2005}},"k":5})",
      R"({"mode":"keyword","bm25":{"k1":0.9,"b":0.4},"k":20})",
  };
  const std::vector<uint32_t> all = collection_->ShardIds();
  size_t compared = 0, nonempty = 0;
  for (const std::string& claim : SciFactClaims(25)) {
    for (const char* variant : variants) {
      Json body = J(variant);
      body["query"] = claim;
      if (body.Find("k") == nullptr) body["k"] = 10;
      body["shards"] = "all";
      auto req = ParseQueryRequest(body, collection_->config().dim, true);
      ASSERT_TRUE(req.ok()) << req.status().ToString() << " " << variant;
      auto whole = collection_->Query(*req);
      ASSERT_TRUE(whole.ok()) << whole.status().ToString();
      const QueryResult parts = Assembled(*req, all);
      EXPECT_EQ(Hits(parts.hits), Hits(whole->hits)) << variant << ": " << claim;
      for (size_t h = 0; h < parts.hits.size() && h < whole->hits.size(); ++h) {
        EXPECT_EQ(parts.hits[h].text, whole->hits[h].text)
            << variant << " hit " << h << " " << parts.hits[h].doc_id << "#" << parts.hits[h].chunk;
        EXPECT_EQ(parts.hits[h].metadata.Dump(), whole->hits[h].metadata.Dump());
      }
      ++compared;
      nonempty += !whole->hits.empty();
    }
  }
  EXPECT_EQ(compared, 250u);
  EXPECT_GT(nonempty, 200u);
}

// Another node may ask by a layout older or newer than this node's built shards: shard 0,
// split here long ago, is answered by every shard under it; and parts that name the same
// chunk twice (a node answering for a shard whose split it has not built answers for its
// siblings too) count each chunk once.
TEST_F(ShardCandidatesTest, AShardSplitHereAnswersThroughItsChildrenAndOverlapsCountOnce) {
  const std::vector<uint32_t> all = collection_->ShardIds();
  ASSERT_EQ(std::count(all.begin(), all.end(), 0u), 0) << "shard 0 was split";
  for (const std::string& claim : SciFactClaims(10)) {
    for (const char* mode : {"vector", "keyword", "hybrid"}) {
      Json body = J(R"({"k":10,"shards":"all"})");
      body["query"] = claim;
      body["mode"] = mode;
      auto req = ParseQueryRequest(body, collection_->config().dim, true);
      ASSERT_TRUE(req.ok());
      auto whole = collection_->Query(*req);
      ASSERT_TRUE(whole.ok());
      QueryMode m = req->mode;
      const std::vector<uint32_t> root = {0};
      auto by_root = collection_->Candidates(RequestContext::Background(), *req, root, root, &m);
      ASSERT_TRUE(by_root.ok()) << by_root.status().ToString();
      auto once = collection_->Assemble(RequestContext::Background(), *req, m, {*by_root});
      ASSERT_TRUE(once.ok());
      EXPECT_EQ(Hits(once->hits), Hits(whole->hits)) << mode << ": " << claim;
      auto twice = collection_->Assemble(RequestContext::Background(), *req, m, {*by_root, *by_root});
      ASSERT_TRUE(twice.ok());
      EXPECT_EQ(Hits(twice->hits), Hits(whole->hits)) << "the same part twice: " << mode << ": " << claim;
    }
  }
  QueryMode m = QueryMode::kKeyword;
  auto req = ParseQueryRequest(J(R"({"query":"cells","mode":"keyword"})"), collection_->config().dim, true);
  EXPECT_EQ(collection_->Candidates(RequestContext::Background(), *req, {}, {100000}, &m).status().code(),
            StatusCode::kNotFound)
      << "a shard the layout does not have";
}

TEST_F(ShardCandidatesTest, TheRoutedShardsAloneAnswerAsARoutedSearch) {
  size_t compared = 0;
  for (const std::string& claim : SciFactClaims(40)) {
    Json body = J(R"({"mode":"hybrid","k":10})");
    body["query"] = claim;
    auto req = ParseQueryRequest(body, collection_->config().dim, true);
    ASSERT_TRUE(req.ok());
    auto routed = collection_->Query(*req);
    ASSERT_TRUE(routed.ok());
    ASSERT_TRUE(routed->route.has_value());
    if (routed->route->widened) continue;  // too few hits: the search went to every shard
    EXPECT_EQ(Hits(Assembled(*req, routed->route->shards).hits), Hits(routed->hits)) << claim;
    EXPECT_LT(routed->route->shards.size(), collection_->ShardIds().size()) << "routing searched a subset";
    ++compared;
  }
  EXPECT_GT(compared, 30u);
}

TEST_F(ShardCandidatesTest, AShardNotHeldIsNamedAndCorruptPartsAreRefused) {
  auto req = ParseQueryRequest(J(R"({"query":"cells","mode":"hybrid"})"), collection_->config().dim, true);
  ASSERT_TRUE(req.ok());
  QueryMode mode;
  auto missing = collection_->Candidates(RequestContext::Background(), *req, {9999}, {}, &mode);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("9999"), std::string::npos);
  EXPECT_EQ(collection_->Candidates(RequestContext::Background(), *req, {}, {9999}, &mode).status().code(),
            StatusCode::kNotFound);
  auto part = collection_->Candidates(RequestContext::Background(), *req, collection_->ShardIds(),
                                      collection_->ShardIds(), &mode);
  ASSERT_TRUE(part.ok());
  ASSERT_FALSE(part->by_keyword.empty());
  const std::string bytes = EncodeShardCandidates(*part);
  for (size_t n = 0; n < bytes.size(); n += 7) {
    auto cut = DecodeShardCandidates(bytes.substr(0, n));
    ASSERT_FALSE(cut.ok()) << n;
    EXPECT_EQ(cut.status().reason(), "invalid_candidates");
  }
  EXPECT_FALSE(DecodeShardCandidates(bytes + "x").ok());
}

// The question a holder is asked carries every field its part depends on, and nothing
// malformed gets through.
TEST(ShardQueryTest, RoundTripsEveryFieldAndRefusesCorruption) {
  ShardQuery q;
  q.tenant = "acme";
  q.collection = "sf";
  q.collection_id = 42;
  q.read_after = 1234567;
  q.epoch = 9;
  q.timeout_ms = 250;
  q.request.text = "green tea";
  q.request.vector = std::vector<float>{0.5f, -1.25f, 3.0f};
  q.request.mode = QueryMode::kHybrid;
  q.request.fusion = Fusion::kWeighted;
  q.request.k = 7;
  q.request.ef = 96;
  q.request.depth = 40;
  q.request.mmr_lambda = 0.7f;
  q.request.bm25_k1 = 1.1f;
  q.request.bm25_b = 0.6f;
  q.request.title_boost = 2.0f;
  q.request.group_by_document = true;
  q.request.filter_key = R"({"year":{"$gte":2010}})";
  q.vector_shards = {3, 5};
  q.keyword_shards = {0, 3, 5, 8};
  const std::string bytes = EncodeShardQuery(q);
  auto back = DecodeShardQuery(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->tenant, "acme");
  EXPECT_EQ(back->collection, "sf");
  EXPECT_EQ(back->collection_id, 42u);
  EXPECT_EQ(back->read_after, 1234567u);
  EXPECT_EQ(back->epoch, 9u);
  EXPECT_EQ(back->timeout_ms, 250);
  EXPECT_EQ(back->request.text, "green tea");
  EXPECT_EQ(*back->request.vector, *q.request.vector);
  EXPECT_EQ(back->request.mode, QueryMode::kHybrid);
  EXPECT_EQ(back->request.fusion, Fusion::kWeighted);
  EXPECT_EQ(back->request.k, 7u);
  EXPECT_EQ(back->request.ef, 96u);
  EXPECT_EQ(back->request.depth, 40u);
  EXPECT_FLOAT_EQ(*back->request.mmr_lambda, 0.7f);
  EXPECT_FLOAT_EQ(*back->request.bm25_k1, 1.1f);
  EXPECT_FLOAT_EQ(*back->request.bm25_b, 0.6f);
  EXPECT_FLOAT_EQ(*back->request.title_boost, 2.0f);
  EXPECT_TRUE(back->request.group_by_document);
  EXPECT_EQ(back->request.filter_key, q.request.filter_key);
  EXPECT_FALSE(back->request.filter.empty()) << "the filter is parsed again";
  EXPECT_TRUE(back->request.filter.Matches(J(R"({"year":2015})")));
  EXPECT_FALSE(back->request.filter.Matches(J(R"({"year":2005})")));
  EXPECT_EQ(back->vector_shards, q.vector_shards);
  EXPECT_EQ(back->keyword_shards, q.keyword_shards);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto cut = DecodeShardQuery(bytes.substr(0, n));
    ASSERT_FALSE(cut.ok()) << n;
    EXPECT_EQ(cut.status().reason(), "invalid_shard_query");
  }
  EXPECT_FALSE(DecodeShardQuery(bytes + "x").ok());
  ShardQuery bad = q;
  bad.request.filter_key = R"({"year":{"$near":1}})";
  EXPECT_EQ(DecodeShardQuery(EncodeShardQuery(bad)).status().reason(), "invalid_shard_query");
  bad = q;
  bad.request.k = 0;
  EXPECT_EQ(DecodeShardQuery(EncodeShardQuery(bad)).status().reason(), "invalid_shard_query");
}

}  // namespace
}  // namespace contextd
