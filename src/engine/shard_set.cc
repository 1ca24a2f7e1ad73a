// See shard_set.h. A split is built from a snapshot: with the collection's lock held alone (no
// write half-applied) the shard is marked `splitting` and its members listed; from then on
// every write that touches the shard is also appended to split_log_. The children are
// built from the snapshot with no lock held, while searches keep using the old graph, which
// writers keep current. The log is then replayed into the children, most of it without
// blocking anyone and the last few entries with the lock held alone, and the children
// replace the old shard in one step.
#include "engine/shard_set.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/cores.h"
#include "common/thread_pool.h"

namespace contextd {
namespace {

// A graph not wholly linked here: some of its chunks are stored without links (partial
// indexing), so searching it here scans exactly.
bool StoredOnly(const HnswIndex& graph) { return !graph.linking() || graph.unlinked() > 0; }

std::string ShardGraphPath(const std::string& base, size_t index) {
  return index == 0 ? base : base + "." + std::to_string(index);
}

// Adds rows[i] under labels[i] to graphs[assignment[i]] on every core.
void BuildGraphs(const std::vector<std::shared_ptr<HnswIndex>>& graphs, const float* rows, size_t dim,
                 const std::vector<uint32_t>& labels, const std::vector<uint32_t>& assignment,
                 const std::atomic<bool>& stop) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> builders;
  const unsigned threads = static_cast<unsigned>(UsableCores());
  for (unsigned t = 0; t < threads; ++t) {
    builders.emplace_back([&] {
      for (size_t i = next++; i < labels.size() && !stop; i = next++) {
        graphs[assignment[i]]->Add(labels[i], rows + i * dim);
      }
    });
  }
  for (auto& b : builders) b.join();
}

HnswParams ParamsFor(const CollectionConfig& config, std::string vector_dir) {
  HnswParams params{config.hnsw_m, config.hnsw_ef_construction, 42, config.int8};
  params.vector_dir = std::move(vector_dir);
  return params;
}

}  // namespace

ShardSet::ShardSet(const CollectionConfig& config, std::string vector_dir)
    : metric_(config.metric),
      dim_(static_cast<size_t>(config.dim)),
      options_(config.sharding),
      params_(ParamsFor(config, std::move(vector_dir))),
      layout_(metric_, static_cast<uint32_t>(dim_)) {
  auto shard = std::make_shared<Shard>();
  shard->id = ShardLayout::kRoot;
  shard->centroid.assign(dim_, 0.0f);
  shard->graph = NewGraph(false);  // linked once it holds kGraphMinChunks (Links())
  SetShards({std::move(shard)});
}

std::shared_ptr<HnswIndex> ShardSet::NewGraph(bool linked) const {
  auto graph = std::make_shared<HnswIndex>(static_cast<int>(dim_), metric_, params_);
  graph->SetLinking(linked);
  return graph;
}

template <class Fn>
void ShardSet::ForEachLinkingDecision(Fn fn) const {
  for (const auto& shard : shards_) {
    if (shard->splitting) continue;  // its children's linking was decided when it began
    if (!fn(*shard, Links(shard->id, shard->chunks))) return;
  }
}

std::vector<std::shared_ptr<HnswIndex>> ShardSet::UpdateLinking() const {
  std::vector<std::shared_ptr<HnswIndex>> due;
  ForEachLinkingDecision([&](const Shard& shard, bool link) {
    shard.graph->SetLinking(link);
    if (link && shard.graph->unlinked() > 0) due.push_back(shard.graph);
    return true;
  });
  return due;
}

std::vector<uint32_t> ShardSet::UnlinkedGraphShards() const {
  std::vector<uint32_t> out;
  for (const auto& shard : shards_) {
    if (shard->graph->size() >= kGraphMinChunks && StoredOnly(*shard->graph)) out.push_back(shard->id);
  }
  return out;
}

bool ShardSet::LinkingDue() const {
  bool due = false;
  ForEachLinkingDecision([&](const Shard& shard, bool link) {
    due = link != shard.graph->linking() || (link && shard.graph->unlinked() > 0);
    return !due;
  });
  return due;
}

