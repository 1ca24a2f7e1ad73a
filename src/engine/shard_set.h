// ShardSet: a collection's topic shards, each a centroid and its own vector index (HNSW,
// scanned exactly while small), and which shard holds each chunk slot. It places a new
// chunk in its shard, routes a vector search to the shards worth searching and merges
// their hits, loads and saves the shards' graphs, names the graphs due for repair, and
// builds a split in phases that let reads and writes go on meanwhile (see SplitJob).
//
// Which shard a chunk belongs to is decided by the layout (engine/shard_layout.h), the
// replicated history of splits: a split is a logged mutation, applied to the layout at
// once (ApplySplit); the shards here are the physical ones, and a shard split in the
// layout keeps serving from its old graph until the split is built (PendingSplit). The
// algorithms it uses (k-means, routing) are in engine/shards.h; the slots' texts and
// documents are in DocumentTable.
//
// Thread safety: none of its own, like DocumentTable: Collection guards it with its mu_,
// const methods under the lock held shared, the others under it held alone, except where a
// method says it needs no lock. The graphs lock themselves: Place() hands back the graph a
// chunk belongs in, for the caller to Add() to once the lock is released (graph inserts
// are slow). The routing counters are atomics.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/collection_types.h"
#include "engine/requests.h"
#include "engine/shard_layout.h"
#include "engine/shards.h"
#include "index/hnsw_index.h"
#include "index/slot_bitset.h"
#include "text/analyzer.h"

namespace contextd {

class ShardSet {
 public:
  // Below this many chunks an exact scan is as fast as the graph and always exact.
  static constexpr size_t kGraphMinChunks = 2000;
  // A graph is repaired (tombstones removed) past this many and a tenth of its nodes.
  static constexpr size_t kRepairMinTombstones = 256;

  // One empty shard. vector_dir: where an int8 collection's graphs keep their fp32 vectors,
  // memory-mapped (empty: in RAM).
  ShardSet(const CollectionConfig& config, std::string vector_dir);

  // Puts a new chunk in its shard (the layout's choice, or the physical shard above it
  // while that one's split is built) and returns that shard's graph, for the caller to
  // Add(slot, vector) to after releasing the lock.
  std::shared_ptr<HnswIndex> Place(uint32_t slot, const float* vector);
  // Takes a chunk out (a tombstone in its graph).
  void Remove(uint32_t slot);
  // The chunk's vector; false when the slot holds none.
  bool CopyVector(uint32_t slot, float* out) const;

  // The k best chunks for the query over the shards the router picks (every one with
  // `all_shards`; the others too when the picked ones hold fewer than k), merged by score.
  // Per shard: the graph once it is big enough to pay, the exact scan otherwise and
  // whenever a selective filter starves the graph walk. allowed: the slots a filter
  // matches, or null. routing: the query's own routing options (null: the collection's).
  // route: filled when given.
  std::vector<ScoredSlot> Search(const float* query, size_t k, size_t ef, const SlotBitset* allowed, bool all_shards,
                                 const ShardingOptions* routing, QueryResult::Route* route) const;

  // The shards the router picks for the query (ids, best first), how sure it is, and of
  // how many: what Search searches first. For a query whose shards are on several nodes.
  QueryResult::Route Route(const float* query, const ShardingOptions* routing) const;

  // The k best chunks of the shards with these ids only, merged by score (every one of
  // them searched; no routing): one node's part of a query whose shards are spread over
  // several. NotFound names a shard not held here.
  StatusOr<std::vector<ScoredSlot>> SearchIn(const std::vector<uint32_t>& shard_ids, const float* query, size_t k,
                                             size_t ef, const SlotBitset* allowed) const;
  bool Holds(uint32_t shard_id) const { return shard_id < index_of_.size() && index_of_[shard_id] != kNoShard; }
  // The shards held here that answer for `shard_ids` (ascending, each once), as another
  // node asking for them sees the layout: a shard held is itself; one this node has split
  // already is its held descendants; one whose split this node has not built yet is the
  // held shard above it (a superset: the asker counts each chunk once). NotFound names a
  // shard the layout does not have.
  StatusOr<std::vector<uint32_t>> Resolve(const std::vector<uint32_t>& shard_ids) const;
  // The slots of the shards with these ids, over `universe` slots (unknown ids: none).
  SlotBitset MembersOf(const std::vector<uint32_t>& shard_ids, size_t universe) const;
  // Physical shard ids, in routing order.
  std::vector<uint32_t> shard_ids() const;

