// Progressive context loading (/v1/context): the context an LLM prompt needs from a
// collection, within a token and time budget.
//
// The query planner (engine/planner.h) fetches candidates (chunks, best first) with the
// strategy the query's complexity calls for, or the one the request forces, within the
// time budget. They are sorted into relevance waves by their relevance relative to the
// best (critical >= 0.8, important >= 0.6, relevant >= 0.4, supplementary below), where
// relevance is the score for similarity scores and the min-max normalised score for
// rank-fused ones (whose ratios say nothing; see Relevance() in context.cc), and added
// wave by wave, best first, while they fit the token budget. After each wave a
// sufficiency test may stop early: every query term is covered by the context so far and
// the next wave's best score is under half the top score (little marginal gain). The
// deadline (max_ms) stops it too. Adjacent chunks of one document become one piece (their
// overlapping text once), with its citation: document id, chunk range, best score, wave.
// Token counts are cl100k_base's, of each piece's final text, and never exceed the budget.
//
// Thread safety: free function; safe for concurrent use.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "engine/collection.h"
#include "engine/planner.h"
#include "engine/sessions.h"
#include "text/tiktoken.h"

namespace contextd {

struct ContextRequest {
  std::string query;
  size_t max_tokens = 2000;
  int64_t max_ms = 0;  // 0: no deadline
  QueryMode mode = QueryMode::kHybrid;
  size_t candidates = 40;
  std::string session_id;            // when set, recent turns join the context and the query
  bool mode_given = false;           // "mode" was in the request: every plan step uses it
  std::optional<Strategy> strategy;  // "strategy": forced; absent or "auto": analysed
  bool expand_refs = false;          // cited documents' best chunks join the candidates
  Fusion fusion = Fusion::kAuto;     // hybrid steps' fusion ("fusion")
};

struct ContextPiece {
  std::string text;
  std::string doc_id;
  uint32_t first_chunk = 0, last_chunk = 0;
  float score = 0;
  std::string wave;  // critical | important | relevant | supplementary
  size_t tokens = 0;
};

struct ContextTurn {
  std::string role, content;
  size_t tokens = 0;
};

struct ContextResult {
  std::vector<ContextPiece> pieces;
  std::vector<ContextTurn> turns;  // the session's recent turns that fit, oldest first
  size_t tokens = 0;
  size_t candidates = 0;
  int waves = 0;        // waves (partly) used
  std::string stopped;  // sufficient | budget | deadline | exhausted
  PlannedSearch plan;   // the search behind it: strategy, fallback, and the answering
                        // step's result (mode, timings, cache, degraded)
};

// turns: the session's turns (oldest first), empty without a session. Up to a quarter of
// the budget goes to the newest turns that fit; the last two user turns join the query,
// so a follow-up ("and its side effects?") retrieves what the conversation is about.
// Streaming: called after each wave with the pieces it adds (wave name, pieces), as soon
// as the wave is decided; the result then holds the pieces in the order sent.
using WaveCallback = std::function<void(const char* wave, const std::vector<ContextPiece>& pieces)>;

// ctx: the request's deadline (with max_ms, the earlier stops the assembly), trace and usage.
StatusOr<ContextResult> BuildContext(const RequestContext& ctx, const CollectionHandle& collection,
                                     const TiktokenEncoder& tokenizer, const ContextRequest& request,
                                     const Clock* clock, const SessionTurnList& turns = {},
                                     const WaveCallback* on_wave = nullptr);

}  // namespace contextd
