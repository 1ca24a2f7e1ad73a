// Collection's topic shards: routing a vector search, loading and saving the shards'
// graphs, and splitting a shard that outgrew its limit while reads and writes go on.
//
// A split works on a snapshot: with apply_mu_ held alone (no write half-applied) the shard
// is marked `splitting` and its members listed; from then on every write that touches the
// shard is also appended to split_log_ (under mu_, by ApplyLocked/RemoveDocLocked). The
// halves are built from the snapshot with no lock held, while searches keep using the old
// graph, which writers keep current. The log is then replayed into the halves, most of it
// without blocking anyone and the last few entries with both locks held, and the halves
// replace the old shard in one step.
#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/thread_pool.h"
#include "engine/collection.h"

namespace contextd {
namespace {

std::string ShardGraphPath(const std::string& base, size_t index) {
  return index == 0 ? base : base + "." + std::to_string(index);
}

// Adds rows[i] under labels[i] to graphs[assignment[i]] on every core.
void BuildGraphs(const std::vector<std::shared_ptr<HnswIndex>>& graphs, const float* rows, size_t dim,
                 const std::vector<uint32_t>& labels, const std::vector<uint32_t>& assignment,
                 const std::atomic<bool>& stop) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> builders;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned t = 0; t < threads; ++t) {
    builders.emplace_back([&] {
      for (size_t i = next++; i < labels.size() && !stop; i = next++) {
        graphs[assignment[i]]->Add(labels[i], rows + i * dim);
      }
    });
  }
  for (auto& b : builders) b.join();
}

}  // namespace

void Collection::SetShardsLocked(std::vector<std::shared_ptr<Shard>> shards) {
  const size_t dim = static_cast<size_t>(config_.dim);
  shards_ = std::move(shards);
  centroids_.resize(shards_.size() * dim);
  for (size_t i = 0; i < shards_.size(); ++i) std::copy_n(shards_[i]->centroid.data(), dim, &centroids_[i * dim]);
}

uint32_t Collection::NearestShardLocked(const float* vector) const {
  if (shards_.size() == 1) return 0;
  std::vector<float> scores(shards_.size());
  ScoreCentroids(config_.metric, vector, centroids_.data(), shards_.size(), static_cast<size_t>(config_.dim),
                 scores.data());
  return static_cast<uint32_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
}

bool Collection::UsesGraphLocked() const {
  for (const auto& shard : shards_) {
    if (shard->graph->size() >= kGraphMinChunks) return true;
  }
  return false;
}

std::vector<ScoredSlot> Collection::SearchShard(const Shard& shard, const float* query, size_t k, size_t ef,
                                                const SlotBitset* allowed) const {
  const HnswIndex& graph = *shard.graph;
  shard.probes.fetch_add(1, std::memory_order_relaxed);
  if (graph.size() < kGraphMinChunks) return graph.ExactSearch(query, k, allowed);
  if (ef == 0) ef = std::max<size_t>(64, 2 * k);
  if (allowed != nullptr) return graph.SearchFiltered(query, k, ef, *allowed);
  return graph.Search(query, k, ef, nullptr);
}