  size_t size() const { return shards_.size(); }
  // Some shard is big enough to be searched through its graph.
  bool uses_graph() const;
  size_t graph_nodes() const;
  size_t graph_tombstones() const;
  size_t memory_bytes() const;
  size_t mapped_bytes() const;
  // The live slots of the shard with this id, ascending. False when no shard has the id.
  bool Members(uint32_t shard_id, std::vector<uint32_t>* slots) const;
  const ShardLayout& layout() const { return layout_; }
  // Applies a logged split to the layout (see ShardLayout::Split: false when `shard` was
  // split already). The physical split follows: PendingSplit() names it.
  StatusOr<bool> ApplySplit(uint32_t shard, const std::vector<float>& centroids) {
    return layout_.Split(shard, centroids);
  }
  // Graphs with enough tombstones to be worth repairing (RepairDeleted, with no lock held).
  std::vector<std::shared_ptr<HnswIndex>> RepairDue() const;

  // Partial indexing (cluster mode): `indexed(shard_id)` says whether this node links the
  // shard's graph or only stores its vectors (null, the default: every shard is linked).
  // Splits and placement need every vector, so every shard keeps them; only the graph
  // links, the costly part of an insert, are left to the nodes that search the shard.
  // Applies to graphs made from now on and, through UpdateLinking(), to those there are.
  using IndexedFn = std::function<bool(uint32_t shard_id)>;
  void SetIndexed(IndexedFn indexed) { indexed_ = std::move(indexed); }
  bool Indexed(uint32_t shard_id) const { return !indexed_ || indexed_(shard_id); }
  // Whether this node links the graph of a shard holding `chunks`: the shard is Indexed()
  // here, big enough to be searched through its graph, and not about to be split. A
  // smaller one is scanned exactly on every node, so links made for it would go unused
  // until it grows; it is linked when it gets there (LinkingDue(), on the splitter thread).
  bool Links(uint32_t shard_id, size_t chunks) const {
    return LinksWhen(chunks, [&] { return Indexed(shard_id) && !AwaitsSplit(shard_id, chunks); });
  }
  // A shard past max_shard_chunks is split soon into children of about three quarters of
  // the limit (the splitter proposes it; in a cluster through the log, which a bulk load
  // can outpace by thousands of chunks), and a shard whose split is applied is being
  // rebuilt as its children: links made for either would be thrown away with it, and were
  // most of a cluster replica's CPU in such a load. Searches scan it exactly meanwhile.
  // One k-means could not divide, or one grown four times past the limit (and
  // kGraphMinChunks) without a split, links as any other.
  bool AwaitsSplit(uint32_t shard_id, size_t chunks) const;
  // The same rule for a caller that knows whether the shard is indexed (a split part, built
  // without the lock); `indexed` is asked only for a shard big enough, since asking the
  // router costs more than the size check.
  template <class IndexedHere>
  static bool LinksWhen(size_t chunks, IndexedHere indexed) {
    return chunks >= kGraphMinChunks && indexed();
  }
  // Sets each shard's graph to link new chunks or not, as Links() now says, and returns
  // the graphs that link and still hold unlinked nodes (for LinkPending(), with no lock).
  std::vector<std::shared_ptr<HnswIndex>> UpdateLinking() const;
  // Whether some graph that links holds unlinked nodes (UpdateLinking() would return one).
  bool LinkingDue() const;
  // The shards big enough to be searched through their graphs (kGraphMinChunks) whose
  // graphs are not wholly linked here: what a vector search here would scan exactly where
  // their holders walk a graph. Smaller shards are scanned exactly everywhere.
  std::vector<uint32_t> UnlinkedGraphShards() const;

