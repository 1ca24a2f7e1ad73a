// Collection's side of its topic shards: saving their graphs, splits (proposed to the log,
// applied to the layout, built in the background with the locks each phase needs; ShardSet
// does the work, see shard_set.h), and the /shards report.
//
// A split is replicated state, so that every node places every chunk alike: the node that
// leads maintenance (every node on its own; one in a cluster) chooses the children's
// centroids and commits a split mutation; every node applies it to its layout in log
// order and then builds it at its own pace, serving from the old graph meanwhile.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "engine/collection.h"
#include "engine/shard_layout.h"

namespace contextd {

Status Collection::SaveGraph(const std::string& path, uint64_t store_sequence) {
  WaitForSplits();
  if (graph_incomplete_) {
    // A saved graph would be refused at the next start anyway (its chunks differ from the
    // store's); not writing it saves the time shutdown no longer has.
    spdlog::info("collection {}: graphs incomplete (indexing was abandoned at shutdown); not saved", name_);
    return Status::Ok();
  }
  ReaderLock lock(&mu_);
  return shards_.Save(path, store_sequence);
}

size_t Collection::shard_count() const {
  ReaderLock lock(&mu_);
  return shards_.size();
}

void Collection::set_router(ShardRouter* router) {
  router_ = router;
  WriterLock lock(&mu_);
  if (router == nullptr) {
    shards_.SetIndexed(nullptr);
  } else {
    shards_.SetIndexed(
        [router, tenant = tenant_, id = id_](uint32_t shard) { return router->Indexes(tenant, id, shard); });
  }
  (void)shards_.UpdateLinking();  // new chunks from now on; the stored ones at the next refresh
}

void Collection::DeferLinking() {
  WriterLock lock(&mu_);
  shards_.SetIndexed([](uint32_t) { return false; });
  (void)shards_.UpdateLinking();
}

void Collection::RefreshIndexing() {
  bool due = false;
  {
    ReaderLock lock(&mu_);
    due = shards_.LinkingDue();
  }
  if (due) MaybeSplit();
}

bool Collection::LinkIndexedShards() {
  std::vector<std::shared_ptr<HnswIndex>> due;
  {
    ReaderLock lock(&mu_);
    due = shards_.UpdateLinking();
  }
  const int64_t t0 = clock_->NowNanos();
  size_t linked = 0;
  for (const auto& graph : due) linked += graph->LinkPending(stop_);
  if (linked > 0) {
    spdlog::info(
        "collection {}: linked {} stored chunks into the graphs of {} shards this node now indexes in {:.0f} ms", name_,
        linked, due.size(), (clock_->NowNanos() - t0) / 1e6);
  }
  return linked > 0;
}

void Collection::MaybeSplit() {
  if (IndexingAbandoned()) return;  // shutting down: the next start builds pending splits
  {
    ReaderLock lock(&mu_);
    if (shards_.PendingSplit() == SIZE_MAX && (shards_.OversizedShard() == SIZE_MAX || !log_->LeadsMaintenance()) &&
        !shards_.LinkingDue())
      return;
  }
  MutexLock guard(&splitter_mu_);
  ++split_requests_;  // a running loop looks again before it ends
  if (split_running_ || stop_) return;
  if (splitter_.joinable()) splitter_.join();  // the last one has finished
  split_running_ = true;
  splitter_ = std::thread([this] { SplitLoop(); });
}

void Collection::WaitForSplits() {
  // Joined outside the lock: the loop takes it to decide whether to end.
  std::thread running;
  {
    MutexLock guard(&splitter_mu_);
    running = std::move(splitter_);
  }
  if (running.joinable()) running.join();
}

void Collection::SplitLoop() {
  for (;;) {
    const uint64_t requests = split_requests_.load();
    while (!stop_ && !dropped_) {
      size_t pending = SIZE_MAX, oversized = SIZE_MAX;
      {
        ReaderLock lock(&mu_);
        pending = shards_.PendingSplit();
        oversized = shards_.OversizedShard();
      }
      if (pending != SIZE_MAX) {
        if (!SplitShard(pending)) break;
        continue;
      }
      if (LinkIndexedShards()) continue;
      if (oversized == SIZE_MAX || !log_->LeadsMaintenance() || !ProposeSplit(oversized)) break;
      ReaderLock lock(&mu_);
      if (shards_.PendingSplit() == SIZE_MAX) break;  // committed but not applied: the next write retries
    }
    // A MaybeSplit() since this pass began (a split applied meanwhile) gets another pass;
    // splitter_mu_ orders the check against its increment.
    MutexLock guard(&splitter_mu_);
    if (stop_ || dropped_ || split_requests_.load() == requests) {
      split_running_ = false;
      return;
    }
  }
}

bool Collection::ProposeSplit(size_t index) {
  std::shared_ptr<const HnswIndex> graph;
  uint32_t shard = 0;
  std::vector<uint32_t> slots;
  {
    ReaderLock lock(&mu_);
    graph = shards_.graph(index);
    shard = shards_.shard_id(index);
    shards_.Members(shard, &slots);
  }
  const size_t dim = static_cast<size_t>(config_.dim);
  std::vector<float> rows = ShardSet::VectorsOf(*graph, &slots);
  const size_t kept = slots.size();
  if (kept < 2) return false;
  // Into enough children that each starts at about three quarters of the limit (a shard
  // that grew from a bulk load splits once, not log2 times), with balanced k-means.
  const size_t ways = std::clamp<size_t>(InitialShardCount(kept, config_.sharding), 2, ShardLayout::kMaxSplitWays);
  KMeansResult km = BalancedKMeans(rows.data(), kept, dim, ways, config_.metric, /*slack=*/1.2f);
  // Placement follows the centroids, not k-means' balanced assignment: near-identical
  // vectors (the same text written many times) all go to one child, which is then as big
  // as its parent and would be split again, for ever. Such a split is not proposed.
  std::vector<size_t> per_child(ways, 0);
  for (size_t i = 0; i < kept; ++i)
    ++per_child[NearestCentroidExact(config_.metric, &rows[i * dim], km.centroids.data(), ways, dim)];
  rows = {};
  if (const size_t largest = *std::max_element(per_child.begin(), per_child.end()); largest * 10 > kept * 9) {
    spdlog::warn("collection {}: shard {} ({} chunks) cannot be divided (one child would keep {})", name_, shard, kept,
                 largest);
    // Through the log, so every node marks it: one that did not would wait for this split,
    // keeping the shard's graph unlinked (ShardSet::AwaitsSplit) and scanning it exactly.
    Mutation m = NewMutation(MutationKind::kShardUnsplittable, tenant_);
    m.collection = name_;
    m.collection_id = id_;
    m.shard = shard;
    // The size is in the key: marked again once grown by half, that is another mark.
    if (Status st = CommitShardChange(
            &m, "unsplittable-" + std::to_string(id_) + "-" + std::to_string(shard) + "-" + std::to_string(kept));
        !st.ok()) {
      spdlog::warn("collection {}: shard {} marked unsplittable here only (the log did not commit it: {})", name_,
                   shard, st.message());
      WriterLock lock(&mu_);
      shards_.MarkUnsplittable(shard, kept);
    }
    return false;
  }
  Mutation m = NewMutation(MutationKind::kSplitShard, tenant_);
  m.collection = name_;
  m.collection_id = id_;
  m.shard = shard;
  m.dim = static_cast<uint32_t>(dim);
  m.vectors = std::move(km.centroids);
  // The same split proposed twice (a retry) is committed once.
  if (Status st = CommitShardChange(&m, "split-" + std::to_string(id_) + "-" + std::to_string(shard)); !st.ok()) {
    spdlog::warn("collection {}: split of shard {} not committed: {}", name_, shard, st.message());
    return false;
  }
  return true;
}

Status Collection::CommitShardChange(Mutation* m, const std::string& key) {
  RequestContext ctx(clock_);
  ctx.tenant = tenant_;
  // Shutting down: a log that cannot commit now is not waited for past the cut-off.
  ctx.shutdown_ns = &abandon_indexing_ns_;
  ctx.idempotency_key = key;
  ApplyResult applied;
  return log_->Commit(ctx, m, &applied);
}

Status Collection::ApplyUnsplittable(const Mutation& m, ApplyResult* result) {
  ReaderLock alive(&drop_mu_);
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  WriteBatch batch;
  batch.RecordSequence(m.sequence);
  // Unsynced: a mark lost in a crash is proposed again.
  CTX_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/false));
  result->bytes_written += static_cast<int64_t>(batch.size_bytes());
  size_t chunks = SIZE_MAX;
  {
    WriterLock lock(&mu_);
    applied_sequence_ = std::max(applied_sequence_, m.sequence);
    chunks = shards_.ChunksOf(m.shard);
    // Split since by an earlier mutation: there is nothing to mark.
    if (chunks != SIZE_MAX) shards_.MarkUnsplittable(m.shard, chunks);
  }
  if (chunks == SIZE_MAX) return Status::Ok();
  spdlog::info("collection {}: shard {} ({} chunks) cannot be divided; not split until it grows by half (sequence {})",
               name_, m.shard, chunks, m.sequence);
  MaybeSplit();  // its graph links now, on the splitter thread
  return Status::Ok();
}

