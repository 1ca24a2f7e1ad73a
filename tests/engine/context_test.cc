// Progressive context loading: token budgets are never exceeded (counted with the same
// cl100k tokenizer), adjacent chunks merge into one cited piece without repeating their
// overlap, waves stop when the context is sufficient, and bad requests are refused.
#include "engine/context.h"
#include "server/request_codec.h"

#include <fstream>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), &metrics_);
    auto tok = TiktokenEncoder::Load(std::string(CONTEXTD_SHARED_DIR) + "/data/tiktoken/cl100k_base.tiktoken");
    ASSERT_TRUE(tok.ok());
    tokenizer_ = std::move(tok).value();
  }
  ContextResult Build(Collection& c, const std::string& body) {
    auto req = ParseContextRequest(J(body), c.has_embedder());
    EXPECT_TRUE(req.ok()) << req.status().ToString();
    auto r = BuildContext(RequestContext::Background(), c, *tokenizer_, *req, SystemClock::Default());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return *r;
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TiktokenEncoder> tokenizer_;
};

// A glove collection of SciFact's first 400 documents.
std::shared_ptr<Collection> SciFact(Engine& engine) {
  auto c = *CreateFromSpec(engine, TestEmbedders(), kDefaultTenant, "sf", J(R"({"embedder":"glove"})"));
  std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/corpus.jsonl");
  Json docs = J(R"({"documents":[]})");
  std::string line;
  for (int i = 0; i < 400 && std::getline(in, line); ++i) {
    Json j = J(line), d = Json::MakeObject();
    d["id"] = j.Find("_id")->as_string();
    d["title"] = j.Find("title")->as_string();
    d["text"] = j.Find("text")->as_string();
    docs["documents"].push_back(std::move(d));
  }
  UpsertResult ur;
  EXPECT_TRUE(c->Upsert(*ParseUpsertRequest(docs, c->config().dim, false), &ur).ok());
  return c;
}

TEST_F(ContextTest, BudgetsAreNeverExceeded) {
  auto c = SciFact(*engine_);
  std::mt19937 rng(3);
  const char* queries[] = {"cancer treatment outcomes", "protein folding in cells", "vaccine efficacy trial",
                           "mutations in tumour suppressor genes", "blood pressure and diet"};
  for (const char* q : queries) {
    for (int budget : {1, 20, 100, 300, 1000, 5000}) {
      Json body = Json::MakeObject();
      body["query"] = q;
      body["max_tokens"] = budget;
      const ContextResult r = Build(*c, body.Dump());
      size_t counted = 0;
      for (const auto& p : r.pieces) {
        EXPECT_EQ(p.tokens, tokenizer_->Count(p.text));
        EXPECT_LE(p.first_chunk, p.last_chunk);
        counted += p.tokens;
      }
      EXPECT_EQ(r.tokens, counted);
      EXPECT_LE(r.tokens, static_cast<size_t>(budget)) << q << " @ " << budget;
      if (budget >= 1000) {
        EXPECT_FALSE(r.pieces.empty()) << q;
      }
    }
  }
}

// All 40 candidates taken, and not all in the first wave: the sufficiency test stops before
// the tail, or the tail lands in later waves.
void ExpectSpreadOverWaves(const ContextResult& r) {
  EXPECT_EQ(r.candidates, 40u);
  std::set<std::string> waves;
  for (const auto& p : r.pieces) waves.insert(p.wave);
  EXPECT_TRUE(r.stopped == "sufficient" || waves.size() >= 3) << r.stopped << " " << waves.size();
  EXPECT_LT(std::count_if(r.pieces.begin(), r.pieces.end(), [](const ContextPiece& p) { return p.wave == "critical"; }),
            static_cast<long>(r.candidates / 2));
}

// Hybrid RRF scores are all within a few percent of the top; relevance is normalised over
// the candidates so they still spread over the waves.
TEST_F(ContextTest, RankFusedCandidatesSpreadOverWaves) {
  auto c = SciFact(*engine_);
  const ContextResult r = Build(
      *c, R"({"query":"mutations in tumour suppressor genes","max_tokens":100000,"strategy":"simple","fusion":"rrf"})");
  ASSERT_TRUE(r.plan.result.rank_fused);
  ExpectSpreadOverWaves(r);
}