  // Builds the shards of `layout` (one per leaf, in id order) for the live chunks: `labels`
  // (their slots, ascending) and `vectors` (their rows, packed in the same order;
  // consumed). Graphs saved by Save() at store state `store_sequence` are loaded from
  // `graph_path` when they hold exactly these chunks in these shards; otherwise the
  // graphs are built on every core (stopping early when `stop` turns true). source:
  // "loaded" or "rebuilt".
  Status Load(const std::string& graph_path, uint64_t store_sequence, ShardLayout layout,
              const std::vector<uint32_t>& labels, std::vector<float>* vectors, const std::atomic<bool>& stop,
              std::string* source);
  // Saves each shard's graph, tagged with the store state: `path` for the first, `path`.N
  // for the others. REQUIRES: no split in progress.
  Status Save(const std::string& path, uint64_t store_sequence) const;

  // /shards: each shard's size, index kind, probes and split state, and the routing counters
  // (top_terms are the caller's). samples: up to `per_shard` live slots of each shard,
  // spread over it, by position in the report.
  ShardsReport Report(size_t per_shard, std::vector<std::vector<uint32_t>>* samples) const;
  struct RoutingStats {
    uint64_t queries = 0, single_shard = 0, shards_probed = 0, widened = 0;
  };
  // Routed vector searches (sets of two shards or more) since the start. No lock needed.
  RoutingStats routing_stats() const {
    return {routed_queries_.load(), confident_routes_.load(), shards_probed_.load(), widened_routes_.load()};
  }

  // Building a split the layout made (into the children's centroids) while reads and
  // writes go on:
  //   BeginSplit   (lock held alone, no write half-applied): marks the shard and lists its
  //                members; from then on Place() and Remove() on it are also logged.
  //   BuildSplit   (no lock): each member to its nearest child, the children's graphs built.
  //   CatchUp      (lock held shared) copies the logged writes not yet replayed, and
  //   Replay       (no lock) applies them to the children: repeated while many are pending.
  //   FinishSplit  (lock held alone): replays the rest; the children replace the shard.
  //   AbandonSplit (lock held alone): after a stopped build (the next start builds it).
  struct SplitOp {
    bool add;
    uint32_t slot;
    std::vector<float> vector;
  };
  struct SplitJob {
    size_t index = 0;
    std::shared_ptr<const HnswIndex> old_graph;
    uint32_t old_id = 0;
    std::vector<uint32_t> members;
    std::vector<uint32_t> ids;     // the children's, from the layout
    std::vector<float> centroids;  // theirs, ids.size() * dim
    std::vector<std::shared_ptr<HnswIndex>> parts;
    std::vector<bool> indexed;                       // by part: whether this node indexes it (Indexed())
    std::unordered_map<uint32_t, uint32_t> part_of;  // slot -> index into parts
    size_t replayed = 0;                             // split-log entries applied
    std::vector<size_t> chunks;                      // per part, set by FinishSplit
  };
  // A leaf of the layout past max_shard_chunks (a split to propose), or SIZE_MAX. A shard
  // marked unsplittable is left out until it has grown by half.
  size_t OversizedShard() const;
  // The shard's chunks (`chunks` of them) cannot be divided (near-identical vectors: every
  // child centroid but one would be empty): proposing its split again would only repeat.
  void MarkUnsplittable(uint32_t shard_id, size_t chunks) { unsplittable_[shard_id] = chunks; }
  // The chunks of shard `shard_id`, SIZE_MAX when this set has no such shard.
  size_t ChunksOf(uint32_t shard_id) const { return Holds(shard_id) ? shards_[index_of_[shard_id]]->chunks : SIZE_MAX; }
  // A shard the layout has split whose split is not built yet, or SIZE_MAX.
  size_t PendingSplit() const;
  // The graph of the shard at `index`, whose vectors a split proposal clusters (the graph
  // locks itself: held, it needs no lock).
  std::shared_ptr<const HnswIndex> graph(size_t index) const { return shards_[index]->graph; }
  // The vectors of `slots` in `graph`, packed in order; slots the graph no longer holds
  // (deleted since they were listed) are dropped from *slots. Reads only the graph, which
  // locks itself: no lock needed.
  static std::vector<float> VectorsOf(const HnswIndex& graph, std::vector<uint32_t>* slots);
  uint32_t shard_id(size_t index) const { return shards_[index]->id; }
  size_t shard_chunks(size_t index) const { return shards_[index]->chunks; }
  // REQUIRES: PendingSplit() named `index`.
  void BeginSplit(size_t index, SplitJob* job);
  // False when `stop` turned true.
  bool BuildSplit(SplitJob* job, const std::atomic<bool>& stop) const;
  // The split-log entries after job->replayed; empty when fewer than `min` are pending.
  std::vector<SplitOp> CatchUp(const SplitJob& job, size_t min) const;
  void Replay(SplitJob* job, const std::vector<SplitOp>& ops) const;
  void FinishSplit(SplitJob* job);
  void AbandonSplit(SplitJob* job);

