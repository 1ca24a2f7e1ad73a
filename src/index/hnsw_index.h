// HnswIndex: a hierarchical navigable small world graph (Malkov & Yashunin, 2018) for
// approximate nearest-neighbour search.
//
// Layout follows what makes HNSW fast on a CPU: each node's level-0 neighbour list and
// its vector sit together in one fixed-size record, so expanding a node touches one or
// two cache lines; upper levels (a few percent of nodes) live in separate small lists.
// Labels are the caller's slot numbers; nodes have their own dense internal ids, so a
// label can be deleted and added again (slot reuse) while its old node keeps routing.
//
// Concurrency: any number of Add() and Search() calls may run at once. A writer holds a
// per-node spin lock while it rewrites that node's neighbour list; readers take no locks
// and read neighbour ids with acquire loads, so a reader may see a list mid-update
// (old and new ids mixed), which only perturbs its path, never its safety. Growing the
// capacity takes an exclusive lock; Reserve() up front avoids it.
//
// Deletes are tombstones: a deleted node still routes searches but is never returned.
// RepairDeleted() later unlinks them, reconnects their neighbours and recycles their ids.
//
// Links can be deferred (SetLinking(false)): Add() then only stores the vector, which is
// cheap, and LinkPending() links the stored nodes later. A cluster node keeps the vectors
// of shards another node indexes (splits and placement read them) without paying for their
// graphs. While any node is unlinked, searches score every point exactly, so an answer is
// never missing a stored vector.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "index/distance.h"
#include "index/mapped_buffer.h"
#include "index/search_types.h"
#include "index/slot_bitset.h"

namespace contextd {

struct HnswParams {
  int M = 16;                 // neighbours per node on upper levels; 2M on level 0
  int ef_construction = 200;  // candidate list size while inserting
  uint64_t seed = 42;         // level assignment
  // Level-0 search walks int8 codes (a quarter of the bytes per node visited) and rescores
  // its final candidates with the fp32 vectors; construction always uses fp32.
  bool int8 = false;
  // SearchFiltered() scores up to this many matches exactly rather than walk the graph
  // (about a millisecond's work; see SearchFiltered()).
  size_t filter_exact_matches = 10000;
  // int8 mode: the fp32 vectors (read to build and to rescore) go in an unnamed file in this
  // directory, memory-mapped, so only the codes and links need to stay resident; empty
  // keeps them in RAM.
  std::string vector_dir = "";
};

class HnswIndex {
 public:
  HnswIndex(int dim, Metric metric, HnswParams params = {});
  ~HnswIndex();

  // Makes room for `capacity` nodes so that Add() never has to grow.
  void Reserve(size_t capacity);
  // Inserts `vector` (dim floats) under `label`, replacing (tombstoning) any live node
  // that had the label.
  void Add(uint32_t label, const float* vector);
  // Tombstones a label; later searches skip it.
  void MarkDeleted(uint32_t label);
  // Whether Add() links new nodes into the graph (the default) or only stores them.
  void SetLinking(bool link) { link_adds_.store(link, std::memory_order_relaxed); }
  bool linking() const { return link_adds_.load(std::memory_order_relaxed); }
  // Nodes stored and not linked (tombstones among them); searches are exact while any is.
  size_t unlinked() const { return unlinked_count_.load(std::memory_order_acquire); }
  // Links the nodes Add() stored without links (RepairDeleted() drops the deleted ones
  // among them), on the calling thread, until done or `stop`; those left stay pending.
  // Returns how many it linked. Adds and searches go on meanwhile; searches stay exact
  // until the last is linked. Call SetLinking(true) first, or nodes added meanwhile are
  // left for the next call.
  size_t LinkPending(const std::atomic<bool>& stop);
  // Removes the tombstones from the graph and recycles their ids for later inserts: every
  // live node that links to a tombstone drops the link and refills its list from the
  // tombstones' own live neighbours (closest first, under the selection heuristic), so the
  // paths that ran through deleted nodes survive them and recall does not decay under
  // churn. Returns how many nodes were removed. Writers wait while it runs; searches do
  // not, until a final brief pause that lets searches already holding a removed id finish.
  size_t RepairDeleted();
  size_t deleted_count() const { return deleted_.load(std::memory_order_relaxed); }
  bool Contains(uint32_t label) const;
  // Copies the fp32 vector stored under `label` into out (dim floats); false when the
  // label is not live. For re-ranking (MMR) over search results.
  bool CopyVector(uint32_t label, float* out) const;

