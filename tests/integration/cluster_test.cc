// Cluster mode with real processes on loopback: three nats-servers (JetStream, clustered)
// and two contextd nodes started with --cluster. Any node takes any request; a write
// token makes a write visible on the other node; an Idempotency-Key retry is applied
// once; a node killed with -9 while the other keeps writing catches up after restart.
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "nats_cluster.h"
#include "redis_server.h"
#include "test_util.h"

namespace contextd {
namespace {

std::string Urls(const NatsCluster& nats) {
  std::string out;
  for (const auto& u : nats.urls()) out += (out.empty() ? "" : ",") + u;
  return out;
}

Json Body(const std::string& body) {
  auto j = ParseJson(body);
  EXPECT_TRUE(j.ok()) << body;
  return j.ok() ? *j : Json();
}

std::string Doc(const std::string& id, const std::string& text) {
  return R"({"documents":[{"id":")" + id + R"(","text":")" + text + R"("}]})";
}

// The node's digests, taken while it applied nothing ("settled"): one taken while
// writes were applied may count a document's record but not yet its chunks.
Json Digest(HttpClient& via) {
  Json d;
  for (int t = 0; t < 100; ++t) {
    d = Call(via, "GET", "/v1/admin/digest").second;
    if (d["settled"].as_bool()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return d;
}

// Four topics far apart, for collections that split by topic.
constexpr const char* kTopics[] = {"mitochondria make energy for the cell through respiration",
                                   "the ship sailed across the ocean to a distant harbour",
                                   "the court ruled that the contract was not valid under the law",
                                   "the striker scored a goal in the final minute of the match"};

// Three data nodes, n1 to n3, asking the shards' holders for every part of a query
// (--query-routing shards); not started.
std::vector<std::unique_ptr<ServerProcess>> RoutingNodes(const TempDir& dir, const NatsCluster& nats) {
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  for (const char* id : {"n1", "n2", "n3"})
    nodes.push_back(std::make_unique<ServerProcess>(
        dir.path() + "/" + id,
        std::vector<std::string>{"--cluster", Urls(nats), "--node-id", id, "--query-routing", "shards"}));
  return nodes;
}

// Until the node's shard map lists `n` nodes (or 10 s: the caller's checks then fail).
void WaitForMapOf(HttpClient& via, size_t n) {
  for (int i = 0; i < 100 && Call(via, "GET", "/v1/cluster").second["shard_map"]["nodes"].as_array().size() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// The ids of the collection's shards whose graphs this node does not link (partial
// indexing: "index":"stored" in /shards).
std::set<std::string> StoredShards(HttpClient& via, const std::string& collection) {
  std::set<std::string> out;
  Json report = Call(via, "GET", "/v1/collections/" + collection + "/shards").second;
  if (report.Find("shards") == nullptr) return out;
  for (const Json& s : report["shards"].as_array()) {
    if (s.Find("index")->as_string() == "stored") out.insert(s.Find("id")->Dump());
  }
  return out;
}

// `behind`'s digest once it has applied as far as the node whose digest is `ahead` had
// (given up after 30 s: the caller's comparison then fails).
Json DigestWhenCaughtUp(HttpClient& behind, Json ahead) {
  Json d;
  for (int t = 0; t < 300; ++t) {
    d = Digest(behind);
    if (d["applied_sequence"].as_int() >= ahead["applied_sequence"].as_int()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return d;
}

// Three nats-servers and two nodes, n1 and n2, both ready.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    n1.Start();
    n2.Start();
    n1.WaitReady();
    n2.WaitReady();
  }
  TempDir dir;
  NatsCluster nats{dir.path() + "/nats"};
  ServerProcess n1{dir.path() + "/n1", {"--cluster", Urls(nats), "--node-id", "n1"}};
  ServerProcess n2{dir.path() + "/n2", {"--cluster", Urls(nats), "--node-id", "n2"}};
};

TEST_F(ClusterTest, AnyNodeAnswersAndANodeKilledCatchesUp) {
  auto c1 = n1.Client();
  auto c2 = n2.Client();

  auto [status, cluster] = Call(*c1, "GET", "/v1/cluster");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(cluster["mode"].as_string(), "cluster");
  EXPECT_EQ(cluster["node_id"].as_string(), "n1");
  EXPECT_EQ(cluster["log"]["replicas"].as_int(), 3);
  EXPECT_TRUE(cluster["log"]["connected"].as_bool());
  // Both registered (before they followed the log): the purge waits for both.
  EXPECT_EQ(cluster["log"]["members"].as_array().size(), 2u) << cluster.Dump();
  EXPECT_LE(cluster["log"]["first_sequence"].as_int(), 1);  // nothing purged (0: empty)

  // Created on n1; n2 reads it with the write token.
  auto created = c1->Request("PUT", "/v1/collections/docs", R"({"embedder":"glove"})");
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->status, 201) << created->body;
  const std::string token = created->Header("x-contextd-write-token");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(Body(created->body)["write_token"].as_string(), token);
  auto seen = c2->Request("GET", "/v1/collections/docs", "", {{"X-Contextd-Write-Token", token}});
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->status, 200) << seen->body;

  // Written on n2, searched on n1 at once.
  auto wrote = c2->Request("POST", "/v1/collections/docs/documents",
                           Doc("mito", "Mitochondria make ATP for the cell through oxidative phosphorylation."));
  ASSERT_TRUE(wrote.ok());
  ASSERT_EQ(wrote->status, 200) << wrote->body;
  auto found = c1->Request("POST", "/v1/collections/docs/query", R"({"query":"mitochondria ATP","k":3})",
                           {{"X-Contextd-Write-Token", wrote->Header("x-contextd-write-token")}});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->status, 200) << found->body;
  Json hits = Body(found->body)["results"];
  ASSERT_GE(hits.as_array().size(), 1u);
  EXPECT_EQ(hits.as_array()[0]["id"].as_string(), "mito");

  // A strong read needs no token: it waits for everything the log acknowledged before it.
  for (int i = 0; i < 5; ++i) {
    const std::string id = "strong-" + std::to_string(i);
    auto w = c2->Request("POST", "/v1/collections/docs/documents", Doc(id, "Ribosomes translate messenger RNA " + id));
    ASSERT_TRUE(w.ok() && w->status == 200) << (w.ok() ? w->body : "");
    auto got = c1->Request("GET", "/v1/collections/docs/documents/" + id, "", {{"X-Contextd-Consistency", "strong"}});
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->status, 200) << got->body;
    auto q = c1->Request("POST", "/v1/collections/docs/query",
                         R"({"query":"ribosomes messenger RNA","k":10,"mode":"keyword","consistency":"strong"})");
    ASSERT_TRUE(q.ok() && q->status == 200) << (q.ok() ? q->body : "");
    EXPECT_NE(q->body.find("\"" + id + "\""), std::string::npos) << q->body;
  }
  // An eventual read does not wait for a token, even one far ahead.
  auto eventual = c1->Request("GET", "/v1/collections/docs", "",
                              {{"X-Contextd-Write-Token", "999999"}, {"X-Contextd-Consistency", "eventual"}});
  ASSERT_TRUE(eventual.ok());
  EXPECT_EQ(eventual->status, 200) << eventual->body;

  // The log's and the nodes' metrics (n2 took the six writes above; both nodes are up
  // once their heartbeats have been heard).
  const auto metric = [](HttpClient& via, const std::string& name) {
    auto m = via.Request("GET", "/metrics");
    if (!m.ok() || m->status != 200) return -1.0;
    const size_t at = m->body.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::atof(m->body.c_str() + at + name.size() + 2);
  };
  EXPECT_GE(metric(*c2, "contextd_log_commits_total{result=\"ok\"}"), 6);
  EXPECT_GE(metric(*c1, "contextd_log_applied_sequence"), 7);
  EXPECT_EQ(metric(*c1, "contextd_log_blocked"), 0);
  // Records go into the log compressed: a document of repetitive text costs the stream far
  // less than its encoding.
  EXPECT_EQ(cluster["log"]["compression"].as_string(), "zstd");
  std::string long_text;
  for (int i = 0; long_text.size() < 20000; ++i)
    long_text += "The mitochondrion is the powerhouse of cell " + std::to_string(i % 50) + ". ";
  auto long_doc = c2->Request("POST", "/v1/collections/docs/documents", Doc("long", long_text));
  ASSERT_TRUE(long_doc.ok() && long_doc->status == 200) << (long_doc.ok() ? long_doc->body : "");
  const double encoded = metric(*c2, "contextd_log_record_bytes_total{form=\"encoded\"}");
  const double published = metric(*c2, "contextd_log_record_bytes_total{form=\"published\"}");
  EXPECT_GT(encoded, 20000);
  EXPECT_LT(published, encoded / 2);
  EXPECT_GT(Call(*c1, "GET", "/v1/cluster").second["log"]["bytes"].as_int(), published);
  double up = 0;
  for (int t = 0; t < 50 && up < 2; ++t) {
    up = metric(*c1, "contextd_cluster_nodes{state=\"up\"}");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(up, 2);

  // A retry with the same Idempotency-Key is the same write: the log does not grow.
  const HttpHeaders key = {{"Idempotency-Key", "req-42"}};
  auto first = c1->Request("POST", "/v1/collections/docs/documents", Doc("k", "first version"), key);
  ASSERT_TRUE(first.ok() && first->status == 200);
  const int64_t last = Call(*c1, "GET", "/v1/cluster").second["log"]["last_sequence"].as_int();
  auto retry = c2->Request("POST", "/v1/collections/docs/documents", Doc("k", "first version"), key);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->status, 200) << retry->body;
  EXPECT_EQ(Call(*c1, "GET", "/v1/cluster").second["log"]["last_sequence"].as_int(), last);
  EXPECT_EQ(retry->Header("x-contextd-write-token"), first->Header("x-contextd-write-token"));

  // A conversation started on one node continues on the other.
  auto turn =
      c1->Request("POST", "/v1/sessions/chat-7/turns", R"({"role":"user","content":"What do mitochondria do?"})");
  ASSERT_TRUE(turn.ok() && turn->status == 200) << (turn.ok() ? turn->body : "");
  auto turn2 = c2->Request("POST", "/v1/sessions/chat-7/turns", R"({"role":"assistant","content":"They make ATP."})",
                           {{"X-Contextd-Write-Token", turn->Header("x-contextd-write-token")}});
  ASSERT_TRUE(turn2.ok() && turn2->status == 200) << (turn2.ok() ? turn2->body : "");
  EXPECT_EQ(Body(turn2->body)["turns"].as_int(), 2);
  auto history = c1->Request("GET", "/v1/sessions/chat-7", "",
                             {{"X-Contextd-Write-Token", turn2->Header("x-contextd-write-token")}});
  ASSERT_TRUE(history.ok() && history->status == 200);
  EXPECT_EQ(Body(history->body)["turns"].as_array().size(), 2u);

  // Bad tokens and keys are the caller's mistake.
  auto bad = c1->Request("GET", "/v1/collections/docs", "", {{"X-Contextd-Write-Token", "soon"}});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Body(bad->body)["error"]["code"].as_string(), "invalid_header");
  // A token far ahead of the log is not visible: a clear 504 at the request's deadline.
  auto ahead = c1->Request("GET", "/v1/collections/docs", "",
                           {{"X-Contextd-Write-Token", "999999"}, {"X-Request-Timeout-Ms", "200"}});
  ASSERT_TRUE(ahead.ok());
  EXPECT_EQ(ahead->status, 504);
  EXPECT_EQ(Body(ahead->body)["error"]["code"].as_string(), "write_not_visible");

