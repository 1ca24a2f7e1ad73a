#include "engine/update_log.h"

namespace contextd {

LocalUpdateLog::LocalUpdateLog(MutationApplier* applier, uint64_t last_sequence,
                               std::function<void(const Mutation&)> observer)
    : applier_(applier), last_(last_sequence), observer_(std::move(observer)) {}

Status LocalUpdateLog::Commit(const RequestContext& ctx, Mutation* m, ApplyResult* result) {
  // The last point where giving up changes nothing: a sequence, once taken, is applied.
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("committing the write"));
  m->sequence = last_.fetch_add(1) + 1;
  if (observer_) observer_(*m);
  // Applying consumes the mutation's texts (they move into the indexes).
  const uint64_t sequence = m->sequence;
  Status st = applier_->Apply(std::move(*m), result);
  if (!st.ok() && !IsRejection(st)) applier_->Skip(sequence);
  if (st.ok()) ctx.NoteCommitted(sequence);
  return st;
}

bool AppliedSequence::Begin(uint64_t seq) {
  MutexLock lock(&mu_);
  if (seq <= watermark_ || done_.count(seq) > 0) return false;
  return running_.insert(seq).second;
}

bool IsRejection(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}

void AppliedSequence::Finish(uint64_t seq, bool applied) {
  MutexLock lock(&mu_);
  running_.erase(seq);
  if (!applied) return;
  done_.insert(seq);
  while (!done_.empty() && *done_.begin() == watermark_ + 1) {
    watermark_ = *done_.begin();
    done_.erase(done_.begin());
  }
  advanced_.notify_all();
}

bool AppliedSequence::WaitFor(uint64_t seq, std::chrono::milliseconds timeout) const {
  MutexLock lock(&mu_);
  // The predicate runs with mu_ held (wait_for relocks it first).
  return advanced_.wait_for(mu_, timeout, [&]() NO_THREAD_SAFETY_ANALYSIS { return watermark_ >= seq; });
}

uint64_t AppliedSequence::value() const {
  MutexLock lock(&mu_);
  return watermark_;
}

}  // namespace contextd
