#include "engine/collection.h"
#include "server/request_codec.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

Json J(const std::string& s) { return *ParseJson(s); }

class CollectionTest : public ::testing::Test {
 protected:
  void Open() {
    EngineOptions o;
    o.data_dir = dir_.path();
    o.models_dir = CONTEXTD_MODELS_DIR;
    auto e = Engine::Open(o, &metrics_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void SetUp() override { Open(); }

  std::shared_ptr<Collection> Create(const std::string& name, const std::string& spec) {
    auto c = CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, name, J(spec));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }
  std::shared_ptr<Collection> Get(const std::string& name) { return *engine_->GetCollection(kDefaultTenant, name); }

  void Upsert(Collection& c, const std::string& docs_json, UpsertResult* out = nullptr) {
    auto docs = ParseUpsertRequest(J(docs_json), c.config().dim, !c.has_embedder());
    ASSERT_TRUE(docs.ok()) << docs.status().ToString();
    UpsertResult r;
    ASSERT_TRUE(c.Upsert(std::move(docs).value(), &r).ok());
    if (out) *out = r;
  }
  std::vector<std::string> Ids(Collection& c, const std::string& query_json) {
    auto q = ParseQueryRequest(J(query_json), c.config().dim, c.has_embedder());
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    auto r = c.Query(*q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> ids;
    for (auto& h : r->hits) ids.push_back(h.doc_id + "#" + std::to_string(h.chunk));
    return ids;
  }

  // Upserts documents v<first>..v<first+count-1> with random vectors (kept in *vecs, by
  // number) and metadata {"group": number % 100}, in one batch.
  void UpsertRandomVectors(Collection& c, int first, int count, std::mt19937* rng,
                           std::vector<std::vector<float>>* vecs) {
    std::normal_distribution<float> g;
    Json docs = Json::MakeArray();
    for (int i = first; i < first + count; ++i) {
      Json d = Json::MakeObject();
      d["id"] = "v" + std::to_string(i);
      d["metadata"]["group"] = i % 100;
      Json v = Json::MakeArray();
      for (auto& x : (*vecs)[i]) {
        x = g(*rng);
        v.push_back(x);
      }
      d["vector"] = std::move(v);
      docs.push_back(std::move(d));
    }
    Json body = Json::MakeObject();
    body["documents"] = std::move(docs);
    Upsert(c, body.Dump());
  }

  const char* kDocs = R"({"documents":[
    {"id":"pets","text":"Kittens and puppies make wonderful pets for families.","metadata":{"year":2021,"topic":"animals"}},
    {"id":"stocks","text":"Stock markets fell as investors feared rising interest rates.","metadata":{"year":2019,"topic":"finance"}},
    {"id":"space","title":"Astronomy","text":"The telescope observed a distant galaxy and several nebulae.","metadata":{"year":2023,"topic":"science"}}]})";

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(CollectionTest, EveryModeFindsTheRightDocument) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  UpsertResult r;
  Upsert(*c, kDocs, &r);
  EXPECT_EQ(r.upserted, 3u);
  EXPECT_EQ(r.chunks, 3u);
  EXPECT_EQ(Ids(*c, R"({"query":"investors","mode":"keyword","k":1})"), std::vector<std::string>{"stocks#0"});
  // No shared words: only the embedding can connect these.
  EXPECT_EQ(Ids(*c, R"({"query":"cats and dogs","mode":"vector","k":1})"), std::vector<std::string>{"pets#0"});
  EXPECT_EQ(Ids(*c, R"({"query":"galaxy stars","mode":"hybrid","k":1})"), std::vector<std::string>{"space#0"});
  // The title is indexed with the text.
  EXPECT_EQ(Ids(*c, R"({"query":"astronomy","mode":"keyword"})"), std::vector<std::string>{"space#0"});
}

