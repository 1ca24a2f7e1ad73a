// Topic shards inside a collection: splits under concurrent reads and writes, routing,
// and shards across restarts.
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "engine/collection.h"
#include "server/request_codec.h"
#include "test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

constexpr int kDim = 8;
constexpr int kTopics = 8;

class CollectionShardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), &metrics_);
    std::mt19937 rng(11);
    std::normal_distribution<float> g;
    centers_.resize(kTopics, std::vector<float>(kDim));
    for (auto& c : centers_)
      for (auto& x : c) x = g(rng);
  }

  std::shared_ptr<Collection> Create(int max_shard_chunks) {
    auto c = CreateFromSpec(
        *engine_, TestEmbedders(), kDefaultTenant, "topics",
        J(R"({"embedder":"none","dim":8,"sharding":{"max_shard_chunks":)" + std::to_string(max_shard_chunks) + "}}"));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }

  // Document i: a point near topic i % kTopics.
  std::vector<float> Vector(int i) {
    std::mt19937 rng(1000 + i);
    std::normal_distribution<float> g;
    std::vector<float> v = centers_[i % kTopics];
    for (auto& x : v) x += 0.2f * g(rng);
    return v;
  }

  Status Upsert(Collection& c, int first, int count) {
    Json docs = Json::MakeArray();
    for (int i = first; i < first + count; ++i) {
      Json d = Json::MakeObject();
      d["id"] = "d" + std::to_string(i);
      d["text"] = "topic " + std::to_string(i % kTopics);
      d["metadata"]["topic"] = i % kTopics;
      Json v = Json::MakeArray();
      for (float x : Vector(i)) v.push_back(x);
      d["vector"] = std::move(v);
      docs.push_back(std::move(d));
    }
    Json body = Json::MakeObject();
    body["documents"] = std::move(docs);
    auto parsed = ParseUpsertRequest(body, kDim, true);
    if (!parsed.ok()) return parsed.status();
    UpsertResult r;
    return c.Upsert(std::move(parsed).value(), &r);
  }

  StatusOr<QueryResult> Nearest(Collection& c, int i, int k, bool all_shards) {
    Json body = Json::MakeObject();
    Json v = Json::MakeArray();
    for (float x : Vector(i)) v.push_back(x);
    body["vector"] = std::move(v);
    body["k"] = k;
    body["cache"] = "bypass";
    if (all_shards) body["shards"] = "all";
    auto q = ParseQueryRequest(body, kDim, false);
    if (!q.ok()) return q.status();
    return c.Query(*q);
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::vector<float>> centers_;
};

TEST_F(CollectionShardsTest, SmallCollectionsStayOneShard) {
  auto c = Create(1000);
  ASSERT_TRUE(Upsert(*c, 0, 200).ok());
  c->WaitForSplits();
  EXPECT_EQ(c->shard_count(), 1u);
  auto r = Nearest(*c, 5, 1, false);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->route.has_value());
  EXPECT_EQ(r->route->shard_count, 1u);
  EXPECT_EQ(r->hits[0].doc_id, "d5");
}

// The same vector written many times cannot be divided: its split would send every chunk
// to one child, as big as its parent, which would be split again for ever. It is not
// proposed, until the shard grows by half (and then again only if it can be divided).
TEST_F(CollectionShardsTest, ChunksThatCannotBeDividedAreNotSplitForEver) {
  auto c = Create(20);
  for (int batch = 0; batch < 6; ++batch) {
    Json docs = Json::MakeArray();
    for (int i = 0; i < 10; ++i) {
      Json d = Json::MakeObject();
      d["id"] = "same" + std::to_string(batch * 10 + i);
      d["text"] = "the same";
      Json v = Json::MakeArray();
      for (float x : Vector(0)) v.push_back(x);
      d["vector"] = std::move(v);
      docs.push_back(std::move(d));
    }
    Json body = Json::MakeObject();
    body["documents"] = std::move(docs);
    auto parsed = ParseUpsertRequest(body, kDim, true);
    ASSERT_TRUE(parsed.ok());
    UpsertResult r;
    ASSERT_TRUE(c->Upsert(std::move(parsed).value(), &r).ok());
    c->WaitForSplits();
  }
  EXPECT_EQ(c->shard_count(), 1u) << "no split was committed";
  EXPECT_EQ(c->ShardIds(), std::vector<uint32_t>{0});
  // Distinct vectors added later divide as usual.
  ASSERT_TRUE(Upsert(*c, 0, 80).ok());
  c->WaitForSplits();
  EXPECT_GT(c->shard_count(), 1u);
}