Status Collection::ApplySplit(const Mutation& m, ApplyResult* result) {
  ReaderLock alive(&drop_mu_);
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  if (m.dim != static_cast<uint32_t>(config_.dim)) {
    return InvalidArgument(
        "split centroids do not match collection '" + name_ + "' (dim " + std::to_string(config_.dim) + ")",
        "invalid_mutation");
  }
  MutexLock serial(&layout_mu_);
  ShardLayout next = [&] {
    ReaderLock lock(&mu_);
    return shards_.layout();
  }();
  CTX_ASSIGN_OR_RETURN(bool split, next.Split(m.shard, m.vectors));
  WriteBatch batch;
  if (split) batch.PutShardLayout(tenant_, id_, next.Encode());
  batch.RecordSequence(m.sequence);
  CTX_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  result->bytes_written += static_cast<int64_t>(batch.size_bytes());
  {
    WriterLock lock(&mu_);
    applied_sequence_ = std::max(applied_sequence_, m.sequence);
    // A second proposal of a split already made changes nothing.
    if (split) (void)shards_.ApplySplit(m.shard, m.vectors);
  }
  if (!split) return Status::Ok();
  spdlog::info("collection {}: shard {} split into {} (sequence {})", name_, m.shard, m.vectors.size() / m.dim,
               m.sequence);
  MaybeSplit();
  return Status::Ok();
}