// Hybrid fuses the top `depth` of each list (default: k). A chunk second on both sides
// only wins the fusion when the window reaches the vector list's 5th place, where the
// keyword winner also shows up: 2/62 beats 1/61 + 1/65.
TEST_F(CollectionTest, HybridDepthSetsTheFusionWindow) {
  auto c = Create("fuse", R"({"embedder":"none","dim":2})");
  Upsert(*c, R"({"documents":[
    {"id":"a","text":"apple apple apple","vector":[0.2,1]},
    {"id":"b","text":"apple pie with cream and sugar","vector":[1,0.3]},
    {"id":"c","text":"closest vector","vector":[1,0.05]},
    {"id":"d","text":"third vector","vector":[1,0.6]},
    {"id":"e","text":"fourth vector","vector":[1,1]}]})");
  ASSERT_EQ(Ids(*c, R"({"query":"apple","mode":"keyword","k":2})"), (std::vector<std::string>{"a#0", "b#0"}));
  const std::string q = R"({"query":"apple","vector":[1,0],"mode":"hybrid","fusion":"rrf","k":1,"cache":"bypass")";
  const auto shallow = Ids(*c, q + "}");
  ASSERT_EQ(shallow.size(), 1u);
  EXPECT_NE(shallow[0], "b#0");  // the window holds only the two lists' winners
  EXPECT_EQ(Ids(*c, q + R"(,"depth":10})"), std::vector<std::string>{"b#0"});
}

// The default hybrid fusion follows whichever list can tell the documents apart, with
// vectors given directly (as from an embedder contextd does not run): where the vectors
// find each query's document and the keywords cannot (every text is the same few words),
// and the other way round (each document has its own word; the vectors are unrelated to
// the queries). Either way it answers at least as well as the better list alone, where
// reciprocal rank fusion, giving both lists equal say, loses to it.
TEST_F(CollectionTest, DefaultHybridFollowsTheListThatKnows) {
  constexpr int kDocs = 200, kDim = 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<int> word(0, 4);
  const char* kWords[] = {"river", "stone", "cloud", "field", "light"};
  auto unit = [&] {
    std::vector<float> v(kDim);
    float n = 0;
    for (auto& x : v) n += (x = g(rng)) * x;
    for (auto& x : v) x /= std::sqrt(n);
    return v;
  };
  auto to_json = [](const std::vector<float>& v) {
    Json a = Json::MakeArray();
    for (float x : v) a.push_back(static_cast<double>(x));
    return a;
  };
  auto c = Create("sharp", R"({"embedder":"none","dim":64})");
  std::vector<std::vector<float>> vecs;
  Json docs = Json::MakeArray();
  for (int i = 0; i < kDocs; ++i) {
    vecs.push_back(unit());
    std::string text = "own" + std::to_string(i);
    for (int w = 0; w < 20; ++w) text += std::string(" ") + kWords[word(rng)];
    Json d = Json::MakeObject();
    d["id"] = "d" + std::to_string(i);
    d["text"] = text;
    d["vector"] = to_json(vecs.back());
    docs.push_back(std::move(d));
  }
  Json body = Json::MakeObject();
  body["documents"] = std::move(docs);
  Upsert(*c, body.Dump());

  // Share of queries whose top hit is their document, per mode or fusion.
  auto rate = [&](bool vectors_know, const std::string& how) {
    int right = 0;
    for (int i = 0; i < kDocs; ++i) {
      std::vector<float> qv;
      std::string text;
      if (vectors_know) {
        qv = vecs[i];
        const std::vector<float> noise = unit();
        for (int d = 0; d < kDim; ++d) qv[d] += 0.3f * noise[d];
        text = std::string(kWords[word(rng)]) + " " + kWords[word(rng)];
      } else {
        qv = unit();
        text = "own" + std::to_string(i) + " " + kWords[word(rng)];
      }
      Json q = *ParseJson("{" + how + "}");
      q["query"] = text;
      q["vector"] = to_json(qv);
      q["k"] = 1;
      q["cache"] = "bypass";
      const auto ids = Ids(*c, q.Dump());
      right += !ids.empty() && ids[0] == "d" + std::to_string(i) + "#0";
    }
    return static_cast<double>(right) / kDocs;
  };
  for (bool vectors_know : {true, false}) {
    const double vec = rate(vectors_know, R"("mode":"vector")");
    const double kw = rate(vectors_know, R"("mode":"keyword")");
    const double fused = rate(vectors_know, R"("mode":"hybrid")");
    const double rrf = rate(vectors_know, R"("mode":"hybrid","fusion":"rrf")");
    const std::string which = vectors_know ? "vectors know" : "keywords know";
    std::fprintf(stderr, "%s: top hit right, vector %.3f, keyword %.3f, default hybrid %.3f, rrf %.3f\n", which.c_str(),
                 vec, kw, fused, rrf);
    EXPECT_GE(std::max(vec, kw), 0.95) << which;
    EXPECT_LE(std::min(vec, kw), 0.2) << which;
    EXPECT_GE(fused, std::max(vec, kw) - 0.02) << which << ": vector " << vec << ", keyword " << kw;
    EXPECT_GT(fused, rrf + 0.1) << which << ": rrf " << rrf;
  }
}