// Writers insert and delete while shards split; readers query all along. Every
// acknowledged, undeleted document must stay findable, during the splits and after, and no
// deleted one may come back.
TEST_F(CollectionShardsTest, SplitsUnderConcurrentWritesLoseNoChunk) {
  auto c = Create(60);
  constexpr int kDocs = 800, kBatch = 10;
  std::atomic<int> acknowledged{0};
  std::atomic<bool> done{false};
  std::atomic<int> lost{0}, reads{0};
  std::thread writer([&] {
    for (int i = 0; i < kDocs; i += kBatch) {
      ASSERT_TRUE(Upsert(*c, i, kBatch).ok());
      // Every 7th document is deleted again.
      for (int j = i; j < i + kBatch; ++j) {
        if (j % 7 == 0) {
          ASSERT_TRUE(c->DeleteDocument("d" + std::to_string(j)).ok());
        }
      }
      acknowledged = i + kBatch;
    }
    done = true;
  });
  std::thread reader([&] {
    std::mt19937 rng(5);
    while (!done) {
      const int n = acknowledged;
      if (n == 0) continue;
      const int i = static_cast<int>(rng() % n);
      auto r = Nearest(*c, i, 1, true);
      ASSERT_TRUE(r.ok());
      const bool deleted = i % 7 == 0;
      const bool found = !r->hits.empty() && r->hits[0].doc_id == "d" + std::to_string(i);
      if (found == deleted) ++lost;
      ++reads;
    }
  });
  writer.join();
  reader.join();
  c->WaitForSplits();
  EXPECT_EQ(lost, 0) << "of " << reads << " reads";
  EXPECT_GT(reads, 0);
  EXPECT_GE(c->shard_count(), 8u);
  const ShardsReport shards = c->DescribeShards();
  size_t total = 0;
  for (const auto& s : shards.shards) {
    total += s.chunks;
    EXPECT_LE(s.chunks, 60u) << s.id;
    EXPECT_FALSE(s.top_terms.empty()) << s.id;
  }
  EXPECT_EQ(total, c->chunk_count());
  for (int i = 0; i < kDocs; ++i) {
    auto r = Nearest(*c, i, 1, true);
    ASSERT_TRUE(r.ok());
    if (i % 7 == 0) {
      EXPECT_NE(r->hits[0].doc_id, "d" + std::to_string(i));
    } else {
      EXPECT_EQ(r->hits[0].doc_id, "d" + std::to_string(i));
    }
  }
}

// Topics far apart: a query near one topic is routed to few shards and finds what a search
// of every shard finds.
TEST_F(CollectionShardsTest, RoutedSearchMatchesAllShardsOnSeparatedTopics) {
  auto c = Create(60);
  ASSERT_TRUE(Upsert(*c, 0, 640).ok());
  c->WaitForSplits();
  const size_t shards = c->shard_count();
  ASSERT_GE(shards, 8u);
  size_t probed = 0, same = 0, total = 0;
  for (int i = 0; i < 64; ++i) {
    auto routed = Nearest(*c, i, 10, false);
    auto all = Nearest(*c, i, 10, true);
    ASSERT_TRUE(routed.ok() && all.ok());
    EXPECT_EQ(all->route->shards.size(), shards);
    probed += routed->route->shards.size();
    std::set<std::string> truth;
    for (auto& h : all->hits) truth.insert(h.doc_id);
    for (auto& h : routed->hits) same += truth.count(h.doc_id);
    total += all->hits.size();
  }
  EXPECT_GE(static_cast<double>(same) / total, 0.95);
  EXPECT_LE(static_cast<double>(probed) / 64, shards / 2.0);
  EXPECT_EQ(c->DescribeShards().queries, 64u);
}

