// A topic shard saved on its own and rebuilt elsewhere: snapshot, wire form, and the
// mutations after the snapshot replayed into the rebuilt shard.
#include "engine/shard_snapshot.h"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "engine/engine.h"
#include "server/request_codec.h"
#include "test_engine.h"
#include "test_util.h"

namespace contextd {
namespace {

// SciFact documents [first, first + count) as DocumentInputs, with their text replaced by
// that of document `text_from + i` when text_from >= 0 (a rewrite of the same ids).
std::vector<DocumentInput> SciFactDocs(int first, int count, int text_from = -1) {
  std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/corpus.jsonl");
  std::vector<Json> all;
  std::string line;
  const int need = std::max(first + count, text_from + count);
  for (int i = 0; i < need && std::getline(in, line); ++i) all.push_back(J(line));
  std::vector<DocumentInput> docs;
  for (int i = first; i < first + count; ++i) {
    const Json& text = all[static_cast<size_t>(text_from >= 0 ? text_from + (i - first) : i)];
    DocumentInput d;
    d.id = all[static_cast<size_t>(i)].Find("_id")->as_string();
    d.title = text.Find("title")->as_string();
    d.text = text.Find("text")->as_string();
    d.metadata["n"] = i;
    docs.push_back(std::move(d));
  }
  return docs;
}

TEST(ShardSnapshotTest, EveryShardRebuiltFromItsSnapshotAndTheLaterMutationsMatchesTheSource) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.models_dir = CONTEXTD_MODELS_DIR;
  std::vector<Mutation> log;
  o.on_commit = [&](const Mutation& m) { log.push_back(m); };
  auto engine = std::move(Engine::Open(o, nullptr)).value();
  // Short chunks, so a document's chunks spread over several topic shards.
  auto c = *CreateFromSpec(
      *engine, TestEmbedders(), kDefaultTenant, "sf",
      J(R"({"embedder":"glove","chunking":{"max_tokens":64,"overlap":0},"sharding":{"max_shard_chunks":250}})"));
  UpsertResult r;
  for (int first = 0; first < 150; first += 25) {
    ASSERT_TRUE(c->Upsert(SciFactDocs(first, 25), &r).ok());
    c->WaitForSplits();
  }
  // A third deleted again, so every shard has room for the writes after the snapshots.
  for (const auto& d : SciFactDocs(100, 50)) ASSERT_TRUE(c->DeleteDocument(d.id).ok());
  const size_t shards = c->shard_count();
  ASSERT_GE(shards, 3u) << "the test needs a collection of several shards";

  std::vector<ShardSnapshot> snapshots;
  for (const auto& s : c->DescribeShards().shards) {
    auto snap = c->SnapshotShard(s.id);
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    EXPECT_EQ(snap->chunks.size(), s.chunks);
    snapshots.push_back(std::move(snap).value());
  }
  EXPECT_EQ(c->SnapshotShard(9999).status().code(), StatusCode::kNotFound);
  const uint64_t at = snapshots[0].sequence;
  EXPECT_EQ(at, log.back().sequence);

  // After the snapshots: rewrites (new texts under the same ids), deletes and new documents,
  // fewer chunks in all, so no shard outgrows its limit and splits.
  ASSERT_TRUE(c->Upsert(SciFactDocs(0, 10, 150), &r).ok());
  for (const auto& d : SciFactDocs(40, 40)) ASSERT_TRUE(c->DeleteDocument(d.id).ok());
  ASSERT_TRUE(c->Upsert(SciFactDocs(180, 5), &r).ok());
  ASSERT_TRUE(c->Upsert(SciFactDocs(100, 5, 0), &r).ok());
  c->WaitForSplits();
  ASSERT_EQ(c->shard_count(), shards) << "a split after the snapshots changes the layout they describe";

  size_t total = 0;
  for (const ShardSnapshot& snap : snapshots) {
    // Through its wire form, as it would travel to another node.
    auto decoded = DecodeShardSnapshot(EncodeShardSnapshot(snap));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(ShardDigest(*decoded), ShardDigest(snap));
    ShardReplica replica(*decoded);
    for (const Mutation& m : log) ASSERT_TRUE(replica.Apply(m).ok() || m.collection_id != c->id());
    EXPECT_GT(replica.applied_sequence(), at);
    auto now = c->SnapshotShard(snap.shard_id);
    ASSERT_TRUE(now.ok());
    EXPECT_NE(ShardDigest(*now), ShardDigest(snap)) << "shard " << snap.shard_id << ": the writes changed it";
    EXPECT_EQ(replica.chunk_count(), now->chunks.size()) << "shard " << snap.shard_id;
    EXPECT_EQ(ShardDigest(replica.Snapshot()), ShardDigest(*now)) << "shard " << snap.shard_id;
    total += now->chunks.size();
    // And it answers: each chunk is its own nearest neighbour there.
    for (size_t i = 0; i < now->chunks.size(); i += 17) {
      const auto& chunk = now->chunks[i];
      auto hits = replica.Search(chunk.vector.data(), 1);
      ASSERT_EQ(hits.size(), 1u);
      EXPECT_EQ(hits[0].doc_id, now->documents[chunk.document].id);
    }
  }
  EXPECT_EQ(total, c->chunk_count()) << "the shards together hold every chunk once";

  // Replaying again changes nothing: the replica skips what it has applied.
  ShardReplica again(snapshots[0]);
  for (const Mutation& m : log) (void)again.Apply(m);
  const uint64_t digest = ShardDigest(again.Snapshot());
  for (const Mutation& m : log) (void)again.Apply(m);
  EXPECT_EQ(ShardDigest(again.Snapshot()), digest);
}

TEST(ShardSnapshotTest, ACorruptSnapshotIsRefusedNotTrusted) {
  ShardSnapshot s;
  s.sequence = 7;
  s.collection_id = 3;
  s.dim = 2;
  ShardLayout layout(s.metric, 2);
  ASSERT_TRUE(layout.Split(ShardLayout::kRoot, {1, 0, 0, 1}).ok());
  s.layout = layout.Encode();
  s.shard_id = 2;
  s.documents.push_back({"a", "title", J(R"({"k":1})"), {"b"}});
  s.chunks.push_back({0, 0, "text", {0.f, 1.f}});
  const std::string bytes = EncodeShardSnapshot(s);
  auto ok = DecodeShardSnapshot(bytes);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->documents[0].refs, std::vector<std::string>{"b"});
  EXPECT_EQ(ShardDigest(*ok), ShardDigest(s));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto cut = DecodeShardSnapshot(bytes.substr(0, n));
    ASSERT_FALSE(cut.ok()) << "truncated at " << n;
    EXPECT_EQ(cut.status().reason(), "invalid_snapshot");
  }
  EXPECT_FALSE(DecodeShardSnapshot(bytes + "x").ok());
  s.shard_id = 3;  // not in the layout
  EXPECT_EQ(DecodeShardSnapshot(EncodeShardSnapshot(s)).status().reason(), "invalid_snapshot");
  ShardReplica replica(*ok);
  Mutation other;
  other.collection_id = 4;
  other.sequence = 8;
  EXPECT_EQ(replica.Apply(other).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace contextd
