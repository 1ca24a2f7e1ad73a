// ClusterShardRouter over an in-process cluster: three named nodes whose answers come from
// one engine (what a holder answers is ShardCandidatesTest's and ClusterAnswersTest's
// concern; here it is who is asked, what happens when they fail, and what is reported).
#include "cluster/shard_router.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "engine/test_engine.h"
#include "server/request_codec.h"
#include "test_util.h"

namespace contextd {
namespace {

class FakeCluster final : public ClusterShardRouter::Cluster {
 public:
  FakeCluster(std::string self, ShardMap map, ClusterShardRouter::LocalAnswer answer)
      : self_(std::move(self)), map_(map), latest_(map), answer_(std::move(answer)) {}
  std::string self() const override { return self_; }
  ShardMap map() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return map_;
  }
  void RefreshMap() override {
    std::lock_guard<std::mutex> lock(mu_);
    map_ = latest_;
    ++refreshes;
  }
  bool IsUp(const std::string& node) const override { return down.count(node) == 0; }
  std::vector<StatusOr<std::string>> Ask(const std::vector<JetStreamUpdateLog::Question>& questions, int,
                                         const std::function<void()>& meanwhile) const override {
    std::vector<StatusOr<std::string>> out;
    for (const auto& q : questions) {
      std::lock_guard<std::mutex> lock(mu_);
      asked.push_back(q.node);
      // Every shard asked of a node is one it holds by the asker's map.
      auto decoded = DecodeShardQuery(q.payload);
      EXPECT_TRUE(decoded.ok());
      if (decoded.ok()) {
        for (const auto* list : {&decoded->vector_shards, &decoded->keyword_shards}) {
          for (uint32_t s : *list) {
            const auto h = map_.Holders(decoded->tenant, decoded->collection_id, s);
            EXPECT_NE(std::find(h.begin(), h.end(), q.node), h.end()) << "shard " << s << " asked of " << q.node;
          }
        }
      }
    }
    if (meanwhile) meanwhile();
    for (const auto& q : questions) {
      if (down.count(q.node) || silent.count(q.node)) {
        out.push_back(Unavailable("node " + q.node + " did not answer", "node_unavailable"));
        continue;
      }
      const uint64_t epoch = epochs.count(q.node) ? epochs.at(q.node) : latest_.epoch;
      out.push_back(ClusterShardRouter::Answer(q.payload, epoch, answer_));
    }
    return out;
  }

  std::set<std::string> down, silent;
  std::map<std::string, uint64_t> epochs;  // a node's own map epoch (default: the latest)
  ShardMap latest_;
  mutable std::vector<std::string> asked;
  int refreshes = 0;