  // Up to k hits, best first, scored like FlatIndex (higher is better). ef: size of the
  // dynamic candidate list (raised to k when smaller); larger is slower and more exact.
  std::vector<ScoredSlot> Search(const float* query, size_t k, size_t ef, const SlotFilter& filter) const;
  // Search restricted to the labels in `allowed`, choosing how by its size: an exact scan
  // of the matches when they are under kExactFraction of the points or few enough to score
  // in about a millisecond (HnswParams::filter_exact_matches), a walk that looks through non-matching nodes
  // (ACORN-1) under kTwoHopFraction, and a plain filtered walk above it, where non-matches
  // are dense enough to route through; an exact scan again if a walk comes back short.
  // Crossovers measured on GloVe-100 (BENCHMARKS.md).
  std::vector<ScoredSlot> SearchFiltered(const float* query, size_t k, size_t ef, const SlotBitset& allowed) const;
  // Exact: scores every live point (or every live label in `allowed`) with fp32 vectors.
  std::vector<ScoredSlot> ExactSearch(const float* query, size_t k, const SlotBitset* allowed = nullptr) const;

  static constexpr double kExactFraction = 0.02;
  static constexpr double kTwoHopFraction = 0.15;
  // int8 mode rescores this many times k of the best candidates with fp32 vectors.
  static constexpr size_t kRescoreFactor = 4;

  size_t size() const { return count_.load(std::memory_order_relaxed) - deleted_.load(std::memory_order_relaxed); }
  // Nodes in the graph, tombstones included.
  size_t node_count() const { return count_.load(std::memory_order_relaxed); }
  // Bytes in RAM; the file-backed fp32 vectors of an int8 index are mapped_bytes().
  size_t memory_bytes() const;
  size_t mapped_bytes() const;
  int dim() const { return dim_; }

  // Writes the graph to `path` (via a temporary file, fsynced, then renamed) with a
  // caller's `tag` (the store's sequence number the graph reflects) and a checksum.
  // Unlinked nodes are saved as such. FailedPrecondition while LinkPending() runs.
  // REQUIRES: no concurrent Add() or MarkDeleted().
  Status Save(const std::string& path, uint64_t tag) const;
  // Reads a graph written by Save(). Fails (never returns a wrong graph) when the file is
  // missing, truncated, corrupt, or was built with other dim/metric/M/quantization.
  static StatusOr<std::unique_ptr<HnswIndex>> Load(const std::string& path, int dim, Metric metric, HnswParams params,
                                                   uint64_t* tag);

 private:
  struct Candidate {
    float dist;
    uint32_t id;
    bool operator<(const Candidate& o) const { return dist < o.dist; }
    bool operator>(const Candidate& o) const { return dist > o.dist; }
  };

  // The level-0 search behind Search() and SearchFiltered(); accept(label) says which
  // labels may be returned. two_hop: look through rejected nodes instead of routing via them.
  template <typename Accept>
  std::vector<ScoredSlot> Walk(const float* query, size_t k, size_t ef, const Accept& accept, bool two_hop) const;
  // The k nearest of *candidates (reordered) as hits; ties go to the lower label.
  std::vector<ScoredSlot> TopHits(std::vector<Candidate>* candidates, size_t k) const;
  // Scores (higher is better) and labels of candidates sorted by distance.
  std::vector<ScoredSlot> ToHits(const std::vector<Candidate>& sorted) const;
  float Distance(const float* a, const float* b) const;
  // Distance(q, rows[i]) for i < n, in one batched kernel call.
  void Distances(const float* q, const float* const* rows, size_t n, float* out) const;
  uint32_t* Links0(uint32_t id) const;  // [count, ids...]
  float* VectorOf(uint32_t id) const;
  // int8 mode: the record after the links holds codes (code_stride_), scale, |v|^2.
  const int8_t* CodesOf(uint32_t id) const;
  float ScaleOf(uint32_t id) const;
  float SqNormOf(uint32_t id) const;
  uint32_t* Links(uint32_t id, int level) const;
  int RandomLevel();
  // Resizes the arrays to `capacity` nodes, keeping those below it. REQUIRES: grow_mu_
  // held exclusively, and no node at or above a smaller capacity.
  void ResizeLocked(size_t capacity);
  // After a repair: gives back the capacity past the highest node when the graph is under a
  // quarter full. REQUIRES: write_mu_ and grow_mu_ held exclusively.
  void TrimFreeTailLocked();
  // Greedy best-first search on one level; returns up to ef candidates (unordered).
  std::vector<Candidate> SearchLayer(const float* q, uint32_t entry, size_t ef, int level) const;
  // The HNSW neighbour-selection heuristic: keeps candidates not closer to an already
  // kept neighbour than to the base node, up to m.
  void SelectNeighbors(std::vector<Candidate>* candidates, size_t m) const;
  // Writes node id's own list at `level`: the heuristic's pick of *candidates (left there).
  void SetOwnLinks(uint32_t id, int level, std::vector<Candidate>* candidates);
  // Adds id to each neighbour's list at `level`, re-selecting a list that is full.
  void LinkBack(uint32_t id, int level, const std::vector<Candidate>& neighbours);
  // Links stored node `id` (its vector, level and upper lists in place) into the graph.
  // REQUIRES: write_mu_ and grow_mu_ held shared.
  void LinkNode(uint32_t id, int level);
  // The k best live points whose labels `accept` takes, scored exactly.
  template <typename Accept>
  std::vector<ScoredSlot> ExactScan(const float* query, size_t k, const Accept& accept) const;
  // Greedy walk through levels from_level..to_level+1 towards q, from *cur.
  void Descend(const float* q, int from_level, int to_level, uint32_t* cur, float* cur_dist) const;
  // Makes `label` name node `id` (after the node is linked in).
  void Publish(uint32_t label, uint32_t id);
  // RepairDeleted() for one live node's list at one level. dead: by id, nonzero if removed.
  void RepairList(uint32_t id, int level, const std::vector<uint8_t>& dead);
  uint32_t AllocateId();
  void MarkDeletedLocked(uint32_t label);  // REQUIRES: write_mu_ held