bool Collection::SplitShard(size_t index) {
  const int64_t t0 = clock_->NowNanos();
  ShardSet::SplitJob job;
  {
    // No write half-applied: writers hold apply_mu_ shared from placing their chunks until
    // those are in the graphs.
    WriterLock applying(&apply_mu_);
    WriterLock lock(&mu_);
    shards_.BeginSplit(index, &job);
  }
  // The graph building reads only the job and the old graph (which locks itself).
  bool built = [&]() NO_THREAD_SAFETY_ANALYSIS { return shards_.BuildSplit(&job, stop_); }();
  if (!built) {
    WriterLock lock(&mu_);
    shards_.AbandonSplit(&job);
    return false;
  }
  // Most of the writes logged meanwhile without blocking anyone, until few are left.
  while (true) {
    std::vector<ShardSet::SplitOp> ops;
    {
      ReaderLock lock(&mu_);
      ops = shards_.CatchUp(job, 64);
    }
    if (ops.empty()) break;
    [&]() NO_THREAD_SAFETY_ANALYSIS { shards_.Replay(&job, ops); }();  // the job's halves only
  }
  {
    WriterLock applying(&apply_mu_);
    WriterLock lock(&mu_);
    const size_t replayed = job.replayed;
    shards_.FinishSplit(&job);
    // Cached answers came from the old layout; a fresh search now routes differently.
    cache_.Clear();
    std::string parts;
    for (size_t p = 0; p < job.ids.size(); ++p)
      parts += (p ? ", " : "") + std::to_string(job.ids[p]) + " (" + std::to_string(job.chunks[p]) + ")";
    spdlog::info("collection {}: built the split of shard {} ({} chunks) into {} in {:.0f} ms, {} writes replayed",
                 name_, job.old_id, job.members.size(), parts, (clock_->NowNanos() - t0) / 1e6, replayed);
  }
  return true;
}

ShardsReport Collection::DescribeShards() const {
  // Distinctive terms from a sample of each shard's chunks against the sample of all.
  constexpr size_t kSample = 200;
  ShardsReport out;
  std::vector<std::vector<std::string>> texts;
  {
    ReaderLock lock(&mu_);
    std::vector<std::vector<uint32_t>> samples;
    out = shards_.Report(kSample, &samples);
    texts.resize(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      for (uint32_t s : samples[i]) {
        const DocumentTable::Chunk& c = table_.chunk(s);
        texts[i].push_back(IndexText(c.doc->title, c.text()));
      }
    }
  }
  std::vector<std::vector<std::string>> terms = DistinctiveTerms(texts, *analyzer_, 8);
  for (size_t i = 0; i < terms.size(); ++i) out.shards[i].top_terms = std::move(terms[i]);
  return out;
}

}  // namespace contextd
