// Collection's side of its topic shards: saving their graphs, the background splitter and
// the locks each phase of a split needs (ShardSet does the work; see shard_set.h), and the
// /shards report.
#include <spdlog/spdlog.h>

#include "engine/collection.h"

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

void Collection::MaybeSplit() {
  if (IndexingAbandoned()) return;  // shutting down: the next start places the shards
  {
    ReaderLock lock(&mu_);
    if (shards_.OversizedShard() == SIZE_MAX) return;
  }
  MutexLock guard(&splitter_mu_);
  if (split_running_ || stop_) return;
  if (splitter_.joinable()) splitter_.join();  // the last one has finished
  split_running_ = true;
  splitter_ = std::thread([this] { SplitLoop(); });
}

void Collection::WaitForSplits() {
  MutexLock guard(&splitter_mu_);
  if (splitter_.joinable()) splitter_.join();
}

void Collection::SplitLoop() {
  while (!stop_ && !dropped_) {
    size_t index = SIZE_MAX;
    {
      ReaderLock lock(&mu_);
      index = shards_.OversizedShard();
    }
    if (index == SIZE_MAX || !SplitShard(index)) break;
  }
  split_running_ = false;
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
    spdlog::info("collection {}: split shard {} ({} chunks) into {} ({}) and {} ({}) in {:.0f} ms, {} writes replayed",
                 name_, job.old_id, job.members.size(), job.ids[0], job.chunks[0], job.ids[1], job.chunks[1],
                 (clock_->NowNanos() - t0) / 1e6, replayed);
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
        texts[i].push_back(IndexText(c.doc->title, c.text));
      }
    }
  }
  std::vector<std::vector<std::string>> terms = DistinctiveTerms(texts, *analyzer_, 8);
  for (size_t i = 0; i < terms.size(); ++i) out.shards[i].top_terms = std::move(terms[i]);
  return out;
}

}  // namespace contextd