// A filter whose matches all live in shards the router would skip widens the search
// instead of answering short.
TEST_F(CollectionShardsTest, FilterWithMatchesElsewhereWidensTheSearch) {
  auto c = Create(60);
  ASSERT_TRUE(Upsert(*c, 0, 640).ok());
  c->WaitForSplits();
  // Documents of topic 3 only, queried from near topic 0.
  // Routing pinned to the single nearest shard, which holds no topic-3 document.
  Json body = J(R"({"k":5,"cache":"bypass","filter":{"topic":3},
                    "routing":{"clear_margin":0,"probe_margin":0,"min_probe":1}})");
  Json v = Json::MakeArray();
  for (float x : Vector(0)) v.push_back(x);
  body["vector"] = std::move(v);
  auto q = ParseQueryRequest(body, kDim, false);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto r = c->Query(*q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hits.size(), 5u);
  for (auto& h : r->hits) EXPECT_EQ(std::stoi(h.doc_id.substr(1)) % kTopics, 3);
  EXPECT_TRUE(r->route->widened);
}

// The layout is stored: a restart, with its saved graphs or without them, has the same
// shards holding the same chunks.
TEST_F(CollectionShardsTest, ShardsSurviveARestartWithOrWithoutTheirGraphs) {
  auto c = Create(60);
  ASSERT_TRUE(Upsert(*c, 0, 400).ok());
  c->WaitForSplits();
  const size_t shards = c->shard_count();
  ASSERT_GT(shards, 1u);
  auto layout = [](const Collection& c) {
    std::map<uint32_t, size_t> out;
    for (const auto& s : c.DescribeShards().shards) out[s.id] = s.chunks;
    return out;
  };
  const std::map<uint32_t, size_t> before = layout(*c);
  ASSERT_TRUE(engine_->SaveGraphs().ok());
  c.reset();
  engine_.reset();
  engine_ = OpenTestEngine(dir_.path(), &metrics_);
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(c->graph_source(), "loaded");
  EXPECT_EQ(layout(*c), before);
  for (int i = 0; i < 400; i += 13) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
  c.reset();
  engine_.reset();
  std::filesystem::remove_all(dir_.path() + "/graphs");
  engine_ = OpenTestEngine(dir_.path(), &metrics_);
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(c->graph_source(), "rebuilt");
  EXPECT_EQ(layout(*c), before);
  for (int i = 0; i < 400; i += 13) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
}

