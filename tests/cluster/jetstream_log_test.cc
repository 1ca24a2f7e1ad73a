// The JetStream update log against three real nats-servers on loopback: engines on two
// "nodes" write through it and converge; the stream leader's death pauses writes for the
// election without losing any; a node restarted resumes from its applied sequence; a
// repeated Idempotency-Key applies once; no quorum is a clear Unavailable.
#include "cluster/jetstream_log.h"
#include "server/request_codec.h"

#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/test_engine.h"
#include "nats_cluster.h"
#include "test_util.h"

namespace contextd {
namespace {

Json J(const std::string& s) { return *ParseJson(s); }

class JetStreamLogTest : public ::testing::Test {
 protected:
  void SetUp() override { nats_ = std::make_unique<NatsCluster>(nats_dir_.path()); }

  // An engine over `dir` whose log is the cluster's stream; *log receives the log.
  // Unless `wait_following` is false, returns once the node follows the stream (a fresh
  // cluster elects its leaders first), as a server turns ready only then.
  // tweak: changes the log's options before it opens.
  std::unique_ptr<Engine> OpenNode(const std::string& dir, const std::string& node, JetStreamUpdateLog** log,
                                   int commit_timeout_ms = 20000, bool wait_following = true,
                                   std::function<void(JetStreamLogOptions*)> tweak = nullptr) {
    EngineOptions o;
    o.data_dir = dir;
    o.models_dir = CONTEXTD_MODELS_DIR;
    o.make_log = [&, node, commit_timeout_ms, tweak](MutationApplier* applier) -> StatusOr<std::unique_ptr<UpdateLog>> {
      JetStreamLogOptions lo;
      lo.servers = nats_->urls();
      lo.node_id = node;
      lo.commit_timeout_ms = commit_timeout_ms;
      if (tweak) tweak(&lo);
      CTX_ASSIGN_OR_RETURN(auto l, JetStreamUpdateLog::Open(lo, applier));
      *log = l.get();
      return std::unique_ptr<UpdateLog>(std::move(l));
    };
    auto e = Engine::Open(o, nullptr);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return nullptr;
    for (int t = 0; wait_following && t < 600 && !(*log)->connected(); ++t)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(!wait_following || (*log)->connected()) << node << " never followed the stream";
    return std::move(e).value();
  }

