// LlmCache's feedback: observations of whether an entry was right for a prompt, the
// entries' floors and the namespace's learned threshold (cache/feedback.h).
#include <cmath>

#include "cache/llm_cache.h"
#include "cache/llm_cache_rep.h"
#include "index/distance.h"

namespace contextd {

using llm_cache_internal::FeedbackKey;
using llm_cache_internal::FloorPrefix;
using llm_cache_internal::NotFoundNs;

StatusOr<CacheFeedbackWrite> LlmCache::PrepareFeedback(const std::string& ns,
                                                       const CacheFeedbackRequest& request) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  if (request.id.empty()) return InvalidArgument("'id' must name the entry the feedback is about", "missing_field");
  if (request.prompt.empty()) return InvalidArgument("'prompt' must be a non-empty string", "missing_field");
  if (request.correct.has_value() == request.response.has_value())
    return InvalidArgument("give either 'correct' (true or false) or 'response' (the fresh response), not both",
                           "invalid_value");
  std::shared_ptr<const Embedder> embedder;
  VerifyPolicy policy;
  Namespace::Entry entry;
  std::vector<float> stored;
  {
    ReaderLock lock(&n->mu);
    auto it = n->by_id.find(request.id);
    if (it == n->by_id.end())
      return NotFound("no entry '" + request.id + "' in cache namespace '" + ns.substr(ns.rfind('/') + 1) + "'",
                      "entry_not_found");
    entry = n->entries[it->second];
    embedder = n->embedder;
    policy = n->verify;
    stored.resize(static_cast<size_t>(embedder->dim()));
    if (!n->graph->CopyVector(it->second, stored.data()))
      return NotFound("entry '" + request.id + "' is being stored; try again", "entry_not_found");
  }
  CacheFeedbackWrite w;
  w.id = request.id;
  std::vector<float> vec(stored.size());
  CTX_RETURN_IF_ERROR(embedder->EmbedWith({request.prompt}, EmbedOptions{EmbedPriority::kQuery, 0}, vec.data()));
  // As the graph scores a lookup: its vectors are kept normalised, the query is normalised.
  NormalizeInPlace(vec.data(), vec.size());
  w.similarity = DotProduct(vec.data(), stored.data(), vec.size());
  w.confidence = Verify(AnalyzePrompt(request.prompt), AnalyzePrompt(entry.prompt), w.similarity, policy).confidence;
  w.correct = request.correct ? *request.correct : ResponsesAgree(entry.response, *request.response);
  return w;
}

Status LlmCache::ApplyFeedback(const std::string& ns, const CacheFeedbackWrite& w) {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  if (!std::isfinite(w.confidence) || w.confidence < 0 || w.confidence > 1)
    return InvalidArgument("a feedback mutation's confidence must be within [0, 1]", "invalid_mutation");
  // One key per observation; the oldest past kFeedbackKept goes in the same batch.
  WriterLock lock(&n->mu);
  rocksdb::WriteBatch batch;
  batch.Put(FeedbackKey(ns, n->feedback_next), std::string(w.correct ? "1 " : "0 ") + Json(w.confidence).Dump());
  const bool trim = n->feedback.size() + 1 > kFeedbackKept;
  if (trim) batch.Delete(FeedbackKey(ns, n->feedback_next - n->feedback.size()));
  auto it = n->by_id.find(w.id);
  // Wrong at this confidence: the entry is not served again at it or below.
  const bool raise = !w.correct && it != n->by_id.end() && n->entries[it->second].floor <= w.confidence;
  const float floor = std::nextafter(w.confidence, 2.0f);
  if (raise) batch.Put(FloorPrefix(ns) + w.id, Json(floor).Dump());
  CTX_RETURN_IF_ERROR(rep_->Write(&batch));
  if (raise) n->entries[it->second].floor = floor;
  n->feedback.push_back({w.confidence, w.correct});
  ++n->feedback_next;
  if (trim) n->feedback.pop_front();
  n->RelearnLocked();
  rep_->Count(ns, w.correct ? "feedback_correct" : "feedback_wrong");
  return Status::Ok();
}

StatusOr<CacheFeedbackState> LlmCache::FeedbackState(const std::string& ns, const std::string& id) const {
  Namespace* n = rep_->Find(ns);
  if (n == nullptr) return NotFoundNs(ns);
  ReaderLock lock(&n->mu);
  CacheFeedbackState s;
  s.observations = n->feedback.size();
  for (const auto& o : n->feedback) s.wrong += o.correct ? 0 : 1;
  if (n->verify.max_error_rate > 0) {
    s.learned_min_confidence = n->learned.min_confidence;
    s.support = n->learned.support;
    s.error_bound = n->learned.error_bound;
  }
  s.min_confidence = n->MinConfidence();
  if (!id.empty()) {
    if (auto it = n->by_id.find(id); it != n->by_id.end()) s.entry_floor = n->entries[it->second].floor;
  }
  return s;
}

}  // namespace contextd
