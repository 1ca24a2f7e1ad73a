// Embedder: turns texts into fixed-size vectors. Batch-first, FAISS style.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/request_context.h"
#include "common/status.h"

namespace contextd {

// Queries wait on their embedding; ingestion can wait longer. Batching services serve
// kQuery first.
enum class EmbedPriority { kQuery, kBulk };

struct EmbedOptions {
  EmbedPriority priority = EmbedPriority::kBulk;
  // Monotonic (SystemClock::NowNanos) time by which the caller needs the answer; 0 = none.
  // Services that queue or call remote providers give up with DeadlineExceeded after it.
  int64_t deadline_ns = 0;
  // The request's W3C traceparent, sent on to remote providers; empty: none. A batch that
  // serves several requests carries the first one's.
  std::string traceparent = {};
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  // The model identity stored with a collection ("glove-6b-100d", "hash-256"); vectors of
  // different models are never mixed.
  virtual std::string model() const = 0;
  virtual int dim() const = 0;
  // texts: n strings. out: n * dim() floats, caller-owned. Every output row has unit L2
  // norm, or is all zeros when the text carries nothing the model knows.
  virtual Status Embed(const std::vector<std::string_view>& texts, float* out) const = 0;
  // Embed() with a priority and a deadline; embedders that neither queue nor wait ignore
  // them (the default).
  // True when Embed() mostly waits (on a remote provider or a batching queue) rather than
  // computes: callers keep such calls off the few CPU-bound search threads.
  virtual bool waits() const { return false; }
  // True for Matryoshka-trained models (OpenAI's text-embedding-3, nomic-embed v1.5, ...):
  // a prefix of a vector, renormalised, is itself a good embedding, so /v1/embeddings may
  // honour a smaller "dimensions". Other models' prefixes are not, so it is refused.
  virtual bool truncatable() const { return false; }
  virtual Status EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options, float* out) const {
    (void)options;
    return Embed(texts, out);
  }
};

// The options for embedding on behalf of a request: its deadline, and its traceparent when
// `embedder` waits (a provider or batcher passes it on; in-process models have no use for
// it, and a query's hot path skips building it).
inline EmbedOptions EmbedOptionsFor(const RequestContext& ctx, EmbedPriority priority, const Embedder& embedder) {
  EmbedOptions options;
  options.priority = priority;
  options.deadline_ns = ctx.deadline_ns;
  if (embedder.waits() && !ctx.trace.trace_id.empty()) options.traceparent = ctx.trace.Header();
  return options;
}

}  // namespace contextd