  static bool WaitApplied(const Engine& e, uint64_t seq, int ms = 20000) {
    for (int t = 0; t < ms / 20; ++t) {
      if (e.applied_sequence() >= seq) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Why the node stopped applying, once it has (given up after 30 s: "").
  static std::string WaitBlocked(const JetStreamUpdateLog& log) {
    std::string reason;
    for (int t = 0; t < 300 && reason.empty(); ++t) {
      reason = log.blocked_reason();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return reason;
  }

  static std::vector<DocumentInput> Docs(const std::string& id, int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<DocumentInput> out(n);
    for (int i = 0; i < n; ++i) {
      out[i].id = id + "-" + std::to_string(i);
      out[i].text = "document " + out[i].id + " seed " + std::to_string(seed);
      out[i].vector = std::vector<float>(8);
      for (auto& x : *out[i].vector) x = g(rng);
    }
    return out;
  }

  TempDir nats_dir_;
  std::unique_ptr<NatsCluster> nats_;
};

TEST_F(JetStreamLogTest, NodesConvergeAndTheLeadersDeathLosesNoAcknowledgedWrite) {
  TempDir dir_a, dir_b;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr;
  auto a = OpenNode(dir_a.path(), "a", &log_a);
  auto b = OpenNode(dir_b.path(), "b", &log_b);
  ASSERT_TRUE(a && b);

  auto created = CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // The create's stream sequence is the collection's id on every node.
  ASSERT_TRUE(WaitApplied(*b, a->applied_sequence()));
  auto on_b = b->GetCollection("default", "docs");
  ASSERT_TRUE(on_b.ok());
  EXPECT_EQ((*on_b)->id(), (*created)->id());

  // Writes through both nodes.
  size_t acknowledged = 0;
  for (int i = 0; i < 40; ++i) {
    Engine& via = i % 2 == 0 ? *a : *b;
    UpsertResult r;
    Status st = (*via.GetCollection("default", "docs"))->Upsert(Docs("w" + std::to_string(i), 3, i), &r);
    ASSERT_TRUE(st.ok()) << st.ToString();
    acknowledged += 3;
  }

  // Kill the server leading the stream: writes wait out the election and go on.
  const std::string leader = log_a->stream_state().leader;
  ASSERT_FALSE(leader.empty());
  int killed = -1;
  for (int i = 0; i < nats_->size(); ++i)
    if (NatsCluster::Name(i) == leader) killed = i;
  ASSERT_GE(killed, 0) << "leader " << leader;
  nats_->Kill(killed);
  double longest_s = 0;  // the write that waited out the election
  for (int i = 40; i < 60; ++i) {
    Engine& via = i % 2 == 0 ? *a : *b;
    UpsertResult r;
    const auto w0 = std::chrono::steady_clock::now();
    Status st = (*via.GetCollection("default", "docs"))->Upsert(Docs("w" + std::to_string(i), 3, i), &r);
    ASSERT_TRUE(st.ok()) << "write " << i << " after killing the leader: " << st.ToString();
    longest_s = std::max(longest_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
    acknowledged += 3;
  }
  RecordProperty("longest_write_after_leader_kill_s", std::to_string(longest_s));
  EXPECT_NE(log_a->stream_state().leader, leader);

  // A node restarted (its engine closed and reopened over the same data) resumes from its
  // applied sequence while the other keeps writing.
  const uint64_t b_applied = b->applied_sequence();
  b.reset();
  for (int i = 60; i < 70; ++i) {
    UpsertResult r;
    ASSERT_TRUE((*a->GetCollection("default", "docs"))->Upsert(Docs("w" + std::to_string(i), 3, i), &r).ok());
    acknowledged += 3;
  }
  ASSERT_TRUE((*a->GetCollection("default", "docs"))->DeleteDocument("w0-0").ok());
  --acknowledged;
  b = OpenNode(dir_b.path(), "b", &log_b);
  ASSERT_TRUE(b);
  EXPECT_GE(b->applied_sequence(), b_applied - 1) << "restart forgot what it had applied";
  ASSERT_TRUE(WaitApplied(*b, a->applied_sequence()));

  auto da = a->Digest(), db = b->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  ASSERT_EQ(da->size(), 1u);
  EXPECT_EQ(da->begin()->second.second.document_count, acknowledged);
  EXPECT_TRUE(*da == *db) << "the nodes' digests differ";
}

// The log is purged only behind what every registered node has made durable, less the
// messages it keeps; a node down within them catches up by replay; a node that finds the
// log purged past it applies nothing, says why, and leaves the members.
TEST_F(JetStreamLogTest, TheLogIsPurgedBehindEveryNodesDurableMarkAndANodePurgedPastSaysSo) {
  // Marks and purges only when the test asks (the periodic ones wait an hour).
  const auto bounded = [](JetStreamLogOptions* lo) {
    lo->log_keep = 5;
    lo->durable_mark_ms = 3600 * 1000;
  };
  TempDir dir_a, dir_b, dir_c;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr, *log_c = nullptr;
  auto a = OpenNode(dir_a.path(), "a", &log_a, 20000, true, bounded);
  auto b = OpenNode(dir_b.path(), "b", &log_b, 20000, true, bounded);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})")).ok());
  const auto write = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      UpsertResult r;
      ASSERT_TRUE((*a->GetCollection("default", "docs"))->Upsert(Docs("w" + std::to_string(i), 1, i), &r).ok());
    }
  };
  write(0, 30);
  const uint64_t first_round = a->applied_sequence();
  ASSERT_TRUE(WaitApplied(*b, first_round));
  ASSERT_EQ(log_a->members().size(), 2u);

  // b registered at 0 and has recorded nothing since: nothing may go.
  ASSERT_TRUE(log_a->RecordDurableMark().ok());
  auto first = log_a->PurgeBehindMembers();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(log_a->stream_state().first_sequence, 1u);

  // Both durable at first_round: everything but the last 5 goes.
  auto mark_b = log_b->RecordDurableMark();
  ASSERT_TRUE(mark_b.ok());
  EXPECT_EQ(*mark_b, first_round);
  first = log_a->PurgeBehindMembers();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, first_round - 4);
  EXPECT_EQ(log_a->stream_state().first_sequence, first_round - 4);

  // b goes down; a writes on and marks further, but b's mark holds the log.
  b.reset();
  write(30, 50);
  ASSERT_TRUE(log_a->RecordDurableMark().ok());
  first = log_a->PurgeBehindMembers();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, first_round - 4) << "the purge passed a node that was down";