// A collection past its limit splits once into enough shards (not log2 times), and the
// split is a logged mutation, so a replica applying the log splits alike.
TEST_F(CollectionShardsTest, ABulkLoadSplitsOnceIntoEnoughShardsThroughTheLog) {
  TempDir dir;
  std::vector<Mutation> log;
  EngineOptions o;
  o.data_dir = dir.path();
  o.models_dir = CONTEXTD_MODELS_DIR;
  o.on_commit = [&](const Mutation& m) { log.push_back(m); };
  auto engine = std::move(Engine::Open(o, nullptr)).value();
  auto c = *CreateFromSpec(*engine, TestEmbedders(), kDefaultTenant, "topics",
                           J(R"({"embedder":"none","dim":8,"sharding":{"max_shard_chunks":60}})"));
  ASSERT_TRUE(Upsert(*c, 0, 400).ok());
  c->WaitForSplits();
  size_t splits = 0;
  for (const Mutation& m : log) {
    if (m.kind != MutationKind::kSplitShard) continue;
    ++splits;
    EXPECT_EQ(m.collection_id, c->id());
    EXPECT_EQ(m.dim, 8u);
  }
  ASSERT_GE(splits, 1u);
  EXPECT_EQ(log[2].kind, MutationKind::kSplitShard) << "create, the upsert, then its split";
  EXPECT_EQ(log[2].shard, 0u);
  EXPECT_EQ(log[2].vectors.size(), 9u * 8) << "400 chunks: ceil(400 / 45) shards at once";
  // A replica fed the log has the same shards with the same chunks, having built them.
  TempDir replica_dir;
  auto replica = OpenHandFedEngine(replica_dir.path());
  for (const Mutation& m : log) {
    ApplyResult r;
    ASSERT_TRUE(replica->Apply(*DecodeMutation(EncodeMutation(m)), &r).ok());
  }
  auto rc = *replica->GetCollection(kDefaultTenant, "topics");
  rc->WaitForSplits();
  std::map<uint32_t, size_t> mine, theirs;
  for (const auto& s : c->DescribeShards().shards) mine[s.id] = s.chunks;
  for (const auto& s : rc->DescribeShards().shards) theirs[s.id] = s.chunks;
  EXPECT_EQ(mine, theirs);
  EXPECT_EQ(mine.size(), c->shard_count());
  for (int i = 0; i < 400; i += 7) {
    auto mine_hits = Nearest(*c, i, 5, false), their_hits = Nearest(*rc, i, 5, false);
    ASSERT_TRUE(mine_hits.ok() && their_hits.ok());
    EXPECT_EQ(mine_hits->route->shards, their_hits->route->shards) << "query " << i << " routed alike";
    ASSERT_EQ(mine_hits->hits.size(), their_hits->hits.size());
    for (size_t h = 0; h < mine_hits->hits.size(); ++h)
      EXPECT_EQ(mine_hits->hits[h].doc_id, their_hits->hits[h].doc_id);
  }
}

// Shutdown past its cut-off: a write whose store write is durable stops indexing and
// succeeds (its reply must go out), its chunks are left out of the graphs, nothing is
// saved that would hide them, and the next start rebuilds the graphs with them.
TEST_F(CollectionShardsTest, AWriteAtShutdownIsStoredThenIndexedAtTheNextStart) {
  auto c = Create(60);
  ASSERT_TRUE(Upsert(*c, 0, 200).ok());
  c->WaitForSplits();
  ASSERT_TRUE(engine_->SaveGraphs().ok());
  const size_t shards = c->shard_count();
  engine_->AbandonIndexingAt(SystemClock::Default()->NowNanos());
  ASSERT_TRUE(Upsert(*c, 200, 200).ok());
  EXPECT_TRUE(c->graph_incomplete());
  EXPECT_EQ(c->document_count(), 400u);
  EXPECT_EQ(c->shard_count(), shards) << "no split starts once shutting down";
  EXPECT_NE(Nearest(*c, 250, 1, true)->hits[0].doc_id, "d250") << "left out of the graphs";
  ASSERT_TRUE(engine_->SaveGraphs().ok());
  c.reset();
  engine_.reset();
  engine_ = OpenTestEngine(dir_.path(), &metrics_);
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(c->graph_source(), "rebuilt");
  EXPECT_FALSE(c->graph_incomplete());
  EXPECT_EQ(c->document_count(), 400u);
  for (int i = 0; i < 400; i += 7) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
}

// Shards big enough for graph walks are searched in parallel; the merged answer is the
// same as the exact one.
TEST_F(CollectionShardsTest, BigShardsAreWalkedInParallel) {
  auto c = Create(3000);
  for (int i = 0; i < 4400; i += 400) ASSERT_TRUE(Upsert(*c, i, 400).ok());
  c->WaitForSplits();
  ASSERT_EQ(c->shard_count(), 2u);
  // Both parts are usually about 2,200 chunks; a split proposed under load can leave one
  // under kGraphMinChunks, scanned exactly ("flat").
  size_t walked = 0;
  for (const auto& shard : c->DescribeShards().shards) {
    EXPECT_EQ(shard.index, shard.chunks >= ShardSet::kGraphMinChunks ? "hnsw" : "flat") << shard.id;
    walked += shard.index == "hnsw";
  }
  EXPECT_GE(walked, 1u);
  int found = 0;
  for (int i = 0; i < 4400; i += 22) {
    auto r = Nearest(*c, i, 5, true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->route->shards.size(), 2u);
    ASSERT_EQ(r->hits.size(), 5u);
    for (size_t h = 1; h < r->hits.size(); ++h) EXPECT_GE(r->hits[h - 1].score, r->hits[h].score);
    found += r->hits[0].doc_id == "d" + std::to_string(i);
  }
  EXPECT_GE(found, 195);  // of 200: HNSW is approximate
}