  const int dim_;
  const Metric metric_;
  const HnswParams params_;
  const size_t max_m0_;        // level-0 list size: 2M
  const size_t code_stride_;   // dim rounded up to 16 (int8 kernels take whole blocks)
  const size_t record_bytes_;  // level-0 record: (1 + 2M) u32, then dim floats or int8 codes
  const double level_mult_;

  // grow_mu_ and write_mu_ stay std::shared_mutex, outside the thread-safety analysis: what
  // they guard (the arrays below) is read on every step of a graph walk, by helpers that
  // would all need REQUIRES_SHARED, and the per-node spin locks (locks_) that order the
  // link updates are beyond what the analysis models. The comments give the rules.
  mutable std::shared_mutex grow_mu_;  // shared by Add/Search; exclusive to grow
  std::shared_mutex write_mu_;         // shared by Add/MarkDeleted; exclusive to RepairDeleted
  Mutex free_mu_;
  std::vector<uint32_t> free_ids_ GUARDED_BY(free_mu_);  // removed by RepairDeleted, reusable
  // State below is sized by capacity_ and replaced only under grow_mu_ held exclusively.
  size_t capacity_ = 0;
  std::unique_ptr<char[]> records_;
  std::unique_ptr<MappedBuffer> full_;              // int8 mode: fp32 vectors by id, for building and rescoring
  std::vector<std::unique_ptr<uint32_t[]>> upper_;  // by id: levels 1..L, each [count, M ids]
  std::unique_ptr<std::atomic<int8_t>[]> levels_;   // -1: absent
  std::unique_ptr<std::atomic<uint8_t>[]> deleted_flags_;
  std::unique_ptr<std::atomic_flag[]> locks_;
  std::unique_ptr<uint32_t[]> labels_;  // by internal id

  mutable Mutex label_mu_;
  std::vector<uint32_t> internal_of_ GUARDED_BY(label_mu_);  // by label; kNone when absent
  static constexpr uint32_t kNone = UINT32_MAX;
  std::atomic<uint32_t> next_id_{0};

  mutable Mutex entry_mu_;  // serialises entry point changes
  std::atomic<int64_t> entry_{-1};
  std::atomic<int> max_level_{-1};
  std::atomic<size_t> count_{0};
  std::atomic<size_t> deleted_{0};
  std::atomic<size_t> upper_bytes_{0};  // upper-level link lists, for memory_bytes()
  std::atomic<bool> link_adds_{true};
  mutable Mutex unlinked_mu_;
  std::vector<uint32_t> unlinked_ids_ GUARDED_BY(unlinked_mu_);  // stored, not yet linked
  // unlinked_ids_ plus the nodes LinkPending() took and has not linked yet.
  std::atomic<size_t> unlinked_count_{0};
  Mutex rng_mu_;
  uint64_t rng_state_ GUARDED_BY(rng_mu_);
};

}  // namespace contextd