TEST_F(CollectionTest, GroupByDocumentMmrAndBm25Parameters) {
  auto c = Create("long", R"({"embedder":"glove","chunking":{"max_tokens":12,"overlap":0}})");
  // "reef" has several chunks about coral; the others one each.
  Upsert(*c, R"({"documents":[
    {"id":"reef","text":"Coral reefs bleach in warm water. Coral reefs need clear water. Coral polyps build reefs slowly. Coral reefs shelter many fish."},
    {"id":"fish","text":"Reef fish hide among coral branches at night."},
    {"id":"ocean","text":"Warm ocean water harms coral and the fish of the reef."}]})");
  const auto chunks = Ids(*c, R"({"query":"coral reefs","mode":"keyword","k":5})");
  ASSERT_GE(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].substr(0, 5), "reef#");
  EXPECT_EQ(chunks[1].substr(0, 5), "reef#") << "without grouping, reef's chunks crowd the top";
  // Grouped: one chunk per document, documents in rank order, k documents.
  const auto docs = Ids(*c, R"({"query":"coral reefs","mode":"keyword","k":3,"group_by":"document"})");
  ASSERT_EQ(docs.size(), 3u);
  std::set<std::string> ids;
  for (const auto& d : docs) ids.insert(d.substr(0, d.find('#')));
  EXPECT_EQ(ids, (std::set<std::string>{"reef", "fish", "ocean"}));
  EXPECT_EQ(docs[0].substr(0, 5), "reef#");
  // MMR: three copies of one paragraph (same vector) and two other documents. Plain
  // top-2 is two copies; at lambda 0.3 the second pick is the least similar document;
  // lambda 1 is plain relevance.
  auto v = Create("vec", R"({"embedder":"none","dim":2})");
  Upsert(*v, R"({"documents":[
    {"id":"copy1","vector":[1,0],"text":"Coral reefs bleach in warm water."},
    {"id":"copy2","vector":[1,0],"text":"Coral reefs bleach in warm water."},
    {"id":"copy3","vector":[1,0],"text":"Coral reefs bleach in warm water."},
    {"id":"fish","vector":[0.6,0.8],"text":"Reef fish hide among coral branches at night."},
    {"id":"ocean","vector":[0,1],"text":"Warm ocean water harms coral and the fish of the reef."}]})");
  const auto plain = Ids(*v, R"({"vector":[1,0],"mode":"vector","k":2})");
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[1].substr(0, 4), "copy");
  const auto diverse = Ids(*v, R"({"vector":[1,0],"mode":"vector","k":2,"mmr":{"lambda":0.3}})");
  ASSERT_EQ(diverse.size(), 2u);
  EXPECT_EQ(diverse[0].substr(0, 4), "copy");
  EXPECT_EQ(diverse[1], "ocean#0") << "lambda 0.3 prefers the least similar";
  for (const auto& id : Ids(*v, R"({"vector":[1,0],"mode":"vector","k":2,"mmr":{"lambda":1}})"))
    EXPECT_EQ(id.substr(0, 4), "copy") << "lambda 1 is relevance only";
  // Query-time BM25: with b = 0 length no longer matters, so scores change.
  auto score_of = [&](const std::string& body) {
    auto q = ParseQueryRequest(J(body), c->config().dim, true);
    return c->Query(*q)->hits.at(0).score;
  };
  EXPECT_NE(score_of(R"({"query":"coral","mode":"keyword","k":1})"),
            score_of(R"({"query":"coral","mode":"keyword","k":1,"bm25":{"b":0}})"));
}