  // b comes back within what was kept and catches up by replay.
  b = OpenNode(dir_b.path(), "b", &log_b, 20000, true, bounded);
  ASSERT_TRUE(b);
  ASSERT_TRUE(WaitApplied(*b, a->applied_sequence()));
  auto da = a->Digest(), db = b->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_TRUE(*da == *db) << "b did not converge after the purge";

  // A new node cannot replay a log that no longer starts at 1: it applies nothing, says
  // why, and is not a member (it must not hold the purge back).
  auto c = OpenNode(dir_c.path(), "c", &log_c, 2000, /*wait_following=*/false, bounded);
  ASSERT_TRUE(c);
  const std::string reason = WaitBlocked(*log_c);
  EXPECT_NE(reason.find("purged past this node"), std::string::npos) << reason;
  EXPECT_FALSE(log_c->connected());
  EXPECT_EQ(c->applied_sequence(), 0u);
  EXPECT_FALSE(c->GetCollection("default", "docs").ok());
  std::vector<std::string> ids;
  for (const auto& m : log_a->members()) ids.push_back(m.node_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));
  // Its writes are refused at once, saying why.
  auto refused = CreateFromSpec(*c, TestEmbedders(), "default", "other", J(R"({"embedder":"none","dim":8})"));
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("purged"), std::string::npos);
}

// A node's data counts sequences of one stream: pointed at another cluster's log (or a
// recreated one), the node refuses to apply it, says why, and keeps what it held.
TEST_F(JetStreamLogTest, ANodeRefusesAnotherClustersLog) {
  TempDir dir, other_dir;
  JetStreamUpdateLog* log = nullptr;
  {
    auto a = OpenNode(dir.path(), "a", &log);
    ASSERT_TRUE(a);
    ASSERT_TRUE(CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})")).ok());
    UpsertResult r;
    ASSERT_TRUE((*a->GetCollection("default", "docs"))->Upsert(Docs("x", 3, 1), &r).ok());
  }
  // Restarted on its own cluster it follows as before.
  {
    auto a = OpenNode(dir.path(), "a", &log);
    ASSERT_TRUE(a);
    EXPECT_TRUE(log->blocked_reason().empty()) << log->blocked_reason();
  }
  NatsCluster other(other_dir.path());
  const auto elsewhere = [&](JetStreamLogOptions* lo) { lo->servers = other.urls(); };
  {
    // The other cluster has a stream of its own, with writes of its own.
    TempDir b_dir;
    JetStreamUpdateLog* b_log = nullptr;
    auto b = OpenNode(b_dir.path(), "b", &b_log, 20000, true, elsewhere);
    ASSERT_TRUE(b);
    ASSERT_TRUE(CreateFromSpec(*b, TestEmbedders(), "default", "theirs", J(R"({"embedder":"none","dim":8})")).ok());
  }
  auto a = OpenNode(dir.path(), "a", &log, 2000, /*wait_following=*/false, elsewhere);
  ASSERT_TRUE(a);
  const std::string reason = WaitBlocked(*log);
  EXPECT_NE(reason.find("another update log"), std::string::npos) << reason;
  EXPECT_FALSE(log->connected());
  EXPECT_TRUE(a->GetCollection("default", "docs").ok()) << "what it held is kept";
  EXPECT_FALSE(a->GetCollection("default", "theirs").ok()) << "it applied the other cluster's log";
  UpsertResult r;
  Status st = (*a->GetCollection("default", "docs"))->Upsert(Docs("y", 1, 2), &r);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("another update log"), std::string::npos);
}

TEST_F(JetStreamLogTest, ARepeatedIdempotencyKeyAppliesOnce) {
  TempDir dir;
  JetStreamUpdateLog* log = nullptr;
  auto e = OpenNode(dir.path(), "a", &log);
  ASSERT_TRUE(e);
  auto c = CreateFromSpec(*e, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(c.ok());
  RequestContext ctx;
  ctx.idempotency_key = "retry-1";
  UpsertResult r;
  ASSERT_TRUE((*c)->Upsert(ctx, Docs("x", 1, 1), &r).ok());
  const uint64_t after_first = log->stream_state().last_sequence;
  auto docs = Docs("x", 1, 2);  // a retry: same key (its body would be the same)
  ASSERT_TRUE((*c)->Upsert(ctx, std::move(docs), &r).ok());
  EXPECT_EQ(log->stream_state().last_sequence, after_first) << "the retry was logged again";
  auto got = (*c)->GetDocument("x-0");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->text, "document x-0 seed 1");
  // Another key is another write.
  RequestContext other;
  other.idempotency_key = "retry-2";
  ASSERT_TRUE((*c)->Upsert(other, Docs("x", 1, 3), &r).ok());
  auto latest = (*c)->GetDocument("x-0");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->text, "document x-0 seed 3");
}