// Cross-shard references: "expand_refs" pulls the best chunk of each cited document from
// whichever shard holds it; a cited document written later invalidates cached answers
// that cite it; refs survive a restart.
TEST_F(CollectionShardsTest, ExpandRefsPullsCitedDocumentsFromOtherShards) {
  auto c = Create(60);
  ASSERT_TRUE(Upsert(*c, 0, 640).ok());
  c->WaitForSplits();
  // A hub document at topic 0's centre citing a topic-5 document and one not written yet.
  Json hub = J(R"({"documents":[{"id":"hub","text":"the hub","refs":["d5","later"]}]})");
  Json v = Json::MakeArray();
  for (float x : centers_[0]) v.push_back(x);  // exactly the topic's centre: nearest to itself
  hub["documents"].as_array()[0]["vector"] = v;
  UpsertResult ur;
  ASSERT_TRUE(c->Upsert(*ParseUpsertRequest(hub, kDim, true), &ur).ok());
  auto query = [&](bool expand) {
    Json body = J(R"({"k":1,"routing":{"clear_margin":0,"probe_margin":0,"min_probe":1}})");
    body["vector"] = v;
    body["expand_refs"] = expand;
    return *c->Query(*ParseQueryRequest(body, kDim, false));
  };
  QueryResult plain = query(false);
  ASSERT_EQ(plain.hits.size(), 1u);
  ASSERT_EQ(plain.route->shards.size(), 1u);
  EXPECT_EQ(plain.hits[0].doc_id, "hub");
  QueryResult expanded = query(true);
  ASSERT_EQ(expanded.hits.size(), 2u);
  EXPECT_EQ(expanded.hits[1].doc_id, "d5");
  EXPECT_EQ(expanded.hits[1].ref_of, "hub");
  EXPECT_EQ(expanded.cache, "miss");
  EXPECT_EQ(query(true).cache, "exact");
  // Writing the cited-but-missing document drops the cached answer; it is then pulled in.
  Json later = J(R"({"documents":[{"id":"later","text":"written later"}]})");
  Json lv = Json::MakeArray();
  for (float x : Vector(7)) lv.push_back(x);
  later["documents"].as_array()[0]["vector"] = lv;
  ASSERT_TRUE(c->Upsert(*ParseUpsertRequest(later, kDim, true), &ur).ok());
  QueryResult again = query(true);
  EXPECT_EQ(again.cache, "miss");
  ASSERT_EQ(again.hits.size(), 3u);
  EXPECT_EQ(again.hits[2].doc_id, "later");
  // Refs are stored with the document.
  c->WaitForSplits();
  ASSERT_TRUE(engine_->SaveGraphs().ok());
  c.reset();
  engine_.reset();
  engine_ = OpenTestEngine(dir_.path(), &metrics_);
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(query(true).hits.size(), 3u);
  EXPECT_EQ(c->GetDocument("hub")->refs.size(), 2u);
}

