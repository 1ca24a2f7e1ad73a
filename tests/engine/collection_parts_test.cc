// The parts Collection is made of, tested on their own: DocumentTable's slot numbering and
// indexes, ShardSet's placement and its split phases with writes logged in between.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>

#include "engine/document_table.h"
#include "engine/shard_set.h"
#include "text/analyzer.h"

namespace contextd {
namespace {

MutationDocument Doc(const std::string& id, std::vector<std::string> chunks) {
  MutationDocument d;
  d.id = id;
  for (const auto& c : chunks) d.AddChunk(c);
  return d;
}

void InsertDoc(DocumentTable* table, const Analyzer& analyzer, MutationDocument d, std::vector<uint32_t>* slots) {
  slots->clear();
  std::vector<std::string> scratch;
  const TermList terms = DocumentTerms(analyzer, d, &scratch);
  for (size_t j = 0; j < d.chunks.size(); ++j) slots->push_back(table->AllocateSlot());
  table->Insert(&d, slots->data(), terms);
}

TEST(DocumentTableTest, FreedSlotsAreReusedLowestFirstAndLeaveTheIndexes) {
  auto analyzer = MakeAnalyzer("english").value();
  DocumentTable table;
  std::vector<uint32_t> slots;
  InsertDoc(&table, *analyzer, Doc("a", {"apples grow", "on trees"}), &slots);
  EXPECT_EQ(slots, (std::vector<uint32_t>{0, 1}));
  InsertDoc(&table, *analyzer, Doc("b", {"bananas are yellow"}), &slots);
  EXPECT_EQ(slots, (std::vector<uint32_t>{2}));
  EXPECT_EQ(table.document_count(), 2u);
  EXPECT_EQ(table.chunk_count(), 3u);

  std::vector<uint32_t> removed;
  ASSERT_TRUE(table.Remove("a", [&](uint32_t s) { removed.push_back(s); }));
  EXPECT_EQ(removed, (std::vector<uint32_t>{0, 1}));
  EXPECT_FALSE(table.Remove("a", [](uint32_t) {}));
  EXPECT_FALSE(table.live(0));
  EXPECT_EQ(table.chunk_count(), 1u);
  std::vector<std::string> q;
  analyzer->Analyze("apples", &q);
  EXPECT_TRUE(table.keywords().Search(q, 10, nullptr).empty()) << "a removed chunk must leave the keyword index";

  // The lowest free slots first, whatever order they were freed in: replicas number alike.
  InsertDoc(&table, *analyzer, Doc("c", {"cherries", "are", "red"}), &slots);
  EXPECT_EQ(slots, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(table.chunk(3).doc->id, "c");
  EXPECT_EQ(table.chunk(3).ordinal, 2u);
  analyzer->Analyze("cherries", &(q = {}));
  auto hits = table.keywords().Search(q, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
}

// A large document deleted again gives back the slot arrays it grew (here and in the
// keyword index); numbering goes on lowest-first as if they had stayed, so a replica that
// trimmed and one that restarted (and holds only the live slots) still number alike.
TEST(DocumentTableTest, DeletingALargeDocumentGivesBackItsSlots) {
  auto analyzer = MakeAnalyzer("english").value();
  DocumentTable table;
  std::vector<uint32_t> slots;
  InsertDoc(&table, *analyzer, Doc("small", {"apples grow", "on trees"}), &slots);
  const size_t small_bytes = table.memory_bytes();
  std::vector<std::string> chunks;
  for (int i = 0; i < 20000; ++i) chunks.push_back("chunk number " + std::to_string(i) + " of a large text");
  InsertDoc(&table, *analyzer, Doc("big", chunks), &slots);
  const size_t big_bytes = table.memory_bytes();
  ASSERT_TRUE(table.Remove("big", [](uint32_t) {}));
  EXPECT_LT(table.memory_bytes(), small_bytes + (big_bytes - small_bytes) / 20) << "big " << big_bytes;
  EXPECT_EQ(table.slot_count(), 2u);
  std::vector<std::string> q;
  analyzer->Analyze("apples", &q);
  auto hits = table.keywords().Search(q, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
  InsertDoc(&table, *analyzer, Doc("c", {"cherries", "are", "red"}), &slots);
  EXPECT_EQ(slots, (std::vector<uint32_t>{2, 3, 4}));
  analyzer->Analyze("cherries", &(q = {}));
  hits = table.keywords().Search(q, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 2u);
}

TEST(DocumentTableTest, LoadRefusesAChunkThatDoesNotFit) {
  DocumentTable table;
  auto doc = std::make_unique<DocumentTable::Document>();
  doc->id = "a";
  DocumentTable::Document* a = table.AddLoadedDocument(std::move(doc));
  EXPECT_TRUE(table.AddLoadedChunk(a, 0, 5, "first", {}));
  EXPECT_FALSE(table.AddLoadedChunk(a, 2, 6, "skips ordinal 1", {}));
  EXPECT_FALSE(table.AddLoadedChunk(a, 1, 5, "slot taken", {}));
  EXPECT_FALSE(table.AddLoadedChunk(a, 1, 1u << 31, "slot out of range", {}));
  EXPECT_TRUE(table.AddLoadedChunk(a, 1, 2, "second", {}));
  table.FinishLoad();
  EXPECT_EQ(table.AllocateSlot(), 0u) << "the gaps below the highest slot are free";
  EXPECT_EQ(table.AllocateSlot(), 1u);
  EXPECT_EQ(table.AllocateSlot(), 3u);
}

CollectionConfig SmallShards(size_t max_shard_chunks) {
  CollectionConfig c;
  c.embedder = "none";
  c.dim = 8;
  c.metric = Metric::kCosine;
  c.sharding.max_shard_chunks = max_shard_chunks;
  return c;
}

// Two clusters of directions, so 2-means has something to find.
std::vector<float> Vector(std::mt19937* rng, int cluster) {
  std::normal_distribution<float> noise(0, 0.1f);
  std::vector<float> v(8);
  for (int i = 0; i < 8; ++i) v[i] = (i % 2 == cluster ? 1.0f : 0.0f) + noise(*rng);
  float n = 0;
  for (float x : v) n += x * x;
  for (float& x : v) x /= std::sqrt(n);
  return v;
}

TEST(ShardSetTest, ASplitKeepsEveryChunkOnceAcrossWritesLoggedMeanwhile) {
  ShardSet shards(SmallShards(100), "");
  std::mt19937 rng(7);
  std::vector<std::vector<float>> vectors;
  for (uint32_t s = 0; s < 150; ++s) {
    vectors.push_back(Vector(&rng, static_cast<int>(s % 2)));
    shards.Place(s, vectors[s].data())->Add(s, vectors[s].data());
  }
  ASSERT_EQ(shards.OversizedShard(), 0u);
  ASSERT_EQ(shards.PendingSplit(), SIZE_MAX);
  // The split as the log would carry it: 2-means centroids over the shard's vectors.
  std::vector<float> rows;
  for (const auto& v : vectors) rows.insert(rows.end(), v.begin(), v.end());
  ASSERT_TRUE(*shards.ApplySplit(0, BalancedKMeans(rows.data(), 150, 8, 2, Metric::kCosine).centroids));
  EXPECT_EQ(shards.OversizedShard(), SIZE_MAX) << "split already: nothing more to propose";
  ASSERT_EQ(shards.PendingSplit(), 0u);
  ShardSet::SplitJob job;
  shards.BeginSplit(0, &job);
  EXPECT_EQ(job.members.size(), 150u);
  EXPECT_EQ(job.ids, (std::vector<uint32_t>{1, 2}));
  std::atomic<bool> stop{false};
  ASSERT_TRUE(shards.BuildSplit(&job, stop));
  // Writes between the snapshot and the swap: 20 removed, 30 added (10 of them reusing
  // removed slots), some before the catch-up and some after it.
  for (uint32_t s = 0; s < 10; ++s) shards.Remove(s);
  for (uint32_t s = 150; s < 170; ++s) {
    vectors.push_back(Vector(&rng, static_cast<int>(s % 2)));
    shards.Place(s, vectors[s].data())->Add(s, vectors[s].data());
  }
  shards.Replay(&job, shards.CatchUp(job, 0));
  for (uint32_t s = 10; s < 20; ++s) shards.Remove(s);
  for (uint32_t s = 0; s < 10; ++s) {
    vectors[s] = Vector(&rng, 1);
    shards.Place(s, vectors[s].data())->Add(s, vectors[s].data());
  }
  shards.FinishSplit(&job);
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards.PendingSplit(), SIZE_MAX);
  EXPECT_EQ(job.chunks[0] + job.chunks[1], 160u);
  EXPECT_GT(std::min(job.chunks[0], job.chunks[1]), 40u) << "2-means over two clusters: halves of similar size";

  // Every live chunk is found exactly where its vector is, and no removed one is.
  std::set<uint32_t> live;
  for (uint32_t s = 0; s < 170; ++s) {
    if (s < 10 || s >= 20) live.insert(s);
  }
  std::vector<float> out(8);
  for (uint32_t s = 0; s < 170; ++s) {
    EXPECT_EQ(shards.CopyVector(s, out.data()), live.count(s) == 1) << "slot " << s;
    if (live.count(s)) EXPECT_EQ(out, vectors[s]) << "slot " << s;
  }
  std::set<uint32_t> found;
  for (const auto& hit : shards.Search(vectors[30].data(), 1000, 0, nullptr, /*all_shards=*/true, nullptr, nullptr))
    EXPECT_TRUE(found.insert(hit.slot).second) << "slot " << hit.slot << " in two shards";
  EXPECT_EQ(found, live);
  std::vector<std::vector<uint32_t>> samples;
  ShardsReport report = shards.Report(1000, &samples);
  EXPECT_EQ(report.shards[0].chunks + report.shards[1].chunks, 160u);
  EXPECT_EQ(samples[0].size() + samples[1].size(), 160u);
  // Each chunk is in the shard the layout names for its vector, whenever it was written.
  std::vector<uint32_t> members;
  for (uint32_t id : {1u, 2u}) {
    ASSERT_TRUE(shards.Members(id, &members));
    for (uint32_t s : members) EXPECT_EQ(shards.layout().Leaf(vectors[s].data()), id) << "slot " << s;
  }
}

// A shard past max_shard_chunks is about to be split: its graph does not link (the links
// would be thrown away with it) until k-means could not divide it, or it grew four times
// past the limit with no split. Within the limit a shard links once it is big enough.
TEST(ShardSetTest, AShardAwaitingItsSplitStoresWithoutLinks) {
  const size_t min = ShardSet::kGraphMinChunks;
  std::mt19937 rng(11);
  auto fill = [&rng](ShardSet* shards, uint32_t from, uint32_t to) {
    for (uint32_t s = from; s < to; ++s) {
      const auto v = Vector(&rng, static_cast<int>(s % 2));
      shards->Place(s, v.data())->Add(s, v.data());
    }
  };
  ShardSet within(SmallShards(min), "");
  fill(&within, 0, min);
  EXPECT_TRUE(within.graph(0)->linking()) << "at kGraphMinChunks, within the limit";

  const size_t limit = 500;
  ShardSet over(SmallShards(limit), "");
  fill(&over, 0, min + 100);
  EXPECT_EQ(over.OversizedShard(), 0u);
  EXPECT_FALSE(over.Links(ShardLayout::kRoot, min + 100));
  EXPECT_FALSE(over.graph(0)->linking());
  EXPECT_EQ(over.graph(0)->unlinked(), min + 100);
  EXPECT_FALSE(over.LinkingDue());
  // k-means could not divide it: it is not split soon, so it links (on the splitter
  // thread, through UpdateLinking()) and every chunk added after is linked as it comes.
  over.MarkUnsplittable(ShardLayout::kRoot, min + 100);
  EXPECT_TRUE(over.LinkingDue());
  std::atomic<bool> stop{false};
  for (const auto& graph : over.UpdateLinking()) graph->LinkPending(stop);
  EXPECT_TRUE(over.graph(0)->linking());
  EXPECT_EQ(over.graph(0)->unlinked(), 0u);
  // Grown by half since: a split is tried again, and it stops linking until then.
  const size_t grown = (min + 100) * 3 / 2;
  EXPECT_FALSE(over.Links(ShardLayout::kRoot, grown));
  fill(&over, min + 100, 2 * min + 400);
  // Four times past the limit (and kGraphMinChunks) with no split: it links anyway.
  EXPECT_TRUE(over.Links(ShardLayout::kRoot, 4 * min));
  // A split's children over the limit (each about min + 200 here) are built without links.
  std::vector<float> rows;
  std::vector<uint32_t> slots;
  ASSERT_TRUE(over.Members(ShardLayout::kRoot, &slots));
  rows = ShardSet::VectorsOf(*over.graph(0), &slots);
  ASSERT_TRUE(*over.ApplySplit(0, BalancedKMeans(rows.data(), slots.size(), 8, 2, Metric::kCosine).centroids));
  EXPECT_FALSE(over.Links(ShardLayout::kRoot, 4 * min)) << "split applied: its children are being built";
  ShardSet::SplitJob job;
  over.BeginSplit(0, &job);
  ASSERT_TRUE(over.BuildSplit(&job, stop));
  for (const auto& part : job.parts) {
    EXPECT_GE(part->size(), min) << "big enough to link, were it not split again";
    EXPECT_FALSE(part->linking());
  }
}

TEST(ShardSetTest, AnAbandonedSplitLeavesTheShardAsItWas) {
  ShardSet shards(SmallShards(1), "");
  std::mt19937 rng(3);
  auto v = Vector(&rng, 0);
  shards.Place(0, v.data())->Add(0, v.data());
  auto w = Vector(&rng, 1);
  std::vector<float> centroids = v;
  centroids.insert(centroids.end(), w.begin(), w.end());
  ASSERT_TRUE(*shards.ApplySplit(0, centroids));
  ShardSet::SplitJob job;
  shards.BeginSplit(0, &job);
  std::atomic<bool> stop{true};  // shutting down
  EXPECT_FALSE(shards.BuildSplit(&job, stop));
  shards.AbandonSplit(&job);
  shards.Place(1, w.data())->Add(1, w.data());
  EXPECT_EQ(shards.size(), 1u);
  std::vector<std::vector<uint32_t>> samples;
  EXPECT_TRUE(shards.Report(10, &samples).shards[0].splitting) << "reported as splitting until it is built";
  EXPECT_EQ(shards.Search(v.data(), 10, 0, nullptr, false, nullptr, nullptr).size(), 2u);
  EXPECT_EQ(shards.PendingSplit(), 0u) << "the split is still the layout's: built at the next chance";
  stop = false;
  shards.BeginSplit(0, &job);
  ASSERT_TRUE(shards.BuildSplit(&job, stop));
  shards.FinishSplit(&job);
  EXPECT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards.Search(v.data(), 10, 0, nullptr, false, nullptr, nullptr).size(), 2u);
}

}  // namespace
}  // namespace contextd