  // n2 dies (-9) while n1 keeps acknowledging writes; restarted, it catches up.
  n2.Kill(SIGKILL);
  std::string last_token;
  for (int i = 0; i < 30; ++i) {
    auto r = c1->Request("POST", "/v1/collections/docs/documents",
                         Doc("d" + std::to_string(i), "document number " + std::to_string(i) + " about cells"));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    last_token = r->Header("x-contextd-write-token");
  }
  n2.Start();
  n2.WaitReady();
  c2 = n2.Client();
  auto caught_up = c2->Request("GET", "/v1/collections/docs", "", {{"X-Contextd-Write-Token", last_token}});
  ASSERT_TRUE(caught_up.ok());
  ASSERT_EQ(caught_up->status, 200) << caught_up->body;
  Json on2 = Body(caught_up->body);
  Json on1 = Call(*c1, "GET", "/v1/collections/docs").second;
  EXPECT_EQ(on2["documents"].as_int(), 38);  // mito, five strong-N, long, k and 30 more
  EXPECT_EQ(on2["documents"].as_int(), on1["documents"].as_int());
  EXPECT_EQ(on2["chunks"].as_int(), on1["chunks"].as_int());
}

// Shard splits are logged mutations: whichever node takes the writes, both nodes end with
// the same shard layout and the same chunks in every shard, by digest and as served.
TEST_F(ClusterTest, ShardSplitsAreReplicatedSoBothNodesHoldTheSameShards) {
  auto c1 = n1.Client();
  auto c2 = n2.Client();
  auto created =
      c1->Request("PUT", "/v1/collections/topics", R"({"embedder":"glove","sharding":{"max_shard_chunks":40}})");
  ASSERT_TRUE(created.ok() && created->status == 201) << (created.ok() ? created->body : "");
  std::string last_token;
  for (int batch = 0; batch < 8; ++batch) {
    std::string body = R"({"documents":[)";
    for (int i = 0; i < 20; ++i) {
      const int n = batch * 20 + i;
      body += std::string(i ? "," : "") + R"({"id":"t)" + std::to_string(n) + R"(","text":")" + kTopics[n % 4] +
              " (note " + std::to_string(n) + ")\"}";
    }
    body += "]}";
    auto& via = batch % 2 == 0 ? *c1 : *c2;
    auto r = via.Request("POST", "/v1/collections/topics/documents", body);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "");
    last_token = r->Header("x-contextd-write-token");
  }
  // Splits are proposed after the writes that pass the limit, so a shard can be over it
  // and not yet splitting: wait until no shard is over it or splitting and both nodes'
  // shards agree (or 30 s, and the comparisons below fail).
  const auto shard_sizes = [](const Json& report) {
    std::map<int64_t, int64_t> out;
    for (const Json& s : report.Find("shards")->as_array()) out[s.Find("id")->as_int()] = s.Find("chunks")->as_int();
    return out;
  };
  Json s1, s2;
  for (int t = 0; t < 300; ++t) {
    s1 = Call(*c1, "GET", "/v1/collections/topics/shards").second;
    s2 = Call(*c2, "GET", "/v1/collections/topics/shards").second;
    bool settled = s1["shards"].as_array().size() > 1;
    for (Json* s : {&s1, &s2}) {
      for (const Json& shard : (*s)["shards"].as_array())
        settled = settled && !shard.Find("splitting")->as_bool() && shard.Find("chunks")->as_int() <= 40;
    }
    if (settled && shard_sizes(s1) == shard_sizes(s2)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(shard_sizes(s1).size(), 4u) << s1.Dump();
  EXPECT_EQ(shard_sizes(s1), shard_sizes(s2)) << s1.Dump() << "\n" << s2.Dump();
  int64_t total = 0;
  for (const auto& [id, chunks] : shard_sizes(s1)) {
    EXPECT_LE(chunks, 40) << "shard " << id;
    total += chunks;
  }
  EXPECT_EQ(total, 160);
  // And by digest: the same layout, the same chunks in each of its shards.
  Json d1 = Digest(*c1), d2 = DigestWhenCaughtUp(*c2, d1);
  ASSERT_EQ(d1["collections"].as_array().size(), 1u);
  EXPECT_EQ(d1["collections"].Dump(), d2["collections"].Dump());
  EXPECT_EQ(d1["collections"].as_array()[0]["unindexed_chunks"].as_int(), 0);
  EXPECT_EQ(d2["collections"].as_array()[0]["unindexed_chunks"].as_int(), 0);
  EXPECT_EQ(d1["collections"].as_array()[0]["shards"].as_array().size(), shard_sizes(s1).size());
  // A query routed on either node goes to the same shards and finds the same chunks.
  for (int i = 0; i < 4; ++i) {
    const std::string q = std::string(R"({"query":")") + kTopics[i] + R"(","k":5,"mode":"vector"})";
    auto a = c1->Request("POST", "/v1/collections/topics/query", q, {{"X-Contextd-Write-Token", last_token}});
    auto b = c2->Request("POST", "/v1/collections/topics/query", q, {{"X-Contextd-Write-Token", last_token}});
    ASSERT_TRUE(a.ok() && b.ok() && a->status == 200 && b->status == 200);
    EXPECT_EQ(Body(a->body)["results"].Dump(), Body(b->body)["results"].Dump()) << q;
  }
}

// A cluster answers exactly as one node holding the same data: the top 10 of every query
// in every mode (vector search exact: every shard, each scanned), ids and scores, is the
// same from each of three nodes, whose writes came in through all three, as from a single
// node loaded with the same documents. Each shard has two copies among the three nodes,
// so every query gathers its shards from other nodes too, and says it covered them all.
// With a node killed (kill -9), the others answer the same, whole, from the copies left.
TEST(ClusterAnswersTest, TheTopTenOfEveryQueryInEveryModeIsASingleNodesWithANodeKilledToo) {
  TempDir dir;
  NatsCluster nats{dir.path() + "/nats"};
  std::vector<std::unique_ptr<ServerProcess>> nodes = RoutingNodes(dir, nats);
  ServerProcess single{dir.path() + "/single"};
  for (auto& n : nodes) n->Start();
  single.Start();
  for (auto& n : nodes) n->WaitReady();
  single.WaitReady();
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (auto& n : nodes) clients.push_back(n->Client());
  auto one = single.Client();

  // Small shards, so splits happen on the way (in the cluster through the log).
  const std::string spec = R"({"embedder":"glove","sharding":{"max_shard_chunks":150}})";
  for (HttpClient* c : {clients[0].get(), one.get()}) {
    auto r = c->Request("PUT", "/v1/collections/sf", spec);
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : "");
  }
  std::ifstream corpus(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/corpus.jsonl");
  std::string line, last_token;
  Json batch = Json::MakeArray();
  for (int i = 0, sent = 0; i < 400 && std::getline(corpus, line); ++i) {
    Json doc = Body(line), d = Json::MakeObject();
    d["id"] = doc["_id"].as_string();
    d["title"] = doc["title"].as_string();
    d["text"] = doc["text"].as_string();
    batch.push_back(std::move(d));
    if (batch.as_array().size() < 25) continue;
    Json body = Json::MakeObject();
    body["documents"] = std::move(batch);
    batch = Json::MakeArray();
    auto in_cluster = clients[sent++ % 3]->Request("POST", "/v1/collections/sf/documents", body.Dump());
    ASSERT_TRUE(in_cluster.ok() && in_cluster->status == 200) << (in_cluster.ok() ? in_cluster->body : "");
    last_token = in_cluster->Header("x-contextd-write-token");
    auto alone = one->Request("POST", "/v1/collections/sf/documents", body.Dump());
    ASSERT_TRUE(alone.ok() && alone->status == 200) << (alone.ok() ? alone->body : "");
  }
  // Every node routes by the map of all three data nodes (written by the housekeeping
  // node as it hears them).
  for (auto& c : clients) {
    WaitForMapOf(*c, 3);
    Json map = Call(*c, "GET", "/v1/cluster").second["shard_map"];
    ASSERT_EQ(map["nodes"].as_array().size(), 3u) << map.Dump();
    EXPECT_EQ(map["replicas"].as_int(), 2);
  }
  // The placement report: each shard of "sf" on two of the three nodes, and the nodes'
  // counts of the copies they hold add up.
  {
    Json cluster = Call(*clients[0], "GET", "/v1/cluster").second;
    Json sf;
    for (const Json& c : cluster["shard_map"]["collections"].as_array())
      if (c.Find("collection")->as_string() == "sf") sf = c;
    ASSERT_TRUE(sf.is_object()) << cluster.Dump();
    const size_t shards = sf["shards"].as_object().size();
    EXPECT_EQ(static_cast<int64_t>(shards), Call(*clients[0], "GET", "/v1/collections/sf").second["shards"].as_int());
    for (const auto& [id, holders] : sf["shards"].as_object()) EXPECT_EQ(holders.as_array().size(), 2u) << id;
    int64_t held = 0;
    for (const Json& n : cluster["nodes"].as_array()) held += n.Find("shards_held")->as_int();
    EXPECT_EQ(held, static_cast<int64_t>(2 * shards));
    // Partial indexing: each node links the graphs of the shards it holds and only stores
    // the others' vectors (refreshed every second as the map changes).
    for (size_t n = 0; n < clients.size(); ++n) {
      const std::string self = "n" + std::to_string(n + 1);
      std::set<std::string> want, got;
      for (const auto& [id, holders] : sf["shards"].as_object()) {
        bool holds = false;
        for (const Json& h : holders.as_array()) holds = holds || h.as_string() == self;
        if (!holds) want.insert(id);
      }
      for (int t = 0; t < 100; ++t) {
        got = StoredShards(*clients[n], "sf");
        if (got == want) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      EXPECT_EQ(got, want) << self;
      EXPECT_FALSE(got.empty()) << self << " holds two copies' worth of three, not every shard";
    }
  }
  std::ifstream claims(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/queries.train.jsonl");
  std::vector<std::string> texts;
  for (int q = 0; q < 40 && std::getline(claims, line); ++q) texts.push_back(Body(line)["text"].as_string());
  size_t compared = 0, gathered_from_others = 0;
  std::map<std::string, std::string> answers;  // by mode and query: the single node's top 10
  const auto compare = [&](const std::vector<HttpClient*>& cluster, size_t queries) {
    for (size_t q = 0; q < queries; ++q) {
      const std::string& text = texts[q];
      for (const char* mode : {"vector", "keyword", "hybrid"}) {
        Json query = Json::MakeObject();
        query["query"] = text;
        query["k"] = 10;
        query["mode"] = mode;
        query["shards"] = "all";
        query["cache"] = "bypass";
        const auto top = [&](HttpClient& via) {
          auto r =
              via.Request("POST", "/v1/collections/sf/query", query.Dump(), {{"X-Contextd-Write-Token", last_token}});
          EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "");
          std::string out;
          if (!r.ok()) return out;
          Json reply = Body(r->body);
          for (const Json& hit : reply["results"].as_array())
            out +=
                hit.Find("id")->as_string() + "#" + hit.Find("chunk")->Dump() + "=" + hit.Find("score")->Dump() + " ";
          if (&via != one.get()) {
            // Gathered across the nodes, every shard answered for.
            EXPECT_TRUE(reply.Find("coverage") != nullptr) << r->body;
            if (reply.Find("coverage") == nullptr) return out;
            Json coverage = reply["coverage"];
            EXPECT_EQ(coverage["answered"].as_int(), coverage["shards"].as_int()) << r->body;
            gathered_from_others += coverage["nodes"].as_int() > 1;
          }
          return out;
        };
        std::string& want = answers[std::string(mode) + text];
        if (want.empty()) want = top(*one);
        ASSERT_FALSE(want.empty()) << mode << ": " << text;
        for (size_t n = 0; n < cluster.size(); ++n)
          EXPECT_EQ(top(*cluster[n]), want) << "node " << n << ", " << mode << ": " << text;
        ++compared;
      }
    }
  };
  compare({clients[0].get(), clients[1].get(), clients[2].get()}, texts.size());
  EXPECT_EQ(compared, 120u);
  EXPECT_GT(gathered_from_others, compared) << "most answers gathered parts from another node";
  // n3 killed: until the others stop hearing it (3 s) they may still pick it, find it
  // gone, and ask the other copy; then the map drops it. Both phases answer whole.
  nodes[2]->Kill(SIGKILL);
  compared = 0;
  compare({clients[0].get(), clients[1].get()}, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(6000));
  compare({clients[0].get(), clients[1].get()}, 10);
  EXPECT_EQ(compared, 60u);
  EXPECT_EQ(Call(*clients[0], "GET", "/v1/cluster").second["shard_map"]["nodes"].as_array().size(), 2u);
  // n3's copies are re-replicated: with two nodes left, each holds, and links, every shard.
  for (size_t n = 0; n < 2; ++n) {
    std::set<std::string> stored = StoredShards(*clients[n], "sf");
    for (int t = 0; t < 100 && !stored.empty(); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      stored = StoredShards(*clients[n], "sf");
    }
    EXPECT_TRUE(stored.empty()) << "node " << n << " still only stores " << stored.size() << " shards";
  }
  compare({clients[0].get(), clients[1].get()}, 10);
  // Not by accident of one shard: the collection did split.
  EXPECT_GT(Call(*clients[0], "GET", "/v1/collections/sf").second["shards"].as_int(), 1);
}

// Splits racing routed queries: while one node takes writes that keep splitting shards
// (each node builds each split at its own pace, so askers and holders may disagree on the
// physical shards for a while), another node's queries ask every shard of its holders
// with the last write token. Every answer covers every shard, and the document written
// last is found by its own word: routed reads see their writes through the splits.
// (Vector queries check coverage only: the topic's chunks are near-identical.)
TEST(ClusterAnswersTest, QueriesRoutedWhileShardsSplitAnswerWholeAndSeeTheirWrites) {
  TempDir dir;
  NatsCluster nats{dir.path() + "/nats"};
  std::vector<std::unique_ptr<ServerProcess>> nodes = RoutingNodes(dir, nats);
  for (auto& n : nodes) n->Start();
  for (auto& n : nodes) n->WaitReady();
  auto writer = nodes[0]->Client();
  auto reader = nodes[1]->Client();
  WaitForMapOf(*reader, 3);
  auto created =
      writer->Request("PUT", "/v1/collections/race", R"({"embedder":"glove","sharding":{"max_shard_chunks":40}})");
  ASSERT_TRUE(created.ok() && created->status == 201) << (created.ok() ? created->body : "");
  // A word of letters only, one per document (numbers would be split off by the analyzer,
  // and a stemmer would fold "zorbls" into "zorble").
  const auto word = [](int n) {
    std::string w = "zq";  // letters between fixed ends: no stemmer suffix rule applies
    for (int x = n + 1; x > 0; x /= 26) w += static_cast<char>('a' + x % 26);
    return w + "zq";
  };
  int checked = 0, whole = 0;
  for (int batch = 0; batch < 12; ++batch) {
    std::string body = R"({"documents":[)";
    for (int i = 0; i < 20; ++i) {
      const int n = batch * 20 + i;
      body += std::string(i ? "," : "") + R"({"id":"r)" + std::to_string(n) + R"(","text":")" + kTopics[n % 4] + " " +
              word(n) + "\"}";
    }
    body += "]}";
    auto w = writer->Request("POST", "/v1/collections/race/documents", body);
    ASSERT_TRUE(w.ok() && w->status == 200) << (w.ok() ? w->body : "");
    const std::string token = w->Header("x-contextd-write-token");
    // Right after the write, while the splits it set off are proposed and built.
    for (int q = 0; q < 4; ++q) {
      const int n = batch * 20 + 19 - q;
      for (const char* mode : {"keyword", "vector"}) {
        const bool by_word = std::string(mode) == "keyword";
        const std::string query = std::string(R"({"query":")") + (by_word ? word(n) : kTopics[n % 4]) +
                                  R"(","k":3,"mode":")" + mode + R"(","shards":"all","cache":"bypass"})";
        auto r = reader->Request("POST", "/v1/collections/race/query", query, {{"X-Contextd-Write-Token", token}});
        ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "");
        Json reply = Body(r->body);
        ++checked;
        ASSERT_TRUE(reply.Find("coverage") != nullptr) << r->body;
        whole += reply["coverage"]["answered"].as_int() == reply["coverage"]["shards"].as_int();
        EXPECT_EQ(reply["coverage"]["answered"].as_int(), reply["coverage"]["shards"].as_int()) << r->body;
        ASSERT_FALSE(reply["results"].as_array().empty()) << mode << " " << word(n) << ": " << r->body;
        if (by_word) {
          EXPECT_EQ(reply["results"].as_array()[0]["id"].as_string(), "r" + std::to_string(n)) << r->body;
        }
      }
    }
  }
  EXPECT_EQ(checked, 96);
  EXPECT_EQ(whole, checked);
  // The writes did split the collection, several times.
  Json shards = Call(*reader, "GET", "/v1/collections/race/shards").second;
  EXPECT_GE(shards["shards"].as_array().size(), 4u) << shards.Dump();
}