// Partial indexing: the shards the router says this node does not index keep their
// vectors without graph links ("stored"); searches over them stay exact, splits and
// placement work from the stored vectors, a save and a restart keep them, and once the
// router gives this node every shard its graphs are linked and searched as before.
class OddShardsRouter : public ShardRouter {
 public:
  // Records what the collection would ask of other nodes, and answers alone.
  bool Spreads(const std::string&, uint64_t, const std::vector<uint32_t>& shard_ids) const override {
    std::lock_guard<std::mutex> lock(mu);
    spread.push_back(shard_ids);
    return false;
  }
  bool Indexes(const std::string&, uint64_t, uint32_t shard_id) const override { return all || shard_id % 2 == 1; }
  bool AsksHolders() const override { return false; }
  Status Gather(const RequestContext&, const ShardQuery&, std::vector<ShardCandidates>*, Coverage*) override {
    return Internal("not asked: this node answers alone");
  }
  std::atomic<bool> all{false};
  mutable std::mutex mu;
  mutable std::vector<std::vector<uint32_t>> spread;
};

TEST_F(CollectionShardsTest, ShardsThisNodeDoesNotIndexAreStoredAndSearchedExactly) {
  OddShardsRouter router;
  engine_->SetShardRouter(&router);
  auto c = Create(3000);
  // "indexed": linked here as a graph ("hnsw") or, under kGraphMinChunks, scanned exactly
  // ("flat"); which one depends on the sizes a split under load leaves.
  const auto kinds = [&] {
    std::map<uint32_t, std::string> out;
    for (const auto& s : c->DescribeShards().shards) {
      out[s.id] = s.index == "hnsw" || s.index == "flat" ? "indexed" : s.index;
    }
    return out;
  };
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{0, "stored"}}));
  for (int i = 0; i < 4400; i += 400) ASSERT_TRUE(Upsert(*c, i, 400).ok());
  c->WaitForSplits();
  ASSERT_EQ(c->shard_count(), 2u);  // built from the stored vectors of shard 0
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{1, "indexed"}, {2, "stored"}}));
  const auto all_found = [&](Collection& col) {
    for (int i = 0; i < 4400; i += 37) {
      auto r = Nearest(col, i, 1, true);
      if (!r.ok() || r->hits.empty() || r->hits[0].doc_id != "d" + std::to_string(i)) return false;
    }
    return true;
  };
  EXPECT_TRUE(all_found(*c));
  // A vector search here would scan shard 2 exactly where its holders walk a graph: it is
  // the one offered to the router; keyword parts never are (every node has the postings).
  {
    std::lock_guard<std::mutex> lock(router.mu);
    ASSERT_FALSE(router.spread.empty());
    EXPECT_EQ(router.spread.back(), std::vector<uint32_t>{2});
    router.spread.clear();
  }
  Json keyword = Json::MakeObject();
  keyword["query"] = "topic 3";
  keyword["mode"] = "keyword";
  keyword["cache"] = "bypass";
  auto kq = ParseQueryRequest(keyword, kDim, false);
  ASSERT_TRUE(kq.ok());
  ASSERT_TRUE(c->Query(*kq).ok());
  {
    std::lock_guard<std::mutex> lock(router.mu);
    EXPECT_TRUE(router.spread.empty());
  }
  auto digest = c->Digest();
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(digest->unindexed_chunks, 0u);
  EXPECT_EQ(digest->chunk_count, 4400u);
  // Saved with the stored chunks marked; loaded, then linked at once with no router.
  ASSERT_TRUE(engine_->SaveGraphs().ok());
  engine_->SetShardRouter(nullptr);
  c.reset();
  engine_.reset();
  engine_ = OpenTestEngine(dir_.path(), &metrics_);
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(c->graph_source(), "loaded");
  EXPECT_TRUE(all_found(*c));
  c->WaitForSplits();
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{1, "indexed"}, {2, "indexed"}}));
  EXPECT_TRUE(all_found(*c));
  // A router that indexes odd shards only: new chunks of shard 2 are stored, not linked;
  // given every shard, this node links them.
  engine_->SetShardRouter(&router);
  c->RefreshIndexing();
  c->WaitForSplits();
  ASSERT_TRUE(Upsert(*c, 4400, 200).ok());
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{1, "indexed"}, {2, "stored"}}));
  router.all = true;
  c->RefreshIndexing();
  c->WaitForSplits();
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{1, "indexed"}, {2, "indexed"}}));
  EXPECT_TRUE(all_found(*c));
  for (int i = 4400; i < 4600; i += 23) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
  engine_->SetShardRouter(nullptr);
}