TEST_F(CollectionTest, TitleBoostWeighsTitleMatches) {
  auto c = Create("titles", R"({"embedder":"none","dim":2})");
  Upsert(*c, R"({"documents":[
    {"id":"titled","vector":[1,0],"title":"Volcano","text":"A mountain that erupts lava and ash over the valley below it."},
    {"id":"body","vector":[0,1],"text":"The volcano volcano erupted; the volcano observatory tracked it."}]})");
  // By default the title counts as body text only: three mentions beat one.
  EXPECT_EQ(Ids(*c, R"({"query":"volcano","mode":"keyword","k":1})"), std::vector<std::string>{"body#0"});
  // Boosted, the title field lifts the titled document.
  EXPECT_EQ(Ids(*c, R"({"query":"volcano","mode":"keyword","k":1,"bm25":{"title_boost":5}})"),
            std::vector<std::string>{"titled#0"});
}

TEST_F(CollectionTest, FiltersRestrictEveryMode) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  Upsert(*c, kDocs);
  for (const char* mode : {"vector", "keyword", "hybrid"}) {
    auto ids = Ids(*c, std::string(R"({"query":"investors pets galaxy","k":10,"mode":")") + mode +
                           R"(","filter":{"year":{"$gte":2021}}})");
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "stocks#0"), 0) << mode;
  }
  EXPECT_EQ(Ids(*c, R"({"query":"pets","mode":"vector","filter":{"topic":{"$in":["finance"]}}})"),
            std::vector<std::string>{"stocks#0"});
}

TEST_F(CollectionTest, ReUpsertReplacesAllOldChunks) {
  auto c = Create("docs", R"({"embedder":"glove","chunking":{"max_tokens":10,"overlap":2}})");
  UpsertResult r;
  Upsert(
      *c,
      R"({"documents":[{"id":"d","text":"Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu. Nu xi omicron."}]})",
      &r);
  EXPECT_GT(r.chunks, 1u);
  Upsert(*c, R"({"documents":[{"id":"d","text":"Completely new words."}]})", &r);
  EXPECT_EQ(r.chunks, 1u);
  EXPECT_EQ(c->chunk_count(), 1u);
  EXPECT_TRUE(Ids(*c, R"({"query":"kappa lambda","mode":"keyword"})").empty());
  EXPECT_EQ(Ids(*c, R"({"query":"completely","mode":"keyword"})"), std::vector<std::string>{"d#0"});
  auto doc = c->GetDocument("d");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->text, "Completely new words.");
  EXPECT_EQ(doc->chunks, 1u);
  // and the store agrees after a restart
  c.reset();
  engine_.reset();
  Open();
  EXPECT_EQ(Get("docs")->chunk_count(), 1u);
  EXPECT_TRUE(Ids(*Get("docs"), R"({"query":"kappa","mode":"keyword"})").empty());
}