// The servers refuse messages over their max_payload (1 MB here, NATS's default): a larger
// write goes in as parts and an index, and every node applies it whole, a node replaying
// the log from the start included. A retry under the same key logs nothing new.
TEST_F(JetStreamLogTest, AWriteLargerThanTheServersMaxPayloadGoesInAsPartsAndEveryNodeAppliesIt) {
  TempDir dir_a, dir_b, dir_c;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr, *log_c = nullptr;
  // a writes the record as it is (compressed, it would fit one message; compressed records
  // in parts are tested below).
  auto a = OpenNode(dir_a.path(), "a", &log_a, 20000, true,
                    [](JetStreamLogOptions* o) { o->compression = LogCompression::kNone; });
  // b records its durable mark only when told: before the write, for the restart below.
  auto mark_when_told = [](JetStreamLogOptions* o) { o->durable_mark_ms = 3600 * 1000; };
  auto b = OpenNode(dir_b.path(), "b", &log_b, 20000, true, mark_when_told);
  ASSERT_TRUE(a && b);
  auto c = CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(c.ok());
  const uint64_t before = log_a->stream_state().last_sequence;
  ASSERT_TRUE(WaitApplied(*b, before));
  ASSERT_TRUE(log_b->RecordDurableMark().ok());
  std::string text;
  for (int i = 0; text.size() < 2500 * 1000; ++i) text += "word" + std::to_string(i) + " ";
  auto big = Docs("big", 1, 1);
  big[0].text = text;
  RequestContext ctx;
  ctx.idempotency_key = "large-1";
  UpsertResult r;
  Status st = (*c)->Upsert(ctx, big, &r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const uint64_t after = log_a->stream_state().last_sequence;
  EXPECT_GE(after - before, 4u) << "three parts of under 1 MB and the index";
  auto got = (*c)->GetDocument("big-0");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->text, text);
  // The other node, and a node that replays the whole log.
  auto text_on = [after](const Engine& node) -> std::string {
    if (!WaitApplied(node, after)) return "(not applied)";
    auto docs = node.GetCollection("default", "docs");
    if (!docs.ok() || (*docs)->document_count() != 1) return "(not one document)";
    auto doc = (*docs)->GetDocument("big-0");
    return doc.ok() ? doc->text : doc.status().ToString();
  };
  EXPECT_TRUE(text_on(*b) == text) << "node b";
  auto fresh = OpenNode(dir_c.path(), "c", &log_c);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(text_on(*fresh) == text) << "node c, replaying the log";
  // The client retries after a timeout: the same key, the same body.
  ASSERT_TRUE((*c)->Upsert(ctx, big, &r).ok());
  EXPECT_EQ(log_a->stream_state().last_sequence, after) << "the retry was logged again";
  // b restarted resumes from the mark it recorded before the write: the parts and the
  // index come again and change nothing.
  b.reset();
  b = OpenNode(dir_b.path(), "b", &log_b, 20000, true, mark_when_told);
  ASSERT_TRUE(b);
  EXPECT_TRUE(text_on(*b) == text) << "node b, restarted";
  // Applied: its parts no longer hold the durable marks back.
  auto mark = log_b->RecordDurableMark();
  ASSERT_TRUE(mark.ok());
  EXPECT_GE(*mark, after);
}

