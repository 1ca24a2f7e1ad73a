// Adaptive query routing: how hard to look for a query.
//
// AnalyzeQuery() scores a query's complexity from textual indicators (multi-part,
// comparative, temporal, synthesis, cross-domain, length) and picks a strategy:
//   simple    one routed search in the request's mode: hybrid where the collection has
//             vectors (its vector side routed). Not vector alone, as the issue first
//             said: with the default glove embedder vector-only nDCG@10 on SciFact is
//             0.28 against hybrid's 0.48-0.70 (BENCHMARKS.md), and BM25 adds ~0.2 ms;
//   moderate  hybrid search with MMR diversity over a wider routing;
//   complex   the query decomposed into sub-queries, each searched over every shard,
//             fused with the whole query's moderate results by reciprocal rank.
// RunPlan() climbs that ladder one step at a time, cheapest first, and checks the deadline
// before each step (a step already running is not interrupted). When the deadline has
// passed, the answer is the last finished step's results, marked as a fallback, instead
// of an error; a step that fails also falls back to the one before it.
//
// Thread safety: free functions; RunPlan calls `search` from the calling thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "engine/collection.h"

namespace contextd {

enum class Strategy { kSimple = 0, kModerate = 1, kComplex = 2 };
std::string_view StrategyName(Strategy s);
// "simple", "moderate" or "complex".
bool ParseStrategy(std::string_view name, Strategy* out);
// A request's "strategy": "auto" leaves *out empty (the query's analysis decides), a
// strategy's name sets it; false for anything else.
bool ParseStrategyChoice(std::string_view name, std::optional<Strategy>* out);

struct QueryAnalysis {
  float complexity = 0;
  std::vector<std::string> indicators;   // multi_part, comparative, temporal, synthesis, cross_domain, long
  std::vector<std::string> sub_queries;  // the parts of a multi-part or comparative query (2..4), else empty
  Strategy strategy = Strategy::kSimple;
};

// Complexity below 1 is simple, below 2 moderate, else complex.
QueryAnalysis AnalyzeQuery(std::string_view query);

struct PlanOptions {
  // Each strategy's deadline from the start of the plan; a request's own budget (max_ms)
  // lowers it.
  int64_t deadline_ms[3] = {100, 250, 1000};
  // Graph search breadth per strategy (0: the collection's default, 2k and at least 64).
  size_t ef[3] = {0, 128, 256};
  float mmr_lambda = 0.7f;
  // Moderate and complex steps widen the collection's routing by this factor (margins).
  float routing_widen = 1.5f;
};

struct PlannedSearch {
  QueryResult result;                        // the answer: hits, timings and cache of the step that gave it
  Strategy strategy = Strategy::kSimple;     // chosen (or forced)
  Strategy answered_by = Strategy::kSimple;  // whose results these are
  bool fallback = false;                     // a step was skipped (deadline) or failed
  std::string fallback_reason;
  QueryAnalysis analysis;
  std::vector<uint32_t> shards;  // every shard any step searched, ascending
  size_t shard_count = 1;
  size_t searches = 0;
};

using SearchFn = std::function<StatusOr<QueryResult>(const QueryRequest&)>;

// base: the query (text, k, filter, mode); force_mode: every step keeps base.mode, else
// the heavier steps use hybrid (keyword without vectors);
// vectors: the collection can search by vector (has an embedder or the query has one);
// routing: the collection's routing options, widened for the heavier steps.
// budget_ms: the caller's own time budget (0: none).
StatusOr<PlannedSearch> RunPlan(Strategy strategy, const QueryAnalysis& analysis, const QueryRequest& base,
                                bool force_mode, bool vectors, const ShardingOptions& routing, int64_t budget_ms,
                                const Clock& clock, const SearchFn& search, const PlanOptions& options = {});

}  // namespace contextd