 private:
  const std::string self_;
  mutable std::mutex mu_;
  ShardMap map_;
  const ClusterShardRouter::LocalAnswer answer_;
};

// Routing by the map, as nodes holding only their shards will (the default answers alone).
ClusterShardRouter::Options Routed(MetricsRegistry* metrics = nullptr) {
  ClusterShardRouter::Options o;
  o.ask_holders = true;
  o.metrics = metrics;
  return o;
}

ShardMap Map(std::vector<std::string> nodes, int replicas, uint64_t epoch = 1) {
  ShardMap m;
  m.epoch = epoch;
  m.replicas = replicas;
  m.nodes = std::move(nodes);
  return m;
}

class ShardRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(dir_.path(), nullptr);
    collection_ =
        *CreateFromSpec(*engine_, TestEmbedders(), kDefaultTenant, "sf",
                        J(R"({"embedder":"glove","sharding":{"max_shard_chunks":60},"cache":{"enabled":false}})"));
    const std::vector<DocumentInput> docs = SciFactDocuments(200);
    UpsertResult r;
    for (size_t i = 0; i < docs.size(); i += 40) {
      ASSERT_TRUE(collection_
                      ->Upsert(std::vector<DocumentInput>(docs.begin() + static_cast<ptrdiff_t>(i),
                                                          docs.begin() + static_cast<ptrdiff_t>(i + 40)),
                               &r)
                      .ok());
    }
    collection_->WaitForSplits();
    ASSERT_GE(collection_->ShardIds().size(), 4u) << "the test needs several shards";
    claims_ = SciFactClaims(12);
  }
  void TearDown() override { collection_->set_router(nullptr); }

  ClusterShardRouter::LocalAnswer Local() {
    return [this](const ShardQuery& q) { return engine_->AnswerShardQuery(q); };
  }
  QueryRequest Request(const std::string& text, QueryMode mode) {
    QueryRequest req;
    req.text = text;
    req.mode = mode;
    req.k = 10;
    return req;
  }
  static std::string Hits(const QueryResult& r) {
    std::string out;
    for (const auto& h : r.hits) out += h.doc_id + "#" + std::to_string(h.chunk) + "=" + std::to_string(h.score) + " ";
    return out;
  }
  // Every claim in every mode through `router`, against the collection answering alone.
  // Returns the queries that covered every shard.
  size_t CompareThrough(ClusterShardRouter* router, bool expect_whole) {
    size_t whole = 0;
    for (const std::string& claim : claims_) {
      for (QueryMode mode : {QueryMode::kVector, QueryMode::kKeyword, QueryMode::kHybrid}) {
        collection_->set_router(nullptr);
        auto alone = collection_->Query(Request(claim, mode));
        collection_->set_router(router);
        auto spread = collection_->Query(Request(claim, mode));
        EXPECT_TRUE(alone.ok() && spread.ok());
        if (!alone.ok() || !spread.ok()) continue;
        EXPECT_TRUE(spread->coverage.has_value());
        if (!spread->coverage) continue;
        const bool covered = spread->coverage->answered == spread->coverage->shards;
        whole += covered;
        if (covered || expect_whole) EXPECT_EQ(Hits(*spread), Hits(*alone)) << QueryModeName(mode) << ": " << claim;
        // A part that did not answer (a holder too slow on a loaded machine) leaves too few
        // candidates, and the route is widened as it should be: compared when covered.
        if (covered && mode == QueryMode::kVector && spread->route && alone->route)
          EXPECT_EQ(spread->route->shards, alone->route->shards) << "routed alike: " << claim;
      }
    }
    return whole;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<Collection> collection_;
  std::vector<std::string> claims_;
};

TEST_F(ShardRouterTest, EachShardAskedOfOneHolderAnswersAsOneNode) {
  FakeCluster cluster("a", Map({"a", "b", "c"}, 2), Local());
  ClusterShardRouter router(&cluster, Local(), Routed());
  ASSERT_TRUE(router.Spreads(kDefaultTenant, collection_->id(), collection_->ShardIds()));
  ClusterShardRouter::Options whole;
  whole.partial_indexing = false;
  EXPECT_FALSE(
      ClusterShardRouter(&cluster, Local(), whole).Spreads(kDefaultTenant, collection_->id(), collection_->ShardIds()))
      << "without partial indexing, a node indexing every shard answers alone";
  EXPECT_EQ(CompareThrough(&router, true), claims_.size() * 3);
  std::set<std::string> asked(cluster.asked.begin(), cluster.asked.end());
  EXPECT_EQ(asked, (std::set<std::string>{"b", "c"})) << "the shards a lacks, from the others";
  // Holding every shard, a node answers alone.
  FakeCluster pair("a", Map({"a", "b"}, 2), Local());
  EXPECT_FALSE(
      ClusterShardRouter(&pair, Local(), Routed()).Spreads(kDefaultTenant, collection_->id(), collection_->ShardIds()));
  // Nor when it holds every shard the collection has, by the map's choice.
  std::vector<uint32_t> mine;
  for (uint32_t s : collection_->ShardIds()) {
    const auto h = cluster.map().Holders(kDefaultTenant, collection_->id(), s);
    if (std::find(h.begin(), h.end(), "a") != h.end()) mine.push_back(s);
  }
  ASSERT_LT(mine.size(), collection_->ShardIds().size());
  EXPECT_FALSE(router.Spreads(kDefaultTenant, collection_->id(), mine));
}

