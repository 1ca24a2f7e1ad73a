#include "engine/context.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "text/utf8.h"

namespace contextd {
namespace {

constexpr const char* kWaves[] = {"critical", "important", "relevant", "supplementary"};

// How much of a conversation turn joins the query: a few hundred words.
constexpr size_t kTurnQueryBytes = 2048;

// The last ~max_bytes of text, starting at a word (or at least a character) boundary.
std::string_view TailOfText(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t from = text.size() - max_bytes;
  const size_t space = text.find_first_of(" \t\n", from);
  if (space != std::string_view::npos && space - from < 64) return text.substr(space + 1);
  return text.substr(CharBoundaryFrom(text, from));
}

// Each candidate's relevance in [0, 1] relative to the best. Similarity scores keep their
// ratio to the top score. Rank-fused scores (1/(60 + rank) sums) sit within a few percent
// of each other, so their ratio would put every candidate in the first wave: they are
// min-max normalised over the candidates instead. Non-positive scores go by rank.
// A chunk pulled in by a citation (ref_of) ranks just under the hit that cites it.
std::vector<float> Relevance(const std::vector<QueryHit>& hits, bool rank_fused) {
  std::vector<float> rel(hits.size(), 0.0f);
  float top = -INFINITY, bottom = INFINITY;
  for (const auto& h : hits) {
    if (!h.ref_of.empty()) continue;
    top = std::max(top, h.score);
    bottom = std::min(bottom, h.score);
  }
  std::map<std::string, float> by_doc;  // each document's best relevance
  size_t rank = 0;
  for (size_t i = 0; i < hits.size(); ++i) {
    if (!hits[i].ref_of.empty()) continue;
    const float s = hits[i].score;
    if (rank_fused) {
      rel[i] = top > bottom ? (s - bottom) / (top - bottom) : 1.0f;
    } else if (top > 0 && s > 0) {
      rel[i] = s / top;
    } else {
      rel[i] = rank < 3 ? 1.0f : rank < 8 ? 0.7f : rank < 18 ? 0.5f : 0.0f;
    }
    ++rank;
    float& best = by_doc[hits[i].doc_id];
    best = std::max(best, rel[i]);
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    if (hits[i].ref_of.empty()) continue;
    auto it = by_doc.find(hits[i].ref_of);
    rel[i] = it == by_doc.end() ? 0.0f : 0.9f * it->second;
  }
  return rel;
}

// The wave of a candidate by its relevance: 0 critical .. 3 supplementary.
int WaveOf(float relevance) { return relevance >= 0.8f ? 0 : relevance >= 0.6f ? 1 : relevance >= 0.4f ? 2 : 3; }

// b appended to a without the text they share (a's longest suffix that is b's prefix):
// neighbouring chunks overlap by the chunker's overlap.
std::string JoinOverlapping(const std::string& a, const std::string& b) {
  const size_t max = std::min({a.size(), b.size(), size_t{4096}});
  for (size_t len = max; len >= 8; --len) {
    if (a.compare(a.size() - len, len, b, 0, len) == 0) return a + b.substr(len);
  }
  return a + "\n" + b;
}

// One piece per run of adjacent chunks of a document among `chosen` (hit indexes), best
// first; cost_of: each chosen chunk's tokens.
std::vector<ContextPiece> AssemblePieces(const std::vector<QueryHit>& hits, const std::vector<size_t>& chosen,
                                         const std::vector<float>& relevance, const std::vector<size_t>& cost_of,
                                         const TiktokenEncoder& tokenizer) {
  std::vector<ContextPiece> pieces;
  std::map<std::string, std::vector<size_t>> by_doc;
  for (size_t i : chosen) by_doc[hits[i].doc_id].push_back(i);
  for (auto& [doc, idx] : by_doc) {
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return hits[a].chunk < hits[b].chunk; });
    for (size_t i = 0; i < idx.size();) {
      ContextPiece p;
      p.doc_id = doc;
      p.first_chunk = p.last_chunk = hits[idx[i]].chunk;
      p.text = hits[idx[i]].text;
      size_t best = idx[i];
      size_t j = i + 1;
      for (; j < idx.size() && hits[idx[j]].chunk == p.last_chunk + 1; ++j) {
        p.text = JoinOverlapping(p.text, hits[idx[j]].text);
        p.last_chunk = hits[idx[j]].chunk;
        best = std::min(best, idx[j]);
      }
      p.score = hits[best].score;
      p.wave = kWaves[WaveOf(relevance[best])];
      // A lone chunk keeps its count; a merged text is counted anew (a join can tokenise
      // differently from its parts).
      p.tokens = j == i + 1 ? cost_of[idx[i]] : tokenizer.Count(p.text);
      pieces.push_back(std::move(p));
      i = j;
    }
  }
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const ContextPiece& a, const ContextPiece& b) { return a.score > b.score; });
  return pieces;
}

}  // namespace