// Default hybrid scores (the lists' normalised scores, weighed per query) spread the
// candidates over the waves, and the planner's route is reported. (Rank-fused scores, all
// within a few percent of the top, are normalised over the candidates instead: the
// complex plans' fusion.)
TEST_F(ContextTest, HybridCandidatesSpreadOverWavesAndTheRouteIsReported) {
  auto c = SciFact(*engine_);
  const ContextResult r =
      Build(*c, R"({"query":"mutations in tumour suppressor genes","max_tokens":100000,"strategy":"simple"})");
  EXPECT_FALSE(r.plan.result.rank_fused);
  EXPECT_EQ(r.plan.strategy, Strategy::kSimple);
  ExpectSpreadOverWaves(r);

  const ContextResult complex = Build(
      *c, R"({"query":"tumour suppressor mutations and vaccine efficacy","max_tokens":2000,"strategy":"complex"})");
  EXPECT_EQ(complex.plan.strategy, Strategy::kComplex);
  EXPECT_EQ(complex.plan.analysis.sub_queries.size(), 2u);
  EXPECT_GE(complex.plan.searches, 4u);
  EXPECT_LE(complex.tokens, 2000u);
  const ContextResult automatic = Build(*c, R"({"query":"vaccine efficacy"})");
  EXPECT_EQ(automatic.plan.strategy, Strategy::kSimple);
}

TEST_F(ContextTest, AdjacentChunksMergeWithoutRepeatingTheirOverlap) {
  auto c = *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "long",
                           J(R"({"embedder":"glove","chunking":{"max_tokens":20,"overlap":5}})"));
  // One long document about glaciers (many chunks, all matching) and one other.
  std::string text;
  for (int i = 0; i < 12; ++i) text += "Glacier ice number " + std::to_string(i) + " moves slowly down the valley. ";
  Json docs = J(R"({"documents":[{"id":"other","text":"Deserts are dry and hot."}]})");
  Json d = Json::MakeObject();
  d["id"] = "glacier";
  d["text"] = text;
  docs["documents"].push_back(std::move(d));
  UpsertResult ur;
  ASSERT_TRUE(c->Upsert(*ParseUpsertRequest(docs, c->config().dim, false), &ur).ok());
  ASSERT_GT(ur.chunks, 4u);
  const ContextResult r = Build(*c, R"({"query":"glacier ice valley","max_tokens":5000,"mode":"keyword"})");
  ASSERT_EQ(r.pieces.size(), 1u) << "every chunk of the glacier document, merged";
  const ContextPiece& p = r.pieces[0];
  EXPECT_EQ(p.doc_id, "glacier");
  EXPECT_EQ(p.first_chunk, 0u);
  EXPECT_EQ(p.last_chunk, static_cast<uint32_t>(ur.chunks - 2));  // "other" is one chunk
  // The overlap appears once: each sentence exactly once.
  for (int i = 0; i < 12; ++i) {
    const std::string sentence = "number " + std::to_string(i) + " moves";
    const size_t first = p.text.find(sentence);
    ASSERT_NE(first, std::string::npos) << sentence;
    EXPECT_EQ(p.text.find(sentence, first + 1), std::string::npos) << sentence << " repeated";
  }
}

TEST_F(ContextTest, StopsWhenSufficientAndRefusesBadRequests) {
  auto c = *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "s", J(R"({"embedder":"none","dim":2})"));
  Json docs = J(R"({"documents":[{"id":"hit","vector":[1,0],"text":"Penguins live in Antarctica and eat krill."}]})");
  for (int i = 0; i < 20; ++i) {
    Json d = Json::MakeObject();
    d["id"] = "weak" + std::to_string(i);
    d["vector"] = J("[0,1]");
    d["text"] = "A long unrelated text about cities and roads, mentioning penguins once, number " + std::to_string(i);
    docs["documents"].push_back(std::move(d));
  }
  UpsertResult ur;
  ASSERT_TRUE(c->Upsert(*ParseUpsertRequest(docs, 2, true), &ur).ok());
  const ContextResult r = Build(*c, R"({"query":"penguins antarctica krill","max_tokens":5000})");
  EXPECT_EQ(r.stopped, "sufficient");
  ASSERT_FALSE(r.pieces.empty());
  EXPECT_EQ(r.pieces[0].doc_id, "hit");
  EXPECT_EQ(r.pieces[0].wave, "critical");
  EXPECT_LT(r.pieces.size(), 21u) << "the weak tail was not loaded";
  for (const char* bad : {R"({"query":"x","max_tokens":0})", R"({"query":"x","max_tokens":-5})", R"({"max_tokens":10})",
                          R"({"query":"  "})", R"({"query":"x","mode":"vector"})", R"({"query":"x","budget":3})",
                          R"({"query":"x","strategy":"thorough"})", R"({"query":"x","strategy":2})"}) {
    EXPECT_EQ(ParseContextRequest(J(bad), false).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace contextd