// The default options (local routing, partial indexing): a data node indexes the shards
// the map gives it, answers for those itself and asks the holders for the others; with
// no map yet it indexes and answers everything; an API node (not in the map) indexes none.
TEST_F(ShardRouterTest, PartialIndexingIndexesTheHeldShardsAndAsksForTheOthers) {
  const ShardMap map = Map({"a", "b", "c"}, 2);
  FakeCluster cluster("a", map, Local());
  ClusterShardRouter router(&cluster, Local(), {});
  const std::vector<uint32_t> ids = collection_->ShardIds();
  const uint64_t id = collection_->id();
  std::vector<uint32_t> held;
  for (uint32_t shard : ids) {
    const auto holders = map.Holders(kDefaultTenant, id, shard);
    const bool holds = std::find(holders.begin(), holders.end(), "a") != holders.end();
    EXPECT_EQ(router.Indexes(kDefaultTenant, id, shard), holds) << "shard " << shard;
    if (holds) held.push_back(shard);
  }
  ASSERT_FALSE(held.empty());
  ASSERT_LT(held.size(), ids.size());
  EXPECT_TRUE(router.Spreads(kDefaultTenant, id, ids));
  EXPECT_FALSE(router.Spreads(kDefaultTenant, id, held));
  EXPECT_EQ(CompareThrough(&router, /*expect_whole=*/true), claims_.size() * 3);
  // These shards are small enough to be scanned exactly on any node, and every node has
  // every shard's postings: nothing is worth a round trip.
  EXPECT_TRUE(cluster.asked.empty());
  // The collection stores the others' chunks without linking them.
  collection_->set_router(&router);
  size_t stored = 0;
  for (const auto& s : collection_->DescribeShards().shards) stored += s.index == "stored";
  EXPECT_EQ(stored, ids.size() - held.size());
  collection_->set_router(nullptr);

  FakeCluster unmapped("a", Map({}, 2, /*epoch=*/0), Local());
  ClusterShardRouter before_map(&unmapped, Local(), {});
  EXPECT_TRUE(before_map.Indexes(kDefaultTenant, id, ids[0]));
  EXPECT_FALSE(before_map.Spreads(kDefaultTenant, id, ids));
  FakeCluster api("api", map, Local());
  ClusterShardRouter api_router(&api, Local(), {});
  for (uint32_t shard : ids) EXPECT_FALSE(api_router.Indexes(kDefaultTenant, id, shard));
  EXPECT_TRUE(api_router.Spreads(kDefaultTenant, id, held));
  ClusterShardRouter::Options whole;
  whole.partial_indexing = false;
  ClusterShardRouter everything(&cluster, Local(), whole);
  for (uint32_t shard : ids) EXPECT_TRUE(everything.Indexes(kDefaultTenant, id, shard));
  EXPECT_FALSE(everything.Spreads(kDefaultTenant, id, ids));
}

TEST_F(ShardRouterTest, ADeadOrSilentHolderIsReplacedByAnotherCopy) {
  FakeCluster cluster("a", Map({"a", "b", "c"}, 2), Local());
  cluster.down = {"b"};
  cluster.silent = {"c"};  // up by its heartbeats, but its answers never come
  MetricsRegistry metrics;
  ClusterShardRouter::Options report_missing = Routed(&metrics);
  report_missing.answer_uncovered = false;  // what the holders answered, nothing else
  ClusterShardRouter router(&cluster, Local(), report_missing);
  // With b down and c silent, only a's shards can be answered.
  const size_t whole = CompareThrough(&router, false);
  EXPECT_LT(whole, claims_.size() * 3);
  EXPECT_EQ(std::count(cluster.asked.begin(), cluster.asked.end(), "b"), 0) << "a node not heard is not asked";
  EXPECT_GT(std::count(cluster.asked.begin(), cluster.asked.end(), "c"), 0);
  // c speaks again: every shard a lacks has a copy on b or c, so c's and b's are all asked of c.
  cluster.silent.clear();
  cluster.asked.clear();
  EXPECT_EQ(CompareThrough(&router, true), claims_.size() * 3);
  EXPECT_EQ(std::set<std::string>(cluster.asked.begin(), cluster.asked.end()), std::set<std::string>{"c"});
  // An API node (it holds nothing) whose first choice for some shards is a silent a: those
  // are asked of a, time out, and are asked of their other holder.
  FakeCluster api("api", Map({"a", "b", "c"}, 2), Local());
  api.silent = {"a"};
  size_t a_first = 0;
  for (uint32_t s : collection_->ShardIds())
    a_first += api.map().Holders(kDefaultTenant, collection_->id(), s)[0] == "a";
  ASSERT_GT(a_first, 0u) << "a is the first choice for some shard";
  MetricsRegistry api_metrics;
  ClusterShardRouter via_api(&api, Local(), Routed(&api_metrics));
  EXPECT_EQ(CompareThrough(&via_api, true), claims_.size() * 3);
  EXPECT_GT(std::count(api.asked.begin(), api.asked.end(), "a"), 0);
  // Keyword and hybrid queries need every shard, a's first choices among them: each of
  // those retried (vector queries only when routed to one of them).
  const std::string text = api_metrics.RenderPrometheus();
  const std::string sample = "\ncontextd_shard_retries_total ";
  const size_t at = text.find(sample);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stoul(text.substr(at + sample.size())), claims_.size() * 2);
}