// A node frozen (SIGSTOP) for five seconds while the other keeps writing is thawed: it
// applies what it missed and holds exactly what the other holds, and takes writes again.
TEST_F(ClusterTest, ANodeStoppedForFiveSecondsRejoinsAndConverges) {
  auto c1 = n1.Client();
  auto c2 = n2.Client();
  auto created = c1->Request("PUT", "/v1/collections/docs", R"({"embedder":"glove"})");
  ASSERT_TRUE(created.ok() && created->status == 201);
  const auto write = [&](HttpClient& via, int i) {
    auto r = via.Request("POST", "/v1/collections/docs/documents",
                         Doc("d" + std::to_string(i), "document number " + std::to_string(i) + " about cells"));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  };
  for (int i = 0; i < 10; ++i) write(*c1, i);
  n2.Signal(SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  for (int i = 10; i < 40; ++i) write(*c1, i);
  std::this_thread::sleep_until(stopped + std::chrono::seconds(5));
  n2.Signal(SIGCONT);

  Json d1 = Digest(*c1);
  Json d2 = DigestWhenCaughtUp(*c2, d1);
  ASSERT_EQ(d2["applied_sequence"].as_int(), d1["applied_sequence"].as_int()) << d2.Dump();
  ASSERT_EQ(d1["collections"].as_array().size(), 1u);
  EXPECT_EQ(d1["collections"].as_array()[0]["documents"].as_int(), 40);
  EXPECT_EQ(d2["collections"].Dump(), d1["collections"].Dump()) << "the thawed node holds something else";

  // And it takes writes again, which the other sees.
  write(*c2, 40);
  d2 = Digest(*c2);
  EXPECT_EQ(DigestWhenCaughtUp(*c1, d2)["collections"].Dump(), d2["collections"].Dump());
}

// The log is purged behind what every node made durable (--log-keep 5 here); a node that
// joins afterwards cannot replay it from the start, so it is seeded from a member's
// checkpoint and follows the log from there: it then holds what the others hold.
TEST(ClusterSeedTest, ANodeJoiningAfterThePurgeIsSeededFromAMembersCheckpoint) {
  TempDir dir;
  NatsCluster nats{dir.path() + "/nats"};
  const auto node = [&](const std::string& id) {
    return std::make_unique<ServerProcess>(
        dir.path() + "/" + id, std::vector<std::string>{"--cluster", Urls(nats), "--node-id", id, "--log-keep", "5"});
  };
  auto n1 = node("n1"), n2 = node("n2");
  n1->Start();
  n2->Start();
  n1->WaitReady();
  n2->WaitReady();
  auto c1 = n1->Client();
  auto created = c1->Request("PUT", "/v1/collections/docs", R"({"embedder":"glove"})");
  ASSERT_TRUE(created.ok() && created->status == 201);
  for (int i = 0; i < 30; ++i) {
    auto r = c1->Request("POST", "/v1/collections/docs/documents",
                         Doc("d" + std::to_string(i), "document number " + std::to_string(i) + " about cells"));
    ASSERT_TRUE(r.ok() && r->status == 200);
  }
  auto turn = c1->Request("POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"What do cells do?"})");
  ASSERT_TRUE(turn.ok() && turn->status == 200);
  // Both nodes mark every 5 s; the lowest id then purges.
  int64_t first = 0;
  for (int t = 0; t < 300 && first <= 1; ++t) {
    first = Call(*c1, "GET", "/v1/cluster").second["log"]["first_sequence"].as_int();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(first, 1) << "the log was never purged";

  auto n3 = node("n3");
  n3->Start();
  n3->WaitReady();
  auto c3 = n3->Client();
  Json d1 = Digest(*c1);
  Json d3 = DigestWhenCaughtUp(*c3, d1);
  EXPECT_EQ(d3["collections"].Dump(), d1["collections"].Dump()) << "the seeded node holds something else";
  EXPECT_EQ(d1["collections"].as_array()[0]["documents"].as_int(), 30);
  // The session came with the seed; and the seeded node takes writes the others see.
  auto history = c3->Request("GET", "/v1/sessions/s1");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->status, 200) << history->body;
  auto wrote = c3->Request("POST", "/v1/collections/docs/documents", Doc("from-n3", "written on the seeded node"));
  ASSERT_TRUE(wrote.ok() && wrote->status == 200) << (wrote.ok() ? wrote->body : "");
  auto seen = c1->Request("GET", "/v1/collections/docs/documents/from-n3", "",
                          {{"X-Contextd-Write-Token", wrote->Header("x-contextd-write-token")}});
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->status, 200) << seen->body;
}