// Records go into the log compressed (cluster/record_compression.h); a node reads both
// forms, so nodes writing either way (an upgrade in progress, or compression turned off on
// one) converge. A compressed record larger than a message goes in as parts.
TEST_F(JetStreamLogTest, CompressedAndPlainRecordsAreBothAppliedEverywhere) {
  TempDir dir_a, dir_b;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr;
  auto a = OpenNode(dir_a.path(), "a", &log_a);  // zstd, the default
  auto b = OpenNode(dir_b.path(), "b", &log_b, 20000, true,
                    [](JetStreamLogOptions* o) { o->compression = LogCompression::kNone; });
  ASSERT_TRUE(a && b);
  auto on_a = CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(on_a.ok());
  ASSERT_TRUE(WaitApplied(*b, log_a->stream_state().last_sequence));
  auto on_b = b->GetCollection("default", "docs");
  ASSERT_TRUE(on_b.ok());
  // The same 200 KB of text-like words through each node; what the stream stores grows by
  // far less for a's write than for b's.
  std::mt19937 rng(7);
  std::string words;
  while (words.size() < 200 * 1000) words += "term" + std::to_string(rng() % 500) + " ";
  auto stored_by = [&](Collection& c, const std::string& id) -> uint64_t {
    const uint64_t before = log_a->stream_state().bytes;
    auto docs = Docs(id, 1, 1);
    docs[0].text = words;
    UpsertResult r;
    const Status st = c.Upsert(docs, &r);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return log_a->stream_state().bytes - before;
  };
  const uint64_t own_a = log_a->own_records_applied(), own_b = log_b->own_records_applied();
  const uint64_t compressed = stored_by(**on_a, "from-a");
  const uint64_t plain = stored_by(**on_b, "from-b");
  // Each writer applied its own upsert as it made it; neither the other's.
  EXPECT_EQ(log_a->own_records_applied(), own_a + 1);
  EXPECT_EQ(log_b->own_records_applied(), own_b + 1);
  EXPECT_GT(plain, words.size()) << "b writes the record as it is";
  EXPECT_LT(compressed * 3, plain) << "a compresses it";
  // 3 MB of random letters: about 1.9 MB compressed, still more than a message.
  std::string letters(3 * 1000 * 1000, ' ');
  for (size_t i = 0; i < letters.size(); ++i) letters[i] = i % 9 == 8 ? ' ' : static_cast<char>('a' + rng() % 26);
  auto big = Docs("big", 1, 2);
  big[0].text = letters;
  const uint64_t before_big = log_a->stream_state().last_sequence;
  UpsertResult r;
  ASSERT_TRUE((*on_a)->Upsert(big, &r).ok());
  const uint64_t last = log_a->stream_state().last_sequence;
  EXPECT_GE(last - before_big, 3u) << "at least two parts and the index";
  EXPECT_EQ(log_a->own_records_applied(), own_a + 2) << "its index named what a published: no parts fetched back";
  for (Engine* node : {a.get(), b.get()}) {
    ASSERT_TRUE(WaitApplied(*node, last));
    auto docs = node->GetCollection("default", "docs");
    ASSERT_TRUE(docs.ok());
    EXPECT_EQ((*docs)->document_count(), 3u);
    for (const char* id : {"from-a-0", "from-b-0"}) {
      auto doc = (*docs)->GetDocument(id);
      ASSERT_TRUE(doc.ok()) << id;
      EXPECT_TRUE(doc->text == words) << id;
    }
    auto doc = (*docs)->GetDocument("big-0");
    ASSERT_TRUE(doc.ok());
    EXPECT_TRUE(doc->text == letters);
  }
}