TEST_F(CollectionTest, DeleteRemovesFromIndexesAndStore) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  Upsert(*c, kDocs);
  ASSERT_TRUE(c->DeleteDocument("stocks").ok());
  EXPECT_EQ(c->DeleteDocument("stocks").code(), StatusCode::kNotFound);
  EXPECT_EQ(c->GetDocument("stocks").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Ids(*c, R"({"query":"investors","mode":"keyword"})").empty());
  EXPECT_EQ(c->document_count(), 2u);
}

TEST_F(CollectionTest, RestartRebuildsIdenticalResults) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  Upsert(*c, kDocs);
  auto before = Ids(*c, R"({"query":"animals and money","k":3})");
  c.reset();
  engine_.reset();
  Open();
  auto after = Get("docs");
  EXPECT_EQ(after->document_count(), 3u);
  EXPECT_EQ(Ids(*after, R"({"query":"animals and money","k":3})"), before);
  EXPECT_EQ(after->GetDocument("space")->title, "Astronomy");
  // Chunk records hold spans of their document's stored text; loaded, they read back the
  // chunks' text.
  auto q = ParseQueryRequest(J(R"({"query":"investors","mode":"keyword","k":1})"), after->config().dim, true);
  auto r = after->Query(*q);
  ASSERT_TRUE(r.ok() && !r->hits.empty());
  EXPECT_EQ(r->hits[0].text, after->GetDocument(r->hits[0].doc_id)->text);
}

// A document longer than one chunk: its chunks (overlapping ranges of its text) come back
// from the store after a restart exactly as they were cut.
TEST_F(CollectionTest, RestartRestoresEveryChunkOfALongDocument) {
  auto c = Create("long", R"({"embedder":"glove","chunking":{"max_tokens":20,"overlap":5}})");
  std::string text;
  for (int i = 0; i < 60; ++i) text += "Sentence " + std::to_string(i) + " talks about rivers and mountains. ";
  Upsert(*c, R"({"documents":[{"id":"l","title":"Geography","text":")" + text + R"("}]})");
  auto chunks_of = [&](Collection& coll) {
    std::vector<std::string> out;
    for (uint32_t n = 0;; ++n) {
      auto q = ParseQueryRequest(J(R"({"query":"sentence )" + std::to_string(n * 3) + R"(","mode":"keyword","k":50})"),
                                 coll.config().dim, true);
      auto r = coll.Query(*q);
      if (!r.ok() || r->hits.empty()) break;
      for (const auto& h : r->hits) out.push_back(std::to_string(h.chunk) + ":" + h.text);
      if (n > 20) break;
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  const auto before = chunks_of(*c);
  ASSERT_GT(before.size(), 5u);
  c.reset();
  engine_.reset();
  Open();
  EXPECT_EQ(chunks_of(*Get("long")), before);
}

TEST_F(CollectionTest, VectorOnlyCollections) {
  auto c = Create("vecs", R"({"embedder":"none","dim":3,"distance":"l2"})");
  Upsert(*c, R"({"documents":[{"id":"x","vector":[1,0,0]},{"id":"y","vector":[0,1,0],"text":"why"}]})");
  EXPECT_EQ(Ids(*c, R"({"vector":[0.9,0.1,0],"k":1})"), std::vector<std::string>{"x#0"});
  EXPECT_EQ(Ids(*c, R"({"query":"why","mode":"keyword"})"), std::vector<std::string>{"y#0"});
}

TEST_F(CollectionTest, ConcurrentWritersLeaveStoreAndIndexesInAgreement) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        // Every thread writes the same ids with its own words.
        std::string word = "writer" + std::to_string(t);
        std::string body = R"({"documents":[{"id":"shared-)" + std::to_string(i % 5) + R"(","text":")" + word +
                           R"( version )" + std::to_string(i) + R"("}]})";
        auto docs = ParseUpsertRequest(J(body), 100, false);
        UpsertResult r;
        ASSERT_TRUE(c->Upsert(std::move(docs).value(), &r).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, std::string> live;
  for (int i = 0; i < 5; ++i) {
    auto d = c->GetDocument("shared-" + std::to_string(i));
    ASSERT_TRUE(d.ok());
    live[d->id] = d->text;
  }
  EXPECT_EQ(c->document_count(), 5u);
  EXPECT_EQ(c->chunk_count(), 5u);
  // The in-memory index holds exactly the stored text of each document.
  for (auto& [id, text] : live) {
    auto q = ParseQueryRequest(J(R"({"query":")" + text.substr(0, text.find(' ')) + R"(","mode":"keyword","k":100})"),
                               100, true);
    auto r = c->Query(*q);
    bool found = false;
    for (auto& h : r->hits) found |= h.doc_id == id && h.text == text;
    EXPECT_TRUE(found) << id << " should be indexed as '" << text << "'";
  }
}

