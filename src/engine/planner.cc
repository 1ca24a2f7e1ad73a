#include "engine/planner.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "engine/rerank.h"

namespace contextd {
namespace {

// Lowercased, with every run of non-alphanumerics (but '?' and ';') as one space, padded
// with spaces so phrases match on word boundaries: " difference between ".
std::string Normalise(std::string_view q) {
  std::string out = " ";
  for (char ch : q) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      out += static_cast<char>(std::tolower(c));
    } else if (c == '?' || c == ';') {
      if (out.back() != ' ') out += ' ';
      out += static_cast<char>(c);
      out += ' ';
    } else if (out.back() != ' ') {
      out += ' ';
    }
  }
  if (out.back() != ' ') out += ' ';
  return out;
}

bool AnyOf(const std::string& text, std::initializer_list<const char*> phrases) {
  for (const char* p : phrases) {
    if (text.find(std::string(" ") + p + " ") != std::string::npos) return true;
  }
  return false;
}

size_t Words(std::string_view s) {
  size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool w = std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
    n += w && !in;
    in = w;
  }
  return n;
}

bool HasYear(const std::string& t) {
  for (size_t i = 0; i + 6 <= t.size(); ++i) {
    if (t[i] == ' ' && t[i + 5] == ' ' && (t.compare(i + 1, 2, "19") == 0 || t.compare(i + 1, 2, "20") == 0) &&
        std::isdigit(static_cast<unsigned char>(t[i + 3])) && std::isdigit(static_cast<unsigned char>(t[i + 4])))
      return true;
  }
  return false;
}

// The query's parts: split at '?', ';' and the joining phrases, trimmed; parts without a
// word are dropped. Only a split into 2..4 parts is a decomposition.
std::vector<std::string> SplitParts(std::string_view query) {
  static const char* kJoins[] = {" and also ", " as well as ", " compared to ", " compared with ", " versus ", " vs. ",
                                 " vs ",       " and ",        " or "};
  std::vector<std::string> parts = {std::string(query)};
  auto split_on = [&](const std::string& sep, bool ignore_case) {
    std::vector<std::string> next;
    for (const auto& p : parts) {
      std::string lower = p;
      if (ignore_case)
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      size_t from = 0;
      for (size_t at; (at = lower.find(sep, from)) != std::string::npos; from = at + sep.size()) {
        next.push_back(p.substr(from, at - from));
      }
      next.push_back(p.substr(from));
    }
    parts = std::move(next);
  };
  split_on("?", false);
  split_on(";", false);
  for (const char* j : kJoins) split_on(j, true);
  std::vector<std::string> out;
  for (auto& p : parts) {
    const size_t b = p.find_first_not_of(" \t\r\n,.:");
    const size_t e = p.find_last_not_of(" \t\r\n,.:");
    if (b == std::string::npos || Words(p) == 0) continue;
    out.push_back(p.substr(b, e - b + 1));
  }
  if (out.size() < 2 || out.size() > 4) return {};
  return out;
}

std::string HitKey(const QueryHit& h) { return h.doc_id + "#" + std::to_string(h.chunk); }

void NoteShards(const QueryResult& r, PlannedSearch* out) {
  if (!r.route) return;
  out->shard_count = r.route->shard_count;
  for (uint32_t id : r.route->shards) {  // kept ascending, each id once
    auto at = std::lower_bound(out->shards.begin(), out->shards.end(), id);
    if (at == out->shards.end() || *at != id) out->shards.insert(at, id);
  }
}

// Reciprocal rank fusion of hit lists; the fused score is the RRF sum.
std::vector<QueryHit> FuseHits(const std::vector<const std::vector<QueryHit>*>& lists, size_t k) {
  std::map<std::string, std::pair<float, const QueryHit*>> fused;
  for (const auto* list : lists) {
    for (size_t r = 0; r < list->size(); ++r) {
      auto& slot = fused[HitKey((*list)[r])];
      slot.first += RrfTerm(r);
      if (slot.second == nullptr) slot.second = &(*list)[r];
    }
  }
  std::vector<std::pair<float, const QueryHit*>> ranked;
  for (auto& [key, v] : fused) ranked.push_back(v);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<QueryHit> out;
  for (size_t i = 0; i < ranked.size() && i < k; ++i) {
    QueryHit h = *ranked[i].second;
    h.score = ranked[i].first;
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace

std::string_view StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kSimple:
      return "simple";
    case Strategy::kModerate:
      return "moderate";
    case Strategy::kComplex:
      return "complex";
  }
  return "simple";
}