// Nodes hear each other's heartbeats: /v1/cluster on either lists both "up" with their
// applied sequences, and a node killed turns "suspect", then "down", on the other.
TEST_F(ClusterTest, NodesSeeEachOthersHeartbeats) {
  auto c1 = n1.Client();
  const auto state_of = [&](const std::string& node) {
    auto [status, cluster] = Call(*c1, "GET", "/v1/cluster");
    EXPECT_EQ(status, 200);
    for (const auto& n : cluster["nodes"].as_array())
      if (n.Find("node_id")->as_string() == node) return n.Find("state")->as_string();
    return std::string("unknown");
  };
  std::string s1, s2;
  for (int t = 0; t < 100 && (s1 != "up" || s2 != "up"); ++t) {
    s1 = state_of("n1");
    s2 = state_of("n2");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(s1, "up");
  EXPECT_EQ(s2, "up");
  n2.Kill(SIGKILL);
  std::string after;
  for (int t = 0; t < 200 && after != "down"; ++t) {  // down after 10 s without a heartbeat
    after = state_of("n2");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after, "down");
  EXPECT_EQ(state_of("n1"), "up");
}

}  // namespace
}  // namespace contextd

namespace contextd {
namespace {

// Keys are mutations of the update log: a key made on one node opens the other, and a key
// revoked on one is refused by the other once it has applied the revocation (in practice
// within a heartbeat; the time is printed, not asserted: the machine is shared). Rate
// limits hold across the nodes through one Redis.
TEST(ClusterAuthTest, AKeyRevokedOnOneNodeIsRefusedByTheOtherAndRedisDownOnlyDegradesLimits) {
  const std::string admin = "cluster-admin-key-0123456789";
  TempDir dir;
  NatsCluster nats{dir.path() + "/nats"};
  RedisServer redis;
  ASSERT_TRUE(redis.running());
  const std::string redis_url = "redis://127.0.0.1:" + std::to_string(redis.port());
  ServerProcess n1{dir.path() + "/n1",
                   {"--cluster", Urls(nats), "--node-id", "n1", "--auth", "--redis", redis_url},
                   {{"CONTEXTD_ADMIN_KEY", admin}}};
  ServerProcess n2{dir.path() + "/n2",
                   {"--cluster", Urls(nats), "--node-id", "n2", "--auth", "--redis", redis_url},
                   {{"CONTEXTD_ADMIN_KEY", admin}}};
  n1.Start();
  n2.Start();
  n1.WaitReady();
  n2.WaitReady();
  auto c1 = n1.Client();
  auto c2 = n2.Client();
  const HttpHeaders as_admin = {{"Authorization", "Bearer " + admin}};

  auto tenant = c1->Request("POST", "/v1/admin/tenants", R"({"id":"acme"})", as_admin);
  ASSERT_TRUE(tenant.ok());
  ASSERT_EQ(tenant->status, 201) << tenant->body;
  auto made = c1->Request("POST", "/v1/admin/tenants/acme/keys", R"({"role":"writer"})", as_admin);
  ASSERT_TRUE(made.ok());
  ASSERT_EQ(made->status, 201) << made->body;
  Json key = Body(made->body);
  const HttpHeaders as_key = {{"Authorization", "Bearer " + key["key"].as_string()},
                              {"X-Contextd-Write-Token", made->Header("x-contextd-write-token")}};
  auto listed = c2->Request("GET", "/v1/collections", "", as_key);
  ASSERT_TRUE(listed.ok());
  // The write token makes n2 wait for the key's creation only after authentication, so
  // the key may need a moment to reach n2.
  for (int i = 0; i < 100 && listed.ok() && listed->status == 401; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    listed = c2->Request("GET", "/v1/collections", "", as_key);
  }
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->status, 200) << "a key made on n1 opens n2: " << listed->body;