 private:
  static constexpr uint32_t kNoShard = UINT32_MAX;
  struct Shard {
    uint32_t id = 0;  // stable across splits of other shards, for reports
    std::vector<float> centroid;
    std::shared_ptr<HnswIndex> graph;
    size_t chunks = 0;
    bool splitting = false;  // writes are also logged to split_log_
    mutable std::atomic<uint64_t> probes{0};
  };
  // Calls fn(shard, links) for each shard not splitting, with Links()'s answer for it, until
  // fn returns false: what UpdateLinking() applies and LinkingDue() only asks about.
  template <class Fn>
  void ForEachLinkingDecision(Fn fn) const;
  // One that k-means could not divide (MarkUnsplittable) is tried again only once it grew
  // by half.
  bool HeldUnsplittable(uint32_t shard_id, size_t chunks) const {
    auto it = unsplittable_.find(shard_id);
    return it != unsplittable_.end() && chunks < it->second + it->second / 2;
  }
  // Over the limit, and not so far over it that no split is coming (see AwaitsSplit()).
  bool SplitsAgain(size_t chunks) const {
    const size_t limit = options_.max_shard_chunks;
    return chunks > limit && chunks / 4 < std::max(limit, kGraphMinChunks);
  }
  std::shared_ptr<HnswIndex> NewGraph(bool linked) const;
  // The router's pick over the centroids (indexes into shards_), counted in the routing
  // stats: the shared first step of Search and Route. REQUIRES: two shards or more.
  RouteDecision Decide(const float* query, const ShardingOptions* routing) const;
  // The physical shard (index into shards_) a vector goes in.
  uint32_t IndexFor(const float* vector) const;
  void SetShards(std::vector<std::shared_ptr<Shard>> shards);
  std::vector<ScoredSlot> SearchShard(const Shard& shard, const float* query, size_t k, size_t ef,
                                      const SlotBitset* allowed) const;
  // Each shard's hits, by position in `indexes`; graph walks of big shards run in parallel.
  std::vector<std::vector<ScoredSlot>> SearchShards(const std::vector<uint32_t>& indexes, const float* query, size_t k,
                                                    size_t ef, const SlotBitset* allowed) const;

  const Metric metric_;
  const size_t dim_;
  const ShardingOptions options_;
  const HnswParams params_;
  ShardLayout layout_;
  std::vector<std::shared_ptr<Shard>> shards_;
  std::vector<uint32_t> index_of_;                     // by shard id: index into shards_, kNoShard when none
  std::vector<float> centroids_;                       // shards_.size() * dim, for routing
  std::vector<uint32_t> shard_of_;                     // by slot: index into shards_, kNoShard when free
  std::unordered_map<uint32_t, size_t> unsplittable_;  // shard id -> its size when marked
  // Writes to a shard being split, replayed into its two halves before they replace it.
  std::vector<SplitOp> split_log_;
  IndexedFn indexed_;
  mutable std::atomic<uint64_t> routed_queries_{0}, confident_routes_{0}, shards_probed_{0}, widened_routes_{0};
};

// The terms most distinctive of each group of texts against all of them (up to `n` per
// group), ranked by p_group * log(p_group / p_all) over the share of each group's texts
// that contain a term: a shard's topic, in words.
std::vector<std::vector<std::string>> DistinctiveTerms(const std::vector<std::vector<std::string>>& texts,
                                                       const Analyzer& analyzer, size_t n);

}  // namespace contextd