void ShardSet::SetShards(std::vector<std::shared_ptr<Shard>> shards) {
  shards_ = std::move(shards);
  centroids_.resize(shards_.size() * dim_);
  index_of_.assign(layout_.shard_count(), kNoShard);
  for (size_t i = 0; i < shards_.size(); ++i) {
    std::copy_n(shards_[i]->centroid.data(), dim_, &centroids_[i * dim_]);
    index_of_[shards_[i]->id] = static_cast<uint32_t>(i);
  }
}

uint32_t ShardSet::IndexFor(const float* vector) const {
  // Down the layout from its root to the first shard that exists here: the physical shards
  // always cover the layout (a split's children replace their parent only once built).
  uint32_t id = ShardLayout::kRoot;
  while (!Holds(id)) {
    const uint32_t next = layout_.Step(id, vector);
    if (next == id) return 0;  // unreachable while the invariant holds; never crash on it
    id = next;
  }
  return index_of_[id];
}

std::shared_ptr<HnswIndex> ShardSet::Place(uint32_t slot, const float* vector) {
  const uint32_t index = IndexFor(vector);
  Shard& shard = *shards_[index];
  if (shard_of_.size() <= slot) shard_of_.resize(slot + 1, kNoShard);
  shard_of_[slot] = index;
  // At the size where it is searched through its graph, the shard's chunks are linked from
  // here on (this write's too); the ones stored before, on the splitter thread (LinkingDue()).
  if (++shard.chunks == kGraphMinChunks && Links(shard.id, shard.chunks)) shard.graph->SetLinking(true);
  if (shard.splitting) split_log_.push_back({true, slot, std::vector<float>(vector, vector + dim_)});
  return shard.graph;
}

void ShardSet::Remove(uint32_t slot) {
  if (slot >= shard_of_.size() || shard_of_[slot] == kNoShard) return;
  Shard& shard = *shards_[shard_of_[slot]];
  shard.graph->MarkDeleted(slot);
  --shard.chunks;
  if (shard.splitting) split_log_.push_back({false, slot, {}});
  shard_of_[slot] = kNoShard;
}

bool ShardSet::CopyVector(uint32_t slot, float* out) const {
  if (slot >= shard_of_.size() || shard_of_[slot] == kNoShard) return false;
  return shards_[shard_of_[slot]]->graph->CopyVector(slot, out);
}

bool ShardSet::uses_graph() const {
  for (const auto& shard : shards_) {
    if (shard->graph->size() >= kGraphMinChunks) return true;
  }
  return false;
}

size_t ShardSet::graph_nodes() const {
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->graph->node_count();
  return n;
}

size_t ShardSet::graph_tombstones() const {
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->graph->deleted_count();
  return n;
}

size_t ShardSet::memory_bytes() const {
  size_t n = shard_of_.capacity() * sizeof(uint32_t);
  for (const auto& shard : shards_) n += shard->graph->memory_bytes();
  return n;
}

size_t ShardSet::mapped_bytes() const {
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->graph->mapped_bytes();
  return n;
}

bool ShardSet::Members(uint32_t shard_id, std::vector<uint32_t>* slots) const {
  if (!Holds(shard_id)) return false;
  const uint32_t i = index_of_[shard_id];
  slots->clear();
  for (uint32_t s = 0; s < shard_of_.size(); ++s) {
    if (shard_of_[s] == i) slots->push_back(s);
  }
  return true;
}

std::vector<std::shared_ptr<HnswIndex>> ShardSet::RepairDue() const {
  // Tombstones cost memory and search time, and the graph's paths through them age; once
  // they are a tenth of the graph, it is worth reconnecting around them.
  std::vector<std::shared_ptr<HnswIndex>> due;
  for (const auto& shard : shards_) {
    const size_t dead = shard->graph->deleted_count();
    if (!shard->splitting && dead >= kRepairMinTombstones && dead * 10 >= shard->graph->node_count())
      due.push_back(shard->graph);
  }
  return due;
}