StatusOr<ContextResult> BuildContext(const RequestContext& ctx, const CollectionHandle& collection,
                                     const TiktokenEncoder& tokenizer, const ContextRequest& request,
                                     const Clock* clock, const SessionTurnList& turns, const WaveCallback* on_wave) {
  const int64_t start = clock->NowNanos();
  // The body's max_ms and the request's own deadline (X-Request-Timeout-Ms), whichever
  // comes first; either stops the assembly with what it has.
  int64_t deadline = request.max_ms > 0 ? start + request.max_ms * 1000000 : 0;
  if (ctx.has_deadline() && (deadline == 0 || ctx.deadline_ns < deadline)) deadline = ctx.deadline_ns;
  ContextResult out;
  // The conversation first: newest turns within a quarter of the budget. A turn's tokens
  // were counted when it was written; one from before that is counted only as far as the
  // budget left, so a huge turn costs what the budget does.
  size_t turn_tokens = 0;
  for (size_t i = turns.size(); i-- > 0;) {
    const size_t room = request.max_tokens / 4 - turn_tokens;
    const size_t cost =
        turns[i]->tokens >= 0 ? static_cast<size_t>(turns[i]->tokens) : tokenizer.CountUpTo(turns[i]->content, room);
    if (cost > room) break;
    turn_tokens += cost;
    out.turns.insert(out.turns.begin(), ContextTurn{turns[i]->role, turns[i]->content, cost});
  }
  // The last two user turns sharpen the query: their last words (the question usually
  // comes last), so a pasted document does not become a megabyte-long query.
  std::string query_text;
  int user_turns = 0;
  for (size_t i = turns.size(); i-- > 0 && user_turns < 2;) {
    if (turns[i]->role != "user") continue;
    query_text = std::string(TailOfText(turns[i]->content, kTurnQueryBytes)) + "\n" + query_text;
    ++user_turns;
  }
  query_text += request.query;
  const size_t budget = request.max_tokens - turn_tokens;
  QueryRequest q;
  q.text = query_text;
  q.k = request.candidates;
  q.mode = request.mode;
  q.fusion = request.fusion;
  q.expand_refs = request.expand_refs;
  // The user's own words decide how hard to look; the conversation only adds terms.
  const QueryAnalysis analysis = AnalyzeQuery(request.query);
  const int64_t left_ms = deadline != 0 ? std::max<int64_t>(1, (deadline - clock->NowNanos()) / 1000000) : 0;
  CTX_ASSIGN_OR_RETURN(out.plan, RunPlan(request.strategy.value_or(analysis.strategy), analysis, q, request.mode_given,
                                         collection.has_embedder(), collection.config().sharding, left_ms, *clock,
                                         [&](const QueryRequest& step) { return collection.Query(ctx, step); }));
  auto& hits = out.plan.result.hits;
  out.candidates = hits.size();
  if (hits.empty()) {
    out.stopped = "exhausted";
    out.tokens = turn_tokens;
    return out;
  }
  std::vector<std::string> terms;
  collection.analyzer().Analyze(query_text, &terms);
  std::set<std::string> missing(terms.begin(), terms.end());
  std::vector<float> relevance = Relevance(hits, out.plan.result.rank_fused);
  if (request.expand_refs) {
    // Pulled chunks join the order by their relevance, so waves stay best first.
    std::vector<size_t> order(hits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return relevance[a] > relevance[b]; });
    std::vector<QueryHit> sorted;
    std::vector<float> sorted_rel;
    for (size_t i : order) {
      sorted.push_back(std::move(hits[i]));
      sorted_rel.push_back(relevance[i]);
    }
    hits = std::move(sorted);
    relevance = std::move(sorted_rel);
  }

  // Wave by wave: each chunk that fits, best first.
  std::vector<size_t> chosen;                   // hit indexes
  std::vector<size_t> cost_of(hits.size(), 0);  // tokens of each chosen chunk
  size_t used = 0;
  out.stopped = "exhausted";
  size_t next = 0;
  for (int wave = 0; wave < 4 && next < hits.size(); ++wave) {
    if (deadline != 0 && clock->NowNanos() >= deadline) {
      out.stopped = "deadline";
      break;
    }
    bool any = false;
    const size_t wave_start = chosen.size();
    for (; next < hits.size() && WaveOf(relevance[next]) <= wave; ++next) {
      const size_t cost = tokenizer.Count(hits[next].text);
      if (used + cost > budget) {
        out.stopped = "budget";
        continue;  // a later, shorter chunk may still fit
      }
      used += cost;
      cost_of[next] = cost;
      chosen.push_back(next);
      any = true;
      std::vector<std::string> chunk_terms;
      collection.analyzer().Analyze(hits[next].text, &chunk_terms);
      for (const auto& t : chunk_terms) missing.erase(t);
    }
    if (any) out.waves = wave + 1;
    if (on_wave != nullptr && any) {
      // Streaming: this wave's chunks as pieces now; earlier waves are already sent, so a
      // piece that merged longer than its parts and no longer fits is left out here.
      std::vector<size_t> fresh(chosen.begin() + static_cast<ptrdiff_t>(wave_start), chosen.end());
      std::vector<ContextPiece> pieces = AssemblePieces(hits, fresh, relevance, cost_of, tokenizer);
      std::vector<ContextPiece> sent;
      for (auto& p : pieces) {
        if (out.tokens + turn_tokens + p.tokens > request.max_tokens) continue;
        out.tokens += p.tokens;
        sent.push_back(p);
        out.pieces.push_back(std::move(p));
      }
      (*on_wave)(kWaves[wave], sent);
    }
    if (out.stopped == "budget") break;
    // Sufficient: every query term covered, and what is left scores under half the top.
    const bool covered = missing.empty();
    const bool little_left = next >= hits.size() || relevance[next] < 0.5f;
    if (covered && little_left && !chosen.empty()) {
      out.stopped = "sufficient";
      break;
    }
  }

  if (on_wave != nullptr) {
    out.tokens += turn_tokens;
  } else {
    out.pieces = AssemblePieces(hits, chosen, relevance, cost_of, tokenizer);
    // Should merged pieces have come out longer than their parts, the lowest-scoring go.
    out.tokens = turn_tokens;
    for (const auto& p : out.pieces) out.tokens += p.tokens;
    while (out.tokens > request.max_tokens && !out.pieces.empty()) {
      out.tokens -= out.pieces.back().tokens;
      out.pieces.pop_back();
    }
  }
  return out;
}

}  // namespace contextd