// Past kGraphMinChunks the collection searches its HNSW graph; results must match exact
// search closely, selective filters must fall back to the exact scan, and a restart must
// rebuild the graph.
TEST_F(CollectionTest, LargeCollectionsSearchTheGraph) {
  auto c = Create("big", R"({"embedder":"none","dim":8,"index":{"M":12,"ef_construction":100,"quantization":"int8"}})");
  std::mt19937 rng(4);
  std::normal_distribution<float> g;
  const int n = static_cast<int>(ShardSet::kGraphMinChunks) + 1000;
  std::vector<std::vector<float>> vecs(n, std::vector<float>(8));
  for (int b = 0; b < n; b += 500) UpsertRandomVectors(*c, b, std::min(500, n - b), &rng, &vecs);
  EXPECT_EQ(c->Describe().index_type, "hnsw");
  EXPECT_EQ(c->Describe().config.hnsw_m, 12);
  auto exact_top = [&](const std::vector<float>& q, int group) {
    std::vector<std::pair<float, int>> all;
    for (int i = 0; i < n; ++i) {
      if (group >= 0 && i % 100 != group) continue;
      float dot = 0, nn = 0, qq = 0;
      for (int j = 0; j < 8; ++j) dot += q[j] * vecs[i][j], nn += vecs[i][j] * vecs[i][j], qq += q[j] * q[j];
      all.push_back({-dot / std::sqrt(nn * qq), i});
    }
    std::sort(all.begin(), all.end());
    std::set<std::string> ids;
    for (int i = 0; i < 10 && i < static_cast<int>(all.size()); ++i) ids.insert("v" + std::to_string(all[i].second));
    return ids;
  };
  auto run = [&](Collection& coll, const std::vector<float>& q, const std::string& extra) {
    Json body = Json::MakeObject();
    Json v = Json::MakeArray();
    for (float x : q) v.push_back(x);
    body["vector"] = std::move(v);
    body["k"] = 10;
    std::string text = body.Dump();
    text.insert(text.size() - 1, extra);
    std::set<std::string> ids;
    for (auto& id : Ids(coll, text)) ids.insert(id.substr(0, id.find('#')));
    return ids;
  };
  size_t hits = 0, filtered_hits = 0;
  std::vector<std::vector<float>> queries(50, std::vector<float>(8));
  for (auto& q : queries) {
    for (auto& x : q) x = g(rng);
    auto truth = exact_top(q, -1);
    for (auto& id : run(*c, q, "")) hits += truth.count(id);
    // 1% of points match: the exact fallback answers.
    auto ftruth = exact_top(q, 7);
    auto fgot = run(*c, q, R"(,"filter":{"group":7})");
    EXPECT_EQ(fgot, ftruth);
    filtered_hits += fgot.size();
  }
  EXPECT_GE(hits / 500.0, 0.95);
  EXPECT_EQ(filtered_hits, 500u);
  engine_.reset();
  c.reset();
  Open();
  auto reopened = Get("big");
  EXPECT_EQ(reopened->Describe().graph_nodes, static_cast<size_t>(n));
  size_t again = 0;
  for (auto& q : queries) {
    auto truth = exact_top(q, -1);
    for (auto& id : run(*reopened, q, R"(,"ef":200)")) again += truth.count(id);
  }
  EXPECT_GE(again / 500.0, 0.97);
}