std::vector<ScoredSlot> ShardSet::SearchShard(const Shard& shard, const float* query, size_t k, size_t ef,
                                              const SlotBitset* allowed) const {
  const HnswIndex& graph = *shard.graph;
  shard.probes.fetch_add(1, std::memory_order_relaxed);
  if (graph.size() < kGraphMinChunks) return graph.ExactSearch(query, k, allowed);
  if (ef == 0) ef = std::max<size_t>(64, 2 * k);
  if (allowed != nullptr) return graph.SearchFiltered(query, k, ef, *allowed);
  return graph.Search(query, k, ef, nullptr);
}

std::vector<std::vector<ScoredSlot>> ShardSet::SearchShards(const std::vector<uint32_t>& indexes, const float* query,
                                                            size_t k, size_t ef, const SlotBitset* allowed) const {
  std::vector<std::vector<ScoredSlot>> results(indexes.size());
  size_t walks = 0;
  for (uint32_t i : indexes) walks += shards_[i]->graph->size() >= kGraphMinChunks;
  if (walks < 2) {
    for (size_t j = 0; j < indexes.size(); ++j) results[j] = SearchShard(*shards_[indexes[j]], query, k, ef, allowed);
    return results;
  }
  // Two graph walks or more: in parallel, the calling thread taking the first shard. The
  // tasks only read state the caller's shared lock keeps still, and never wait on
  // anything, so the pool cannot deadlock.
  static ThreadPool pool(static_cast<size_t>(std::max(2, UsableCores())), "ctx-shards");
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = indexes.size() - 1;
  for (size_t j = 1; j < indexes.size(); ++j) {
    pool.Submit([&, j] {
      std::vector<ScoredSlot> hits = SearchShard(*shards_[indexes[j]], query, k, ef, allowed);
      std::lock_guard<std::mutex> lock(mu);
      results[j] = std::move(hits);
      if (--pending == 0) cv.notify_one();
    });
  }
  results[0] = SearchShard(*shards_[indexes[0]], query, k, ef, allowed);
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return pending == 0; });
  return results;
}

std::vector<ScoredSlot> ShardSet::Search(const float* query, size_t k, size_t ef, const SlotBitset* allowed,
                                         bool all_shards, const ShardingOptions* routing,
                                         QueryResult::Route* route) const {
  const size_t n = shards_.size();
  if (n == 1) {
    if (route != nullptr) route->shards = {shards_[0]->id};
    return SearchShard(*shards_[0], query, k, ef, allowed);
  }
  QueryResult::Route local;
  QueryResult::Route& r = route != nullptr ? *route : local;
  r.shard_count = n;
  std::vector<uint32_t> probe;
  if (all_shards) {
    for (uint32_t i = 0; i < n; ++i) probe.push_back(i);
    r.confident = false;
  } else {
    RouteDecision d = Decide(query, routing);
    probe = std::move(d.shards);
    r.margin = d.margin;
    r.confident = d.confident;
  }
  // Scores from different shards are the same metric on the same vectors: merge by score.
  TopK top(k);
  std::vector<bool> searched(n, false);
  auto search = [&](const std::vector<uint32_t>& indexes) {
    for (uint32_t i : indexes) {
      searched[i] = true;
      r.shards.push_back(shards_[i]->id);
    }
    for (const auto& hits : SearchShards(indexes, query, k, ef, allowed)) {
      for (const auto& hit : hits) top.Push(hit.score, hit.slot);
    }
  };
  search(probe);
  // Too few results (a filter whose matches live elsewhere, or small shards): the other
  // shards too, rather than answer short.
  if (!all_shards && !top.Full()) {
    r.widened = true;
    widened_routes_.fetch_add(1, std::memory_order_relaxed);
    std::vector<uint32_t> rest;
    for (uint32_t i = 0; i < n; ++i) {
      if (!searched[i]) rest.push_back(i);
    }
    search(rest);
  }
  if (!all_shards) shards_probed_.fetch_add(r.shards.size(), std::memory_order_relaxed);
  return top.Take();
}

RouteDecision ShardSet::Decide(const float* query, const ShardingOptions* routing) const {
  std::vector<float> scores(shards_.size());
  ScoreCentroids(metric_, query, centroids_.data(), shards_.size(), dim_, scores.data());
  RouteDecision d = RouteShards(scores, routing != nullptr ? *routing : options_);
  routed_queries_.fetch_add(1, std::memory_order_relaxed);
  if (d.confident) confident_routes_.fetch_add(1, std::memory_order_relaxed);
  return d;
}