std::vector<std::vector<ScoredSlot>> Collection::SearchShardsLocked(const std::vector<uint32_t>& indexes,
                                                                    const float* query, size_t k, size_t ef,
                                                                    const SlotBitset* allowed) const {
  std::vector<std::vector<ScoredSlot>> results(indexes.size());
  size_t walks = 0;
  for (uint32_t i : indexes) walks += shards_[i]->graph->size() >= kGraphMinChunks;
  if (walks < 2) {
    for (size_t j = 0; j < indexes.size(); ++j) results[j] = SearchShard(*shards_[indexes[j]], query, k, ef, allowed);
    return results;
  }
  // Two graph walks or more: in parallel, the calling thread taking the first shard. The
  // tasks only read state this thread's shared lock on mu_ keeps still, and never wait on
  // anything, so the pool cannot deadlock.
  static ThreadPool pool(std::max(2u, std::thread::hardware_concurrency()), "ctx-shards");
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = indexes.size() - 1;
  for (size_t j = 1; j < indexes.size(); ++j) {
    // Reads shards_ under the caller's shared lock, held until every task is done.
    pool.Submit([&, j]() NO_THREAD_SAFETY_ANALYSIS {
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

std::vector<ScoredSlot> Collection::VectorSearchLocked(const float* query, size_t k, size_t ef,
                                                       const SlotBitset* allowed, bool all_shards,
                                                       const ShardingOptions* routing,
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
    std::vector<float> scores(n);
    ScoreCentroids(config_.metric, query, centroids_.data(), n, static_cast<size_t>(config_.dim), scores.data());
    RouteDecision d = RouteShards(scores, routing != nullptr ? *routing : config_.sharding);
    probe = std::move(d.shards);
    r.margin = d.margin;
    r.confident = d.confident;
    routed_queries_.fetch_add(1, std::memory_order_relaxed);
    if (d.confident) confident_routes_.fetch_add(1, std::memory_order_relaxed);
  }
  // Scores from different shards are the same metric on the same vectors: merge by score.
  TopK top(k);
  std::vector<bool> searched(n, false);
  // Runs inline, under the caller's lock (which the analysis cannot follow into a lambda).
  auto search = [&](const std::vector<uint32_t>& indexes) NO_THREAD_SAFETY_ANALYSIS {
    for (uint32_t i : indexes) {
      searched[i] = true;
      r.shards.push_back(shards_[i]->id);
    }
    for (const auto& hits : SearchShardsLocked(indexes, query, k, ef, allowed)) {
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

Status Collection::LoadShardsLocked(const std::string& graph_path, uint64_t store_sequence,
                                    std::vector<float>* vectors) {
  const size_t dim = static_cast<size_t>(config_.dim);
  // The live rows, packed to the front in slot order.
  std::vector<uint32_t> labels;
  for (uint32_t s = 0; s < chunks_.size(); ++s) {
    if (chunks_[s].doc == nullptr) continue;
    if (labels.size() != s) std::copy_n(&(*vectors)[s * dim], dim, &(*vectors)[labels.size() * dim]);
    labels.push_back(s);
  }
  const size_t n = labels.size();
  std::vector<uint32_t> assignment(n, 0);
  std::vector<std::shared_ptr<HnswIndex>> graphs;
  // Graphs saved at this very store state, together holding every chunk once, save the
  // rebuild.
  if (!graph_path.empty()) {
    std::string why;
    for (size_t i = 0;; ++i) {
      uint64_t tag = 0;
      auto saved = HnswIndex::Load(ShardGraphPath(graph_path, i), config_.dim, config_.metric, GraphParams(), &tag);
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
    size_t total = 0;
    for (const auto& g : graphs) total += g->size();
    if (why.empty() && total != n) why = "its chunks differ from the store's";
    for (size_t i = 0; why.empty() && i < n; ++i) {
      size_t holders = 0;
      for (uint32_t g = 0; g < graphs.size(); ++g) {
        if (graphs[g]->Contains(labels[i])) {
          assignment[i] = g;
          ++holders;
        }
      }
      if (holders != 1) why = "its chunks differ from the store's";
    }
    if (why.empty()) {
      graph_source_ = "loaded";
    } else {
      if (why != "none") spdlog::warn("collection {}: saved graphs not used ({}); rebuilding", name_, why);
      graphs.clear();
    }
  }
  if (graphs.empty()) {
    graph_source_ = "rebuilt";
    const size_t k = std::min(InitialShardCount(n, config_.sharding), std::max<size_t>(n, 1));
    if (k > 1) assignment = BalancedKMeans(vectors->data(), n, dim, k, config_.metric).assignment;
    for (size_t i = 0; i < k; ++i) graphs.push_back(NewGraph());
  }
  std::vector<size_t> counts;
  std::vector<float> means =
      ClusterMeans(vectors->data(), n, dim, assignment.data(), graphs.size(), config_.metric, &counts);
  std::vector<std::shared_ptr<Shard>> shards;
  for (size_t i = 0; i < graphs.size(); ++i) {
    auto shard = std::make_shared<Shard>();
    shard->id = static_cast<uint32_t>(i);
    shard->centroid.assign(&means[i * dim], &means[(i + 1) * dim]);
    shard->graph = graphs[i];
    shard->chunks = counts[i];
    if (graph_source_ == "rebuilt") shard->graph->Reserve(counts[i]);
    shards.push_back(std::move(shard));
  }
  next_shard_id_ = static_cast<uint32_t>(shards.size());
  SetShardsLocked(std::move(shards));
  for (size_t i = 0; i < n; ++i) shard_of_[labels[i]] = assignment[i];
  if (graph_source_ == "rebuilt") BuildGraphs(graphs, vectors->data(), dim, labels, assignment, stop_);
  return Status::Ok();
}

Status Collection::SaveGraph(const std::string& path, uint64_t store_sequence) {
  WaitForSplits();
  ReaderLock lock(&mu_);
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

size_t Collection::shard_count() const {
  ReaderLock lock(&mu_);
  return shards_.size();
}

void Collection::MaybeSplit() {
  {
    ReaderLock lock(&mu_);
    bool due = false;
    for (const auto& shard : shards_) due = due || shard->chunks > config_.sharding.max_shard_chunks;
    if (!due) return;
  }
  std::lock_guard<std::mutex> guard(splitter_mu_);
  if (split_running_ || stop_) return;
  if (splitter_.joinable()) splitter_.join();  // the last one has finished
  split_running_ = true;
  splitter_ = std::thread([this] { SplitLoop(); });
}

void Collection::WaitForSplits() {
  std::lock_guard<std::mutex> guard(splitter_mu_);
  if (splitter_.joinable()) splitter_.join();
}

void Collection::SplitLoop() {
  while (!stop_ && !dropped_) {
    size_t index = SIZE_MAX;
    {
      ReaderLock lock(&mu_);
      for (size_t i = 0; i < shards_.size(); ++i) {
        if (shards_[i]->chunks > config_.sharding.max_shard_chunks) index = i;
      }
    }
    if (index == SIZE_MAX || !SplitShard(index)) break;
  }
  split_running_ = false;
}

bool Collection::SplitShard(size_t index) {
  const size_t dim = static_cast<size_t>(config_.dim);
  const int64_t t0 = clock_->NowNanos();
  std::shared_ptr<Shard> old;
  std::vector<uint32_t> members;
  {
    WriterLock applying(&apply_mu_);
    WriterLock lock(&mu_);
    old = shards_[index];
    old->splitting = true;
    split_log_.clear();
    for (uint32_t s = 0; s < chunks_.size(); ++s) {
      if (chunks_[s].doc != nullptr && shard_of_[s] == index) members.push_back(s);
    }
  }
  // The snapshot's vectors, from the old graph (a member deleted since is skipped; the log
  // has its delete anyway).
  std::vector<float> rows(members.size() * dim);
  size_t kept = 0;
  for (uint32_t s : members) {
    if (old->graph->CopyVector(s, &rows[kept * dim])) members[kept++] = s;
  }
  members.resize(kept);
  rows.resize(kept * dim);
  auto abandon = [&] {
    WriterLock lock(&mu_);
    old->splitting = false;
    split_log_.clear();
    return false;
  };
  if (kept < 2) return abandon();
  // Halves of 40-60%: balanced enough that neither needs splitting again right away.
  KMeansResult km = BalancedKMeans(rows.data(), kept, dim, 2, config_.metric, /*slack=*/1.2f);
  std::vector<std::shared_ptr<HnswIndex>> halves = {NewGraph(), NewGraph()};
  for (auto& g : halves) g->Reserve(kept / 2 + kept / 8);
  BuildGraphs(halves, rows.data(), dim, members, km.assignment, stop_);
  if (stop_) return abandon();
  // Which half each slot ended in: the snapshot's choice, overridden by later writes.
  std::unordered_map<uint32_t, uint32_t> half_of;
  for (size_t i = 0; i < kept; ++i) half_of[members[i]] = km.assignment[i];
  size_t replayed = 0;
  auto replay = [&](const std::vector<SplitOp>& ops) {
    for (const SplitOp& op : ops) {
      halves[0]->MarkDeleted(op.slot);
      halves[1]->MarkDeleted(op.slot);
      if (!op.add) continue;
      float scores[2];
      ScoreCentroids(config_.metric, op.vector.data(), km.centroids.data(), 2, dim, scores);
      const uint32_t h = scores[1] > scores[0] ? 1 : 0;
      halves[h]->Add(op.slot, op.vector.data());
      half_of[op.slot] = h;
    }
    replayed += ops.size();
  };
  // Most of the log without blocking anyone, until what is left is short.
  while (true) {
    std::vector<SplitOp> batch;
    {
      ReaderLock lock(&mu_);
      if (split_log_.size() - replayed < 64) break;
      batch.assign(split_log_.begin() + static_cast<ptrdiff_t>(replayed), split_log_.end());
    }
    replay(batch);
  }
  {
    WriterLock applying(&apply_mu_);
    WriterLock lock(&mu_);
    replay(std::vector<SplitOp>(split_log_.begin() + static_cast<ptrdiff_t>(replayed), split_log_.end()));
    auto a = std::make_shared<Shard>(), b = std::make_shared<Shard>();
    a->id = next_shard_id_++;
    b->id = next_shard_id_++;
    a->centroid.assign(km.centroids.begin(), km.centroids.begin() + static_cast<ptrdiff_t>(dim));
    b->centroid.assign(km.centroids.begin() + static_cast<ptrdiff_t>(dim), km.centroids.end());
    a->graph = halves[0];
    b->graph = halves[1];
    const uint32_t b_index = static_cast<uint32_t>(shards_.size());
    for (const auto& [slot, h] : half_of) {
      // Still live and still in the old shard (a slot freed and reused elsewhere is not).
      if (chunks_[slot].doc == nullptr || shard_of_[slot] != index) continue;
      shard_of_[slot] = h == 0 ? static_cast<uint32_t>(index) : b_index;
      ++(h == 0 ? a : b)->chunks;
    }
    std::vector<std::shared_ptr<Shard>> shards = shards_;
    shards[index] = a;
    shards.push_back(b);
    SetShardsLocked(std::move(shards));
    old->splitting = false;
    split_log_.clear();
    // Cached answers came from the old layout; a fresh search now routes differently.
    query_cache_->Clear();
    spdlog::info("collection {}: split shard {} ({} chunks) into {} ({}) and {} ({}) in {:.0f} ms, {} writes replayed",
                 name_, old->id, kept, a->id, a->chunks, b->id, b->chunks, (clock_->NowNanos() - t0) / 1e6, replayed);
  }
  return true;
}

ShardsReport Collection::DescribeShards() const {
  // Distinctive terms: a sample of each shard's chunks against the sample of all of them,
  // ranked by p_shard * log(p_shard / p_all) (each term's share of the shard's sampled
  // chunks that contain it).
  constexpr size_t kSample = 200;
  ShardsReport out;
  std::vector<std::vector<std::string>> texts;
  {
    ReaderLock lock(&mu_);
    texts.resize(shards_.size());
    std::vector<size_t> seen(shards_.size(), 0);
    for (uint32_t s = 0; s < chunks_.size(); ++s) {
      if (chunks_[s].doc == nullptr) continue;
      const uint32_t i = shard_of_[s];
      // Reservoir-free thinning: every (chunks / kSample)-th member.
      const size_t stride = std::max<size_t>(1, shards_[i]->chunks / kSample);
      if (seen[i]++ % stride == 0 && texts[i].size() < kSample)
        texts[i].push_back(IndexText(chunks_[s].doc->title, chunks_[s].text));
    }
    for (const auto& shard : shards_) {
      ShardsReport::Shard r;
      r.id = shard->id;
      r.chunks = shard->chunks;
      r.index = shard->graph->size() >= kGraphMinChunks ? "hnsw" : "flat";
      r.probes = shard->probes.load();
      r.splitting = shard->splitting;
      out.shards.push_back(std::move(r));
    }
  }
  std::vector<std::unordered_map<std::string, size_t>> df(texts.size());
  std::unordered_map<std::string, size_t> all_df;
  size_t all_n = 0;
  std::vector<std::string> terms;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const auto& text : texts[i]) {
      terms.clear();
      analyzer_->Analyze(text, &terms);
      std::sort(terms.begin(), terms.end());
      terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
      for (const auto& t : terms) {
        ++df[i][t];
        ++all_df[t];
      }
    }
    all_n += texts[i].size();
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<std::pair<double, std::string>> ranked;
    const double n = static_cast<double>(std::max<size_t>(1, texts[i].size()));
    for (const auto& [term, count] : df[i]) {
      if (count < 2) continue;
      const double p = count / n, p_all = all_df[term] / static_cast<double>(all_n);
      ranked.emplace_back(p * std::log(p / p_all), term);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t t = 0; t < ranked.size() && t < 8; ++t) out.shards[i].top_terms.push_back(ranked[t].second);
  }
  const uint64_t routed = routed_queries_.load();
  out.queries = routed;
  out.single_shard = confident_routes_.load();
  out.widened = widened_routes_.load();
  out.mean_shards_probed = routed == 0 ? 0.0 : static_cast<double>(shards_probed_.load()) / routed;
  out.options = config_.sharding;
  return out;
}

}  // namespace contextd