// A shard k-means cannot divide (the same vector written 2,100 times, over a limit of 500)
// is marked so through the log: every node links its graph. A node that did not know
// would wait for a split that never comes, scanning the shard exactly (until it grew to
// four times the graph threshold).
TEST_F(JetStreamLogTest, AShardThatCannotBeDividedIsLinkedOnEveryNode) {
  // Each node indexes every shard (a cluster's map would give each its share).
  class EveryShardHere : public ShardRouter {
   public:
    bool Spreads(const std::string&, uint64_t, const std::vector<uint32_t>&) const override { return false; }
    bool Indexes(const std::string&, uint64_t, uint32_t) const override { return true; }
    bool AsksHolders() const override { return false; }
    Status Gather(const RequestContext&, const ShardQuery&, std::vector<ShardCandidates>*, Coverage*) override {
      return Internal("not asked: this node answers alone");
    }
  } router;
  TempDir dir_a, dir_b;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr;
  auto a = OpenNode(dir_a.path(), "a", &log_a);
  auto b = OpenNode(dir_b.path(), "b", &log_b);
  ASSERT_TRUE(a && b);
  a->SetShardRouter(&router);
  b->SetShardRouter(&router);
  // Until each has heard the other, both lead maintenance (and would both find the shard
  // indivisible): one proposer, as in a settled cluster.
  for (int t = 0; t < 200 && log_a->LeadsMaintenance() == log_b->LeadsMaintenance(); ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_NE(log_a->LeadsMaintenance(), log_b->LeadsMaintenance());
  auto on_a = CreateFromSpec(*a, TestEmbedders(), "default", "same",
                             J(R"({"embedder":"none","dim":8,"sharding":{"max_shard_chunks":500}})"));
  ASSERT_TRUE(on_a.ok());
  for (int batch = 0; batch < 7; ++batch) {
    auto docs = Docs("same" + std::to_string(batch), 300, 1);
    for (auto& d : docs) d.vector = std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8};
    UpsertResult r;
    ASSERT_TRUE((*on_a)->Upsert(docs, &r).ok());
  }
  const uint64_t written = log_a->stream_state().last_sequence;
  for (Engine* node : {a.get(), b.get()}) {
    ASSERT_TRUE(WaitApplied(*node, written));
    auto c = node->GetCollection("default", "same");
    ASSERT_TRUE(c.ok());
    // Whichever node leads maintenance proposes; the mark follows in the log, then the
    // splitter thread links the graph.
    std::string index;
    for (int t = 0; t < 300 && index != "hnsw"; ++t) {
      (*c)->WaitForSplits();
      const ShardsReport report = (*c)->DescribeShards();
      ASSERT_EQ(report.shards.size(), 1u) << "no split was committed";
      EXPECT_EQ(report.shards[0].chunks, 2100u);
      index = report.shards[0].index;
      if (index != "hnsw") std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(index, "hnsw") << "the shard's graph is linked on this node too";
  }
}

// A writer that dies between a large write's parts and its index: every node holds its
// durable mark below the parts (the purge must keep them while an index may still come),
// a node restarted after applying later writes too (it resumes from its recorded mark and
// sees the parts again), until the writer must have given up.
TEST_F(JetStreamLogTest, PartsWithoutTheirIndexHoldTheDurableMarksUntilTheirWriterGaveUp) {
  TempDir dir_a, dir_b;
  JetStreamUpdateLog *log_a = nullptr, *log_b = nullptr;
  bool abandon = true;
  auto tweak = [&abandon](JetStreamLogOptions* o) {
    o->before_index = [&abandon] { return !abandon; };
    o->compression = LogCompression::kNone;  // the 1.5 MB of 'a' below must go in as parts
  };
  auto a = OpenNode(dir_a.path(), "a", &log_a, /*commit_timeout_ms=*/1000, true, tweak);
  auto b = OpenNode(dir_b.path(), "b", &log_b, /*commit_timeout_ms=*/1000);
  ASSERT_TRUE(a && b);
  auto c = CreateFromSpec(*a, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(c.ok());
  const uint64_t first_part = log_a->stream_state().last_sequence + 1;
  auto big = Docs("big", 1, 1);
  big[0].text = std::string(1500 * 1000, 'a');  // more than 1 MB: parts
  UpsertResult r;
  Status st = (*c)->Upsert(big, &r);
  EXPECT_EQ(st.reason(), "log_unavailable") << st.ToString();
  abandon = false;
  // A later write, applied everywhere: the store's applied sequence passes the parts.
  ASSERT_TRUE((*c)->Upsert(Docs("small", 1, 2), &r).ok());
  const uint64_t later = log_a->stream_state().last_sequence;
  ASSERT_GE(later, first_part + 2);
  ASSERT_TRUE(WaitApplied(*b, later));
  for (JetStreamUpdateLog* log : {log_a, log_b}) {
    auto mark = log->RecordDurableMark();
    ASSERT_TRUE(mark.ok());
    EXPECT_LT(*mark, first_part) << "a node's mark passed parts whose index may still come";
  }
  b.reset();
  b = OpenNode(dir_b.path(), "b", &log_b, /*commit_timeout_ms=*/1000);
  ASSERT_TRUE(b);
  ASSERT_TRUE(WaitApplied(*b, later));
  auto restarted = log_b->RecordDurableMark();
  ASSERT_TRUE(restarted.ok());
  EXPECT_LT(*restarted, first_part) << "the restarted node forgot the parts it had passed";
  EXPECT_TRUE(b->GetCollection("default", "docs").ok());
  // The writer gives up within (parts + 1) x 2 x commit_timeout of stream time; a message
  // stored after that lets the marks pass.
  const uint64_t parts = later - first_part;  // the small write is the message after them
  std::this_thread::sleep_for(std::chrono::milliseconds((parts + 1) * 2 * 1000 + 500));
  ASSERT_TRUE((*c)->Upsert(Docs("after", 1, 3), &r).ok());
  const uint64_t last = log_a->stream_state().last_sequence;
  ASSERT_TRUE(WaitApplied(*b, last));
  for (JetStreamUpdateLog* log : {log_a, log_b}) {
    auto mark = log->RecordDurableMark();
    ASSERT_TRUE(mark.ok());
    EXPECT_GE(*mark, last);
  }
}

TEST(CheckRecordSizeTest, SaysBothSizesAndCountsTheHeaders) {
  EXPECT_TRUE(CheckRecordSize(1000, 40, 1 << 20).ok());
  EXPECT_TRUE(CheckRecordSize(5 << 20, 40, 0).ok()) << "not connected: the limit is unknown";
  const Status over = CheckRecordSize((1 << 20) - 50, 40, 1 << 20);  // fits only without its headers
  EXPECT_EQ(over.reason(), "write_too_large");
  EXPECT_NE(over.message().find(std::to_string((1 << 20) - 50 + 40 + 64) + " bytes"), std::string::npos)
      << over.message();
  EXPECT_NE(over.message().find("at most 1048576 bytes"), std::string::npos) << over.message();
  EXPECT_EQ(CheckRecordSize(1000, 40, 1 << 20, /*refused=*/true).reason(), "write_too_large");
}

TEST_F(JetStreamLogTest, WithoutAQuorumAWriteIsUnavailableNotAcknowledged) {
  TempDir dir;
  JetStreamUpdateLog* log = nullptr;
  auto e = OpenNode(dir.path(), "a", &log, /*commit_timeout_ms=*/3000);
  ASSERT_TRUE(e);
  auto c = CreateFromSpec(*e, TestEmbedders(), "default", "docs", J(R"({"embedder":"none","dim":8})"));
  ASSERT_TRUE(c.ok());
  nats_->Kill(1);
  nats_->Kill(2);
  UpsertResult r;
  Status st = (*c)->Upsert(Docs("lost", 1, 1), &r);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(st.reason(), "log_unavailable");
  EXPECT_EQ((*c)->document_count(), 0u);
  // Quorum back: writes are acknowledged again.
  nats_->Start(1);
  nats_->Start(2);
  Status again;
  for (int i = 0; i < 10; ++i) {
    again = (*c)->Upsert(Docs("back", 1, 2), &r);
    if (again.ok()) break;
  }
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_TRUE((*c)->GetDocument("back-0").ok());
}

// A node may start before its NATS cluster (scripts/cluster, a reboot): it opens at once,
// is not ready and refuses writes (log_unavailable) until the cluster answers, then
// creates or finds the stream, follows it and takes writes.
TEST_F(JetStreamLogTest, ANodeStartedBeforeItsClusterFollowsOnceTheClusterIsUp) {
  for (int i = 0; i < 3; ++i) nats_->Kill(i);
  TempDir dir;
  JetStreamUpdateLog* log = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  auto e = OpenNode(dir.path(), "early", &log, /*commit_timeout_ms=*/1500, /*wait_following=*/false);
  ASSERT_TRUE(e);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10)) << "opening waited for NATS";
  EXPECT_FALSE(log->connected());
  EXPECT_FALSE(log->following());
  CollectionConfig config;
  config.embedder = "none";
  config.dim = 8;
  auto refused = e->CreateCollection("default", "docs", config);
  EXPECT_EQ(refused.status().reason(), "log_unavailable") << refused.status().ToString();
  for (int i = 0; i < 3; ++i) nats_->Start(i);
  for (int t = 0; t < 600 && !log->connected(); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(log->connected()) << "the node never followed the stream";
  StatusOr<std::shared_ptr<Collection>> c = refused.status();
  for (int attempt = 0; attempt < 10 && !c.ok(); ++attempt) c = e->CreateCollection("default", "docs", config);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  UpsertResult r;
  ASSERT_TRUE((*c)->Upsert(Docs("late", 2, 5), &r).ok());
  EXPECT_EQ((*c)->document_count(), 2u);
}

}  // namespace
}  // namespace contextd