QueryResult::Route ShardSet::Route(const float* query, const ShardingOptions* routing) const {
  QueryResult::Route r;
  const size_t n = shards_.size();
  r.shard_count = n;
  if (n == 1) {
    r.shards = {shards_[0]->id};
    return r;
  }
  const RouteDecision d = Decide(query, routing);
  for (uint32_t i : d.shards) r.shards.push_back(shards_[i]->id);
  r.margin = d.margin;
  r.confident = d.confident;
  shards_probed_.fetch_add(r.shards.size(), std::memory_order_relaxed);
  return r;
}

StatusOr<std::vector<ScoredSlot>> ShardSet::SearchIn(const std::vector<uint32_t>& shard_ids, const float* query,
                                                     size_t k, size_t ef, const SlotBitset* allowed) const {
  std::vector<uint32_t> indexes;
  for (uint32_t id : shard_ids) {
    if (!Holds(id)) return NotFound("shard " + std::to_string(id) + " is not held here");
    indexes.push_back(index_of_[id]);
  }
  TopK top(k);
  for (const auto& hits : SearchShards(indexes, query, k, ef, allowed)) {
    for (const auto& hit : hits) top.Push(hit.score, hit.slot);
  }
  return top.Take();
}

StatusOr<std::vector<uint32_t>> ShardSet::Resolve(const std::vector<uint32_t>& shard_ids) const {
  std::vector<uint32_t> out;
  for (uint32_t id : shard_ids) {
    if (Holds(id)) {
      out.push_back(id);
      continue;
    }
    if (!layout_.contains(id)) return NotFound("shard " + std::to_string(id) + " is not held here");
    std::vector<uint32_t> below = layout_.children(id), found;
    while (!below.empty()) {  // split here already: the held shards under it
      const uint32_t next = below.back();
      below.pop_back();
      if (Holds(next)) {
        found.push_back(next);
      } else {
        below.insert(below.end(), layout_.children(next).begin(), layout_.children(next).end());
      }
    }
    if (found.empty()) {  // its split not built here yet: the shard above still holds it
      for (uint32_t up = id; up != ShardLayout::kRoot && found.empty();) {
        up = layout_.parent(up);
        if (Holds(up)) found.push_back(up);
      }
    }
    if (found.empty()) return NotFound("shard " + std::to_string(id) + " is not held here");
    out.insert(out.end(), found.begin(), found.end());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

SlotBitset ShardSet::MembersOf(const std::vector<uint32_t>& shard_ids, size_t universe) const {
  std::vector<bool> wanted(shards_.size(), false);
  for (uint32_t id : shard_ids) {
    if (Holds(id)) wanted[index_of_[id]] = true;
  }
  SlotBitset out(universe);
  for (uint32_t s = 0; s < shard_of_.size() && s < universe; ++s) {
    if (shard_of_[s] != kNoShard && wanted[shard_of_[s]]) out.Set(s);
  }
  return out;
}

std::vector<float> ShardSet::VectorsOf(const HnswIndex& graph, std::vector<uint32_t>* slots) {
  const size_t dim = static_cast<size_t>(graph.dim());
  std::vector<float> rows(slots->size() * dim);
  size_t kept = 0;
  for (uint32_t s : *slots) {
    if (graph.CopyVector(s, &rows[kept * dim])) (*slots)[kept++] = s;
  }
  slots->resize(kept);
  rows.resize(kept * dim);
  return rows;
}

std::vector<uint32_t> ShardSet::shard_ids() const {
  std::vector<uint32_t> out;
  for (const auto& shard : shards_) out.push_back(shard->id);
  return out;
}

Status ShardSet::Load(const std::string& graph_path, uint64_t store_sequence, ShardLayout layout,
                      const std::vector<uint32_t>& labels, std::vector<float>* vectors, const std::atomic<bool>& stop,
                      std::string* source) {
  layout_ = std::move(layout);
  const std::vector<uint32_t> leaves = layout_.leaves();
  std::vector<uint32_t> position(layout_.shard_count(), 0);
  for (uint32_t i = 0; i < leaves.size(); ++i) position[leaves[i]] = i;
  const size_t n = labels.size();
  // Every chunk's shard, as the layout decides it.
  std::vector<uint32_t> assignment(n, 0);
  for (size_t i = 0; i < n; ++i) assignment[i] = position[layout_.Leaf(vectors->data() + i * dim_)];
  std::vector<std::shared_ptr<HnswIndex>> graphs;
  *source = "rebuilt";
  // Graphs saved at this very store state, holding exactly these chunks in these shards,
  // save the rebuild.
  if (!graph_path.empty()) {
    std::string why;
    for (size_t i = 0;; ++i) {
      uint64_t tag = 0;
      auto saved = HnswIndex::Load(ShardGraphPath(graph_path, i), static_cast<int>(dim_), metric_, params_, &tag);
      if (!saved.ok()) {
        if (i == 0 || saved.status().code() != StatusCode::kNotFound) why = saved.status().message();
        if (i == 0 && saved.status().code() == StatusCode::kNotFound) why = "none";
        break;
      }
      if (tag != store_sequence) {
        why = "written at another store state";
        break;
      }
      graphs.push_back(std::shared_ptr<HnswIndex>(std::move(saved).value()));
    }
    if (why.empty() && graphs.size() != leaves.size()) why = "saved for another shard layout";
    size_t total = 0;
    for (const auto& g : graphs) total += g->size();
    if (why.empty() && total != n) why = "its chunks differ from the store's";
    for (size_t i = 0; why.empty() && i < n; ++i) {
      if (!graphs[assignment[i]]->Contains(labels[i])) why = "its chunks differ from the store's";
    }
    if (why.empty()) {
      *source = "loaded";
    } else {
      if (why != "none") spdlog::warn("saved graphs {} not used ({}); rebuilding", graph_path, why);
      graphs.clear();
    }
  }
  const bool rebuild = graphs.empty();
  if (rebuild) {
    for (size_t i = 0; i < leaves.size(); ++i) graphs.push_back(NewGraph(false));
  }
  std::vector<size_t> counts(leaves.size(), 0);
  for (uint32_t a : assignment) ++counts[a];
  std::vector<std::shared_ptr<Shard>> shards;
  for (size_t i = 0; i < leaves.size(); ++i) {
    auto shard = std::make_shared<Shard>();
    shard->id = leaves[i];
    shard->centroid.assign(layout_.centroid(leaves[i]), layout_.centroid(leaves[i]) + dim_);
    shard->graph = graphs[i];
    shard->graph->SetLinking(Links(leaves[i], counts[i]));  // loaded or rebuilt below alike
    shard->chunks = counts[i];
    if (rebuild) shard->graph->Reserve(counts[i]);
    shards.push_back(std::move(shard));
  }
  SetShards(std::move(shards));
  shard_of_.assign(labels.empty() ? 0 : labels.back() + 1, kNoShard);
  for (size_t i = 0; i < n; ++i) shard_of_[labels[i]] = assignment[i];
  if (rebuild) BuildGraphs(graphs, vectors->data(), dim_, labels, assignment, stop);
  return Status::Ok();
}

Status ShardSet::Save(const std::string& path, uint64_t store_sequence) const {
  for (size_t i = 0; i < shards_.size(); ++i) {
    CTX_RETURN_IF_ERROR(shards_[i]->graph->Save(ShardGraphPath(path, i), store_sequence));
  }
  // Files of shards that no longer exist would fail the next Load()'s count check anyway;
  // removing them keeps the directory honest.
  std::error_code ec;
  for (size_t i = shards_.size(); std::filesystem::remove(ShardGraphPath(path, i), ec); ++i) {
  }
  return Status::Ok();
}

ShardsReport ShardSet::Report(size_t per_shard, std::vector<std::vector<uint32_t>>* samples) const {
  ShardsReport out;
  samples->assign(shards_.size(), {});
  std::vector<size_t> seen(shards_.size(), 0);
  for (uint32_t s = 0; s < shard_of_.size(); ++s) {
    const uint32_t i = shard_of_[s];
    if (i == kNoShard) continue;
    // Reservoir-free thinning: every (chunks / per_shard)-th member.
    const size_t stride = std::max<size_t>(1, shards_[i]->chunks / std::max<size_t>(per_shard, 1));
    if (seen[i]++ % stride == 0 && (*samples)[i].size() < per_shard) (*samples)[i].push_back(s);
  }
  for (const auto& shard : shards_) {
    ShardsReport::Shard r;
    r.id = shard->id;
    r.chunks = shard->chunks;
    // "stored": this node keeps the vectors only (partial indexing; its holders search it);
    // "flat": scanned exactly (too small for a graph); "linking": a graph being linked here
    // (scanned exactly until it is).
    if (!Indexed(shard->id)) {
      r.index = "stored";
    } else if (shard->graph->size() < kGraphMinChunks) {
      r.index = "flat";
    } else {
      r.index = StoredOnly(*shard->graph) ? "linking" : "hnsw";
    }
    r.probes = shard->probes.load();
    r.splitting = shard->splitting || !layout_.is_leaf(shard->id);  // being built, or about to be
    out.shards.push_back(std::move(r));
  }
  const uint64_t routed = routed_queries_.load();
  out.queries = routed;
  out.single_shard = confident_routes_.load();
  out.widened = widened_routes_.load();
  out.mean_shards_probed = routed == 0 ? 0.0 : static_cast<double>(shards_probed_.load()) / routed;
  out.options = options_;
  return out;
}

bool ShardSet::AwaitsSplit(uint32_t shard_id, size_t chunks) const {
  if (!layout_.is_leaf(shard_id)) return true;  // split: its children are being built
  return SplitsAgain(chunks) && !HeldUnsplittable(shard_id, chunks);
}

size_t ShardSet::OversizedShard() const {
  size_t index = SIZE_MAX;
  for (size_t i = 0; i < shards_.size(); ++i) {
    const Shard& sh = *shards_[i];
    if (sh.chunks <= options_.max_shard_chunks || !layout_.is_leaf(sh.id)) continue;
    if (HeldUnsplittable(sh.id, sh.chunks)) continue;
    index = i;
  }
  return index;
}

size_t ShardSet::PendingSplit() const {
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (!layout_.is_leaf(shards_[i]->id) && !shards_[i]->splitting) return i;
  }
  return SIZE_MAX;
}

void ShardSet::BeginSplit(size_t index, SplitJob* job) {
  *job = SplitJob();
  const std::shared_ptr<Shard>& old = shards_[index];
  old->splitting = true;
  split_log_.clear();
  job->index = index;
  job->old_graph = old->graph;
  job->old_id = old->id;
  job->ids = layout_.children(old->id);
  job->centroids.clear();
  job->indexed.clear();
  for (uint32_t id : job->ids) {
    job->centroids.insert(job->centroids.end(), layout_.centroid(id), layout_.centroid(id) + dim_);
    job->indexed.push_back(Indexed(id));
  }
  job->members.clear();
  for (uint32_t s = 0; s < shard_of_.size(); ++s) {
    if (shard_of_[s] == index) job->members.push_back(s);
  }
}

bool ShardSet::BuildSplit(SplitJob* job, const std::atomic<bool>& stop) const {
  // The snapshot's vectors, from the old graph (a member deleted since is skipped; the log
  // has its delete anyway).
  std::vector<uint32_t>& members = job->members;
  const std::vector<float> rows = VectorsOf(*job->old_graph, &members);
  const size_t kept = members.size();
  // Each member to its nearest child, as the layout places it (one step down: a child
  // split since is built from its own pending split later).
  const size_t ways = job->ids.size();
  std::vector<uint32_t> assignment(kept);
  std::vector<size_t> sizes(ways, 0);
  for (size_t i = 0; i < kept; ++i) {
    assignment[i] = NearestCentroidExact(metric_, &rows[i * dim_], job->centroids.data(), ways, dim_);
    ++sizes[assignment[i]];
  }
  job->parts.clear();
  for (size_t p = 0; p < ways; ++p) {
    job->parts.push_back(NewGraph(LinksWhen(sizes[p], [&] { return job->indexed[p] && !SplitsAgain(sizes[p]); })));
    job->parts.back()->Reserve(sizes[p] + sizes[p] / 8);
  }
  BuildGraphs(job->parts, rows.data(), dim_, members, assignment, stop);
  if (stop) return false;
  // Which part each slot ended in: the snapshot's choice, overridden by later writes.
  for (size_t i = 0; i < kept; ++i) job->part_of[members[i]] = assignment[i];
  return true;
}

std::vector<ShardSet::SplitOp> ShardSet::CatchUp(const SplitJob& job, size_t min) const {
  if (split_log_.size() - job.replayed < min) return {};
  return std::vector<SplitOp>(split_log_.begin() + static_cast<ptrdiff_t>(job.replayed), split_log_.end());
}

void ShardSet::Replay(SplitJob* job, const std::vector<SplitOp>& ops) const {
  const size_t ways = job->ids.size();
  for (const SplitOp& op : ops) {
    for (auto& part : job->parts) part->MarkDeleted(op.slot);
    if (!op.add) continue;
    const uint32_t p = NearestCentroidExact(metric_, op.vector.data(), job->centroids.data(), ways, dim_);
    job->parts[p]->Add(op.slot, op.vector.data());
    job->part_of[op.slot] = p;
  }
  job->replayed += ops.size();
}

void ShardSet::FinishSplit(SplitJob* job) {
  Replay(job, CatchUp(*job, 0));
  const size_t index = job->index;
  const size_t ways = job->ids.size();
  // The first part takes the old shard's place in routing order; the others go last.
  std::vector<std::shared_ptr<Shard>> parts(ways);
  std::vector<uint32_t> position(ways);
  for (size_t p = 0; p < ways; ++p) {
    parts[p] = std::make_shared<Shard>();
    parts[p]->id = job->ids[p];
    parts[p]->centroid.assign(job->centroids.begin() + static_cast<ptrdiff_t>(p * dim_),
                              job->centroids.begin() + static_cast<ptrdiff_t>((p + 1) * dim_));
    parts[p]->graph = job->parts[p];
    position[p] = p == 0 ? static_cast<uint32_t>(index) : static_cast<uint32_t>(shards_.size() + p - 1);
  }
  for (const auto& [slot, p] : job->part_of) {
    // Still live and still in the old shard (a slot freed, or reused elsewhere, is not).
    if (shard_of_[slot] != index) continue;
    shard_of_[slot] = position[p];
    ++parts[p]->chunks;
  }
  shards_[index]->splitting = false;
  std::vector<std::shared_ptr<Shard>> shards = shards_;
  shards[index] = parts[0];
  for (size_t p = 1; p < ways; ++p) shards.push_back(parts[p]);
  SetShards(std::move(shards));
  split_log_.clear();
  job->chunks.clear();
  for (const auto& part : parts) job->chunks.push_back(part->chunks);
}

void ShardSet::AbandonSplit(SplitJob* job) {
  shards_[job->index]->splitting = false;
  split_log_.clear();
}

std::vector<std::vector<std::string>> DistinctiveTerms(const std::vector<std::vector<std::string>>& texts,
                                                       const Analyzer& analyzer, size_t n) {
  std::vector<std::unordered_map<std::string, size_t>> df(texts.size());
  std::unordered_map<std::string, size_t> all_df;
  size_t all_n = 0;
  std::vector<std::string> terms;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const auto& text : texts[i]) {
      terms.clear();
      analyzer.Analyze(text, &terms);
      std::sort(terms.begin(), terms.end());
      terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
      for (const auto& t : terms) {
        ++df[i][t];
        ++all_df[t];
      }
    }
    all_n += texts[i].size();
  }
  std::vector<std::vector<std::string>> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<std::pair<double, std::string>> ranked;
    const double size = static_cast<double>(std::max<size_t>(1, texts[i].size()));
    for (const auto& [term, count] : df[i]) {
      if (count < 2) continue;
      const double p = count / size, p_all = all_df[term] / static_cast<double>(all_n);
      ranked.emplace_back(p * std::log(p / p_all), term);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t t = 0; t < ranked.size() && t < n; ++t) out[i].push_back(ranked[t].second);
  }
  return out;
}

}  // namespace contextd