// A cluster node that restarts without a graph file that fits (after kill -9) stores every
// chunk at open and links nothing; once its router says which shards it holds, only those
// are linked, on the splitter thread. Searches are exact until then, so nothing is missed.
TEST_F(CollectionShardsTest, AClusterNodeRestartingLinksOnlyTheShardsItsRouterGivesIt) {
  auto c = Create(3000);
  for (int i = 0; i < 4400; i += 400) ASSERT_TRUE(Upsert(*c, i, 400).ok());
  c->WaitForSplits();
  ASSERT_EQ(c->shard_count(), 2u);
  c.reset();
  engine_.reset();
  std::filesystem::remove_all(dir_.path() + "/graphs");
  engine_ = OpenHandFedEngine(dir_.path());  // a log of its own: what a cluster node has
  c = *engine_->GetCollection(kDefaultTenant, "topics");
  EXPECT_EQ(c->graph_source(), "rebuilt");
  const auto kinds = [&] {
    std::map<uint32_t, std::string> out;
    for (const auto& s : c->DescribeShards().shards) out[s.id] = s.index;
    return out;
  };
  EXPECT_EQ(kinds(), (std::map<uint32_t, std::string>{{1, "stored"}, {2, "stored"}}));
  for (int i = 0; i < 4400; i += 37) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
  OddShardsRouter router;
  engine_->SetShardRouter(&router);
  engine_->RefreshShardIndexing();
  c->WaitForSplits();
  // Shard 1 is linked ("hnsw", or "flat" where the split left it under kGraphMinChunks).
  EXPECT_NE(kinds()[1], "stored");
  EXPECT_NE(kinds()[1], "linking");
  EXPECT_EQ(kinds()[2], "stored");
  for (int i = 0; i < 4400; i += 37) EXPECT_EQ(Nearest(*c, i, 1, true)->hits[0].doc_id, "d" + std::to_string(i));
  engine_->SetShardRouter(nullptr);
}

TEST_F(CollectionShardsTest, BadShardingInputIsRejected) {
  for (const char* spec :
       {R"({"embedder":"none","dim":8,"sharding":{"max_shard_chunks":5}})",
        R"({"embedder":"none","dim":8,"sharding":{"clear_margin":-1}})",
        R"({"embedder":"none","dim":8,"sharding":{"max_probe_fraction":0}})",
        R"({"embedder":"none","dim":8,"sharding":{"probes":3}})", R"({"embedder":"none","dim":8,"sharding":[]})"}) {
    auto c = CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "bad", J(spec));
    ASSERT_FALSE(c.ok()) << spec;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << spec;
  }
  auto q = ParseQueryRequest(J(R"({"vector":[1,2,3,4,5,6,7,8],"shards":"some"})"), kDim, false);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("'shards'"), std::string::npos);
  for (const char* bad : {R"({"vector":[1,2,3,4,5,6,7,8],"expand_refs":1})",
                          R"({"vector":[1,2,3,4,5,6,7,8],"routing":{"probe_margin":-1}})"}) {
    EXPECT_FALSE(ParseQueryRequest(J(bad), kDim, false).ok()) << bad;
  }
  std::string many = "[";
  for (int i = 0; i <= 256; ++i) many += (i ? ",\"r" : "\"r") + std::to_string(i) + "\"";
  many += "]";
  for (const std::string& refs : {std::string("\"d1\""), std::string("[1]"), std::string("[\"\"]"), many}) {
    auto docs = ParseUpsertRequest(J(R"({"documents":[{"id":"x","vector":[1,2,3,4,5,6,7,8],"refs":)" + refs + "}]}"),
                                   kDim, true);
    EXPECT_FALSE(docs.ok()) << refs;
    EXPECT_EQ(docs.status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace contextd
