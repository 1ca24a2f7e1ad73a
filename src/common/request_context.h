// RequestContext: what one request carries through every layer it reaches (server, engine,
// collections, planner, context assembly, embedders, remote providers): who asks (tenant,
// principal), by when the answer is needed (deadline), which trace it belongs to (W3C
// trace context), how urgent it is (priority), and what it has cost so far (usage).
//
// Layers below the server take `const RequestContext&`: they read the deadline and trace
// and add to `usage`, which is atomic because a request's shard searches run in parallel.
// Background work (verification, repair, tests) uses Background(): no deadline, no trace.
//
// Thread safety: the fields are set by the server before the request is handed on and
// then only read; `usage` may be added to from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace contextd {

// A request's place in the server's queues: interactive before default before batch (an
// API key's "priority"; requests without one are default). Batch is shed first.
enum class Priority { kInteractive, kDefault, kBatch };

// Counts tokens as a model's tokenizer would (cl100k_base: TiktokenEncoder), so usage is
// in the unit providers bill.
class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  virtual size_t Count(std::string_view text) const = 0;
  // min(Count(text), limit + 1): "more than limit" is all a budget needs to know, and an
  // implementation may stop early, so a huge text costs what the budget allows.
  virtual size_t CountUpTo(std::string_view text, size_t limit) const { return std::min(Count(text), limit + 1); }
};

// The cost of one request so far. Reported in responses as "usage".
struct Usage {
  // cl100k_base tokens of the texts sent to a metered embedder (a remote provider or a
  // queued native model); in-process GloVe and hashing cost no tokens.
  std::atomic<int64_t> embedding_tokens{0};
  // Candidate chunks ranked: each list's candidates before fusion, or the cached answer's.
  std::atomic<int64_t> chunks_scored{0};
  std::atomic<int64_t> bytes_written{0};  // bytes of the durable write batch
  std::atomic<int64_t> documents_written{0};
};

// W3C trace context (https://www.w3.org/TR/trace-context/): traceparent
// "00-{trace_id: 32 hex}-{parent_id: 16 hex}-{flags: 2 hex}".
struct TraceContext {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // the caller's span, or empty when this request started the trace
  std::string span_id;    // this request's span, 16 lowercase hex digits
  uint8_t flags = 0;      // bit 0: sampled

  // The caller's traceparent; nullopt when it is malformed (version ff, wrong lengths,
  // upper-case or non-hex digits, an all-zero id), so that a new trace is started.
  static std::optional<TraceContext> Parse(std::string_view traceparent);
  // A trace started here, or this request's span of the caller's trace (a new span id).
  static TraceContext Start();
  static TraceContext Continue(const TraceContext& caller);
  // This request's traceparent: echoed to the client, sent on to providers.
  std::string Header() const;
};

enum class Consistency { kEventual, kSession, kStrong };
// "eventual", "session", "strong"; false for anything else.
bool ParseConsistency(std::string_view name, Consistency* out);

class RequestContext {
 public:
  explicit RequestContext(const Clock* clock = SystemClock::Default()) : clock_(clock) {}
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  // No deadline, no trace, usage thrown away: for work no client waits on.
  static const RequestContext& Background();

  std::string tenant = "default";
  std::string principal = "anonymous";  // the API key's id once auth is on
  // The end user the request is for: the key's user_id, or the X-User-Id header a key may
  // set; empty when neither names one.
  std::string user;
  // The Idempotency-Key header: a replicated log applies writes with the same key once.
  std::string idempotency_key;
  // The X-Contextd-Write-Token header: the request reads only once this node has applied
  // that sequence (it sees the write that returned the token).
  uint64_t read_after = 0;
  // What the request must see: kEventual ignores the write token; kSession (the default)
  // waits for it; kStrong waits until this node has applied every write the log had
  // acknowledged when the request began.
  Consistency consistency = Consistency::kSession;
  // Headers the reply carries besides the handler's (rate-limit figures).
  std::vector<std::pair<std::string, std::string>> reply_headers;
  // The highest update-log sequence this request committed (its write token), 0 if none.
  mutable std::atomic<uint64_t> committed_sequence{0};
  void NoteCommitted(uint64_t sequence) const {
    uint64_t prev = committed_sequence.load();
    while (prev < sequence && !committed_sequence.compare_exchange_weak(prev, sequence)) {
    }
  }
  int64_t deadline_ns = 0;  // monotonic (Clock::NowNanos); 0: none
  TraceContext trace;
  Priority priority = Priority::kDefault;
  mutable Usage usage;
  // What the usage ledger records the request under, where the handler knows better than
  // the route: the operation ("query.hybrid"), the embedding model and the collection.
  std::string usage_operation, usage_model, usage_collection;
  // Set by the server; null (tokens not counted) in background work and tests.
  const TokenCounter* token_counter = nullptr;

  // Token rate limits. A handler declares the tokens its request will use (what it embeds,
  // or what /v1/context may return) once it has read the body and before the work starts;
  // they are charged then, in every scope or in none, and settled against `tokens_used`
  // after the reply. Set by the server where a token limit applies; null otherwise, when
  // declaring costs nothing.
  // A plain function and its two arguments rather than a std::function: set on every
  // request with a token limit, and a std::function holding the scopes would allocate.
  using ReserveFn = Status (*)(void* self, void* arg, RequestContext& ctx, int64_t tokens);
  ReserveFn reserve_fn = nullptr;
  void* reserve_self = nullptr;
  void* reserve_arg = nullptr;
  // exact: the declaration is also what is used (nothing to settle).
  Status ReserveTokens(int64_t tokens, bool exact) {
    if (reserve_fn == nullptr) return Status::Ok();
    CTX_RETURN_IF_ERROR(reserve_fn(reserve_self, reserve_arg, *this, tokens));
    tokens_reserved += tokens;
    if (exact) tokens_used += tokens;
    return Status::Ok();
  }
  bool limits_tokens() const { return reserve_fn != nullptr; }
  std::atomic<int64_t> tokens_reserved{0};
  // What the request used in the limits' sense (cl100k tokens embedded plus tokens
  // returned by /v1/context), as its handler counted it.
  std::atomic<int64_t> tokens_used{0};
  // The server's shutdown cut-off (monotonic ns, 0 while running), shared by every request:
  // past it CheckDeadline says Unavailable "shutting_down", so a write that could not be
  // answered before the process exits is not committed either.
  const std::atomic<int64_t>* shutdown_ns = nullptr;

  const Clock& clock() const { return *clock_; }
  bool has_deadline() const { return deadline_ns != 0; }
  bool Expired() const { return (deadline_ns != 0 && clock_->NowNanos() >= deadline_ns) || ShuttingDown(); }
  bool ShuttingDown() const {
    if (shutdown_ns == nullptr) return false;
    const int64_t at = shutdown_ns->load(std::memory_order_relaxed);
    return at != 0 && clock_->NowNanos() >= at;
  }
  // Milliseconds left (at least 1), or 0 when there is no deadline.
  int64_t RemainingMs() const;
  // DeadlineExceeded saying the deadline passed before `next_step`, when it has.
  Status CheckDeadline(std::string_view next_step) const;
  // Adds the tokens of `texts`, sent to a metered embedder, to usage.
  void CountEmbeddingTokens(const std::vector<std::string_view>& texts) const;

 private:
  const Clock* clock_;
};

}  // namespace contextd