bool ParseStrategy(std::string_view name, Strategy* out) {
  for (Strategy s : {Strategy::kSimple, Strategy::kModerate, Strategy::kComplex}) {
    if (name == StrategyName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

bool ParseStrategyChoice(std::string_view name, std::optional<Strategy>* out) {
  if (name == "auto") {
    out->reset();
    return true;
  }
  Strategy s;
  if (!ParseStrategy(name, &s)) return false;
  *out = s;
  return true;
}

QueryAnalysis AnalyzeQuery(std::string_view query) {
  QueryAnalysis a;
  const std::string t = Normalise(query);
  auto indicator = [&](const char* name, float weight) {
    a.indicators.push_back(name);
    a.complexity += weight;
  };
  const size_t questions = std::count(t.begin(), t.end(), '?');
  a.sub_queries = SplitParts(query);
  const bool joined_questions = AnyOf(
      t, {"and how", "and why", "and what", "and which", "and when", "and where", "and who", "as well as", "and also"});
  const bool separated = (questions >= 2 || t.find(';') != std::string::npos) && a.sub_queries.size() >= 2;
  if (separated || joined_questions) indicator("multi_part", 1.0f);
  if (AnyOf(t, {"compare", "compared", "comparison", "versus", "vs", "difference between", "differences",
                "similarities", "contrast", "better than", "worse than", "more than", "less than", "rather than"}))
    indicator("comparative", 1.0f);
  if (HasYear(t) || AnyOf(t, {"before", "after", "since", "until", "during", "recent", "recently", "latest", "history",
                              "historical", "trend", "trends", "timeline", "evolution", "over time"}))
    indicator("temporal", 0.5f);
  if (AnyOf(t, {"summarize", "summarise", "summary", "overview", "explain", "why", "how does", "how do", "impact",
                "effect of", "effects of", "relationship", "implications", "pros and cons", "analyze", "analyse"}))
    indicator("synthesis", 0.75f);
  if (AnyOf(t, {"across", "interdisciplinary", "both", "between", "combined with", "in relation to"}))
    indicator("cross_domain", 0.5f);
  const size_t words = Words(query);
  if (words > 24)
    indicator("long", 1.0f);
  else if (words > 12)
    indicator("long", 0.5f);
  a.strategy = a.complexity < 1.0f ? Strategy::kSimple : a.complexity < 2.0f ? Strategy::kModerate : Strategy::kComplex;
  return a;
}

StatusOr<PlannedSearch> RunPlan(Strategy strategy, const QueryAnalysis& analysis, const QueryRequest& base,
                                bool force_mode, bool vectors, const ShardingOptions& routing, int64_t budget_ms,
                                const Clock& clock, const SearchFn& search, const PlanOptions& options) {
  PlannedSearch out;
  out.strategy = strategy;
  out.analysis = analysis;
  int64_t deadline_ms = options.deadline_ms[static_cast<int>(strategy)];
  if (budget_ms > 0) deadline_ms = std::min(deadline_ms, budget_ms);
  const int64_t deadline = clock.NowNanos() + deadline_ms * 1000000;
  auto step_request = [&](Strategy step, QueryMode wanted, const std::string& text) {
    QueryRequest q = base;
    q.text = text;
    if (!force_mode && step != Strategy::kSimple) q.mode = vectors ? wanted : QueryMode::kKeyword;
    if (base.ef == 0) q.ef = options.ef[static_cast<int>(step)];
    if (step != Strategy::kSimple) {
      ShardingOptions wide = routing;
      wide.clear_margin *= options.routing_widen;
      wide.probe_margin *= options.routing_widen;
      q.routing = wide;
    }
    return q;
  };
  auto late = [&] { return clock.NowNanos() >= deadline; };
  auto fall_back = [&](std::string reason) {
    out.fallback = true;
    out.fallback_reason = std::move(reason);
    return out;
  };

  // Step 1, the floor: one routed search in the base request's mode.
  CTX_ASSIGN_OR_RETURN(out.result, search(step_request(Strategy::kSimple, base.mode, base.text)));
  ++out.searches;
  NoteShards(out.result, &out);
  if (strategy == Strategy::kSimple) return out;

  // Step 2: hybrid with diversity over a wider routing.
  if (late()) return fall_back("deadline");
  QueryRequest moderate = step_request(Strategy::kModerate, QueryMode::kHybrid, base.text);
  moderate.mmr_lambda = options.mmr_lambda;
  auto m = search(moderate);
  ++out.searches;
  if (!m.ok()) return fall_back(m.status().message());
  out.result = std::move(m).value();
  out.answered_by = Strategy::kModerate;
  NoteShards(out.result, &out);
  if (strategy == Strategy::kModerate) return out;

  // Step 3: each part on its own, over every shard, fused with the whole query's list.
  std::vector<QueryResult> parts;
  for (const auto& part : analysis.sub_queries) {
    if (late()) return fall_back("deadline");
    QueryRequest q = step_request(Strategy::kComplex, QueryMode::kHybrid, part);
    q.all_shards = true;
    auto r = search(q);
    ++out.searches;
    if (!r.ok()) return fall_back(r.status().message());
    NoteShards(*r, &out);
    parts.push_back(std::move(r).value());
  }
  if (parts.empty()) {
    // Nothing to decompose: the whole query again, deeper and over every shard.
    if (late()) return fall_back("deadline");
    QueryRequest q = step_request(Strategy::kComplex, QueryMode::kHybrid, base.text);
    q.all_shards = true;
    q.k = std::min(kMaxK, base.k * 2);
    auto r = search(q);
    ++out.searches;
    if (!r.ok()) return fall_back(r.status().message());
    NoteShards(*r, &out);
    parts.push_back(std::move(r).value());
  }
  std::vector<const std::vector<QueryHit>*> lists = {&out.result.hits};
  for (const auto& p : parts) lists.push_back(&p.hits);
  out.result.hits = FuseHits(lists, base.k);
  out.result.rank_fused = true;
  out.answered_by = Strategy::kComplex;
  return out;
}

}  // namespace contextd
