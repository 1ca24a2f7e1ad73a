// The request context through a collection: deadlines stop searches and writes between
// steps (a write past its deadline commits nothing), and usage is charged.
#include <gtest/gtest.h>

#include "engine/collection.h"
#include "engine/engine.h"
#include "manual_clock.h"
#include "server/request_codec.h"
#include "test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

class CollectionContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), &metrics_);
    ASSERT_NE(engine_, nullptr);
    auto c = CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "docs", J(R"({"embedder":"glove"})"));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    c_ = *c;
  }
  std::vector<DocumentInput> Docs(const std::string& json) {
    auto docs = ParseUpsertRequest(J(json), c_->config().dim, false);
    EXPECT_TRUE(docs.ok()) << docs.status().ToString();
    return std::move(docs).value();
  }
  QueryRequest Query(const std::string& json) {
    auto q = ParseQueryRequest(J(json), c_->config().dim, true);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return std::move(q).value();
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<Collection> c_;
};

TEST_F(CollectionContextTest, UsageCountsWritesAndScoredChunks) {
  RequestContext write;
  UpsertResult r;
  ASSERT_TRUE(c_->Upsert(write, Docs(R"({"documents":[{"id":"a","text":"Green tea is made from leaves."},
                                               {"id":"b","text":"Black coffee is brewed from beans."}]})"),
                         &r)
                  .ok());
  EXPECT_EQ(write.usage.documents_written.load(), 2);
  EXPECT_GT(write.usage.bytes_written.load(), 60) << "both texts went into the batch";
  EXPECT_EQ(write.usage.embedding_tokens.load(), 0) << "GloVe is in-process: no tokens billed";

  RequestContext query;
  auto q = c_->Query(query, Query(R"({"query":"green tea leaves","mode":"hybrid","k":2,"cache":"bypass"})"));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // Both chunks from the vector list, and the one chunk with the words from the keywords.
  EXPECT_EQ(query.usage.chunks_scored.load(), 3);

  RequestContext del;
  ASSERT_TRUE(c_->DeleteDocument(del, "a").ok());
  EXPECT_EQ(del.usage.documents_written.load(), 1);
}

TEST_F(CollectionContextTest, PassedDeadlineStopsSearchesAndCommitsNothing) {
  ManualClock clock;
  RequestContext late(&clock);
  late.deadline_ns = clock.NowNanos() - 1;
  auto q = c_->Query(late, Query(R"({"query":"tea","mode":"hybrid"})"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDeadlineExceeded);

  UpsertResult r;
  const Status st = c_->Upsert(late, Docs(R"({"documents":[{"id":"x","text":"never stored"}]})"), &r);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.ToString();
  EXPECT_EQ(c_->document_count(), 0u);
  EXPECT_EQ(late.usage.documents_written.load(), 0);
  EXPECT_FALSE(c_->GetDocument("x").ok());
  // The same write with time left goes through.
  RequestContext ok(&clock);
  ok.deadline_ns = clock.NowNanos() + 60'000'000'000;
  ASSERT_TRUE(c_->Upsert(ok, Docs(R"({"documents":[{"id":"x","text":"stored"}]})"), &r).ok());
  EXPECT_EQ(c_->document_count(), 1u);
}

}  // namespace
}  // namespace contextd