// Deleting a tenth of a large collection repairs its graph: tombstones go, ids are
// reused by later inserts, and every live document is still found by its own vector.
TEST_F(CollectionTest, DeletesPastATenthRepairTheGraph) {
  auto c = Create("churn", R"({"embedder":"none","dim":8,"index":{"M":8,"ef_construction":64,"quantization":"int8"}})");
  std::mt19937 rng(9);
  const int n = 3000;
  std::vector<std::vector<float>> vecs(n, std::vector<float>(8));
  UpsertRandomVectors(*c, 0, n, &rng, &vecs);
  // int8 vectors of record live in a mapped file, not in the collection's RAM.
  EXPECT_GE(c->Describe().mapped_bytes, static_cast<size_t>(n * 8 * 4));
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(c->DeleteDocument("v" + std::to_string(i)).ok());
  const CollectionInfo index = c->Describe();
  EXPECT_LT(index.graph_tombstones, 300u);  // repaired at 300
  EXPECT_LT(index.graph_nodes, static_cast<size_t>(n - 250));
  auto top1 = [&](int i) {
    Json q = Json::MakeObject();
    Json v = Json::MakeArray();
    for (float x : vecs[i]) v.push_back(x);
    q["vector"] = std::move(v);
    q["k"] = 1;
    auto ids = Ids(*c, q.Dump());
    return ids.empty() ? std::string() : ids[0];
  };
  int found = 0;
  for (int i = 400; i < n; i += 7) found += top1(i) == "v" + std::to_string(i) + "#0";
  EXPECT_GE(found, (n - 400) / 7 - 2);
  for (int i = 0; i < 400; i += 13) EXPECT_NE(top1(i), "v" + std::to_string(i) + "#0");
  const int64_t nodes = static_cast<int64_t>(index.graph_nodes);
  Upsert(*c, R"({"documents":[{"id":"back","vector":[1,2,3,4,5,6,7,8]}]})");
  EXPECT_EQ(c->Describe().graph_nodes, static_cast<size_t>(nodes + 1));
  EXPECT_EQ(c->chunk_count(), static_cast<size_t>(n - 400 + 1));
}

TEST_F(CollectionTest, DropThenRecreateStartsEmpty) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  Upsert(*c, kDocs);
  ASSERT_TRUE(engine_->DropCollection(kDefaultTenant, "docs").ok());
  EXPECT_EQ(c->Query(*ParseQueryRequest(J(R"({"query":"x"})"), 100, true)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetCollection(kDefaultTenant, "docs").status().code(), StatusCode::kNotFound);
  auto again = Create("docs", R"({"embedder":"glove"})");
  EXPECT_EQ(again->document_count(), 0u);
  engine_.reset();
  Open();
  EXPECT_EQ(Get("docs")->document_count(), 0u);
}

TEST_F(CollectionTest, DuplicateCollectionIsAlreadyExists) {
  Create("docs", "{}");
  EXPECT_EQ(CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "docs", Json()).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "bad/name", Json()).status().reason(),
            "invalid_name");
}

TEST_F(CollectionTest, MetricsReportCollectionSizes) {
  auto c = Create("docs", R"({"embedder":"glove"})");
  Upsert(*c, kDocs);
  std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find(R"(contextd_collection_documents{tenant="default",collection="docs"} 3)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(contextd_collection_chunks{tenant="default",collection="docs"} 3)"), std::string::npos);
  // What it stores, for pricing storage: this collection, with its bytes.
  const auto stored = engine_->StorageByCollection();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].tenant, kDefaultTenant);
  EXPECT_EQ(stored[0].collection, "docs");
  EXPECT_GT(stored[0].bytes, 100u);
}

}  // namespace
}  // namespace contextd