  // Rate limits are shared through Redis: a key's three requests a minute are three across
  // both nodes.
  auto limited =
      c1->Request("POST", "/v1/admin/tenants/acme/keys", R"({"role":"reader","limits":{"rpm":3}})", as_admin);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->status, 201) << limited->body;
  const HttpHeaders as_limited = {{"Authorization", "Bearer " + Body(limited->body)["key"].as_string()}};
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) {
    auto& node = i % 2 == 0 ? c1 : c2;
    auto r = node->Request("GET", "/v1/collections", "", as_limited);
    for (int wait = 0; wait < 100 && r.ok() && r->status == 401; ++wait) {  // the key reaching n2
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      r = node->Request("GET", "/v1/collections", "", as_limited);
    }
    ASSERT_TRUE(r.ok());
    statuses.push_back(r->status);
    EXPECT_EQ(r->Header("x-contextd-limits-degraded"), "");
  }
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 200, 429}));

  auto revoked = c1->Request("DELETE", "/v1/admin/tenants/acme/keys/" + key["id"].as_string(), "", as_admin);
  ASSERT_TRUE(revoked.ok());
  ASSERT_LT(revoked->status, 300) << revoked->body;
  EXPECT_EQ(c1->Request("GET", "/v1/collections", "", as_key)->status, 401) << "refused where it was revoked";
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = c2->Request("GET", "/v1/collections", "", {{"Authorization", "Bearer " + key["key"].as_string()}});
    ASSERT_TRUE(r.ok());
    status = r->status;
    if (status == 401) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 401) << "n2 never applied the revocation";

  // Usage: each node's ledger holds what it served; /v1/usage on either sums every node's.
  auto writer = c1->Request("POST", "/v1/admin/tenants/acme/keys", R"({"role":"writer"})", as_admin);
  ASSERT_TRUE(writer.ok() && writer->status == 201);
  const HttpHeaders as_writer = {{"Authorization", "Bearer " + Body(writer->body)["key"].as_string()},
                                 {"X-Contextd-Write-Token", writer->Header("x-contextd-write-token")}};
  // One charged request on n1, two on n2.
  const std::vector<std::pair<HttpClient*, std::string>> creates = {
      {c1.get(), "u1"}, {c2.get(), "u2"}, {c2.get(), "u3"}};
  for (const auto& [via, name] : creates) {
    auto r = via->Request("PUT", "/v1/collections/" + name, R"({"embedder":"none","dim":4})", as_writer);
    for (int wait = 0; wait < 100 && r.ok() && r->status == 401; ++wait) {  // the key reaching n2
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      r = via->Request("PUT", "/v1/collections/" + name, R"({"embedder":"none","dim":4})", as_writer);
    }
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const auto usage = [&](HttpClient& via, const std::string& scope) {
    auto [st, body] = Call(via, "GET", "/v1/usage?tenant=acme&group_by=operation&scope=" + scope, "", as_admin);
    EXPECT_EQ(st, 200) << body.Dump();
    int64_t requests = 0;
    for (const auto& row : body["rows"].as_array()) requests += row.Find("requests")->as_int();
    return std::make_pair(requests, body);
  };
  const auto [on1, node1] = usage(*c1, "node");
  const auto [on2, node2] = usage(*c2, "node");
  EXPECT_GT(on1, 0);
  EXPECT_GT(on2, 0) << "n2 served acme's requests too";
  auto [total, cluster] = usage(*c1, "cluster");
  EXPECT_EQ(total, on1 + on2) << cluster.Dump();
  EXPECT_EQ(cluster["nodes"]["asked"].as_int(), 2);
  EXPECT_EQ(cluster["nodes"]["answered"].as_int(), 2);
  EXPECT_EQ(cluster["scope"].as_string(), "cluster");
  EXPECT_EQ(usage(*c2, "cluster").first, total) << "either node answers the same";
  auto bad = c1->Request("GET", "/v1/usage?scope=everywhere", "", as_admin);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  std::printf("revocation reached n2 after %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());

  // Redis down: each node enforces its share of the limits, says so, and /readyz reports
  // the node degraded but serving (200); nothing else changes.
  EXPECT_EQ(Call(*c1, "GET", "/readyz").second["status"].as_string(), "ready");
  auto plenty =
      c1->Request("POST", "/v1/admin/tenants/acme/keys", R"({"role":"writer","limits":{"rpm":1000}})", as_admin);
  ASSERT_TRUE(plenty.ok() && plenty->status == 201);
  const HttpHeaders as_plenty = {{"Authorization", "Bearer " + Body(plenty->body)["key"].as_string()}};
  redis.Stop();
  std::string marked;
  for (int i = 0; i < 50 && marked.empty(); ++i) {
    auto r = c1->Request("GET", "/v1/collections", "", as_plenty);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    marked = r->Header("x-contextd-limits-degraded");
    if (marked.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(marked, "1");
  auto [ready_status, ready] = Call(*c1, "GET", "/readyz");
  EXPECT_EQ(ready_status, 200) << ready.Dump();
  EXPECT_EQ(ready["status"].as_string(), "degraded");
  EXPECT_EQ(ready["redis"].as_string(), "unreachable");
  auto write = c1->Request("PUT", "/v1/collections/u4", R"({"embedder":"none","dim":4})", as_plenty);
  ASSERT_TRUE(write.ok());
  EXPECT_EQ(write->status, 201) << "writes go on: " << write->body;
}

}  // namespace
}  // namespace contextd