TEST_F(ShardRouterTest, ShardsWithNoLiveHolderAreNamedNotDroppedOrAnsweredFromTheAskersCopy) {
  // An API node (it holds nothing) over one copy of each shard, one holder down.
  FakeCluster cluster("api", Map({"a", "b", "c"}, 1), Local());
  cluster.down = {"b"};
  ClusterShardRouter::Options report_missing = Routed();
  report_missing.answer_uncovered = false;
  ClusterShardRouter router(&cluster, Local(), report_missing);
  ASSERT_TRUE(router.Spreads(kDefaultTenant, collection_->id(), {0}));
  size_t on_b = 0;
  const std::vector<uint32_t> ids = collection_->ShardIds();
  for (uint32_t s : ids) on_b += cluster.map().Holders(kDefaultTenant, collection_->id(), s)[0] == "b";
  ASSERT_GT(on_b, 0u) << "b holds some shard";
  collection_->set_router(&router);
  auto r = collection_->Query(Request(claims_[0], QueryMode::kKeyword));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->coverage.has_value());
  EXPECT_EQ(r->coverage->shards, ids.size());
  EXPECT_EQ(r->coverage->answered, ids.size() - on_b);
  EXPECT_EQ(r->coverage->nodes, 2u);
  // By default the asker answers for them from its own copy (it stores every shard): the
  // answer is whole and the same as the collection's alone.
  ClusterShardRouter whole(&cluster, Local(), Routed());
  EXPECT_EQ(CompareThrough(&whole, /*expect_whole=*/true), claims_.size() * 3);
  collection_->set_router(&whole);
  auto w = collection_->Query(Request(claims_[0], QueryMode::kKeyword));
  ASSERT_TRUE(w.ok() && w->coverage.has_value());
  EXPECT_EQ(w->coverage->answered, ids.size());
  EXPECT_EQ(w->coverage->nodes, 3u) << "a, c and the asker itself";
  collection_->set_router(nullptr);
}

TEST_F(ShardRouterTest, AHolderWithANewerMapRefusesAndTheAskerRoutesAgain) {
  FakeCluster cluster("a", Map({"a", "b", "c"}, 2, 1), Local());
  cluster.latest_ = Map({"a", "b", "c"}, 2, 2);
  ClusterShardRouter router(&cluster, Local(), Routed());
  collection_->set_router(&router);
  auto r = collection_->Query(Request(claims_[0], QueryMode::kHybrid));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->coverage->answered, r->coverage->shards);
  EXPECT_EQ(cluster.refreshes, 1) << "refused once as stale, then routed by the new map";
  EXPECT_EQ(cluster.map().epoch, 2u);
  // A malformed question is refused with the reason, never answered.
  const std::string reply = ClusterShardRouter::Answer("garbage", 1, Local());
  EXPECT_EQ(reply.rfind("Einvalid_shard_query\n", 0), 0u) << reply;
}

}  // namespace
}  // namespace contextd
