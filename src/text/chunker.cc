#include "text/chunker.h"

#include "common/memory.h"

#include <algorithm>

#include "text/utf8.h"

namespace contextd {
namespace {

// A sentence ends after '.', '!' or '?' (and any closing quotes or brackets) when
// whitespace follows, and at a paragraph break.
std::vector<size_t> SentenceStarts(std::string_view text, const std::vector<TokenSpan>& toks) {
  std::vector<size_t> starts = {0};
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    const TokenSpan& t = toks[i];
    const TokenSpan& next = toks[i + 1];
    std::string_view gap = text.substr(t.end, next.begin - t.end);
    bool paragraph = gap.find("\n\n") != std::string_view::npos || gap.find("\r\n\r\n") != std::string_view::npos;
    bool terminal = false;
    if (!t.is_word && !gap.empty()) {
      char c = text[t.begin];
      if (c == '.' || c == '!' || c == '?') terminal = true;
      if ((c == '"' || c == '\'' || c == ')' || c == ']') && i > 0 && !toks[i - 1].is_word) {
        char p = text[toks[i - 1].begin];
        terminal = p == '.' || p == '!' || p == '?';
      }
    }
    if (paragraph || terminal) starts.push_back(i + 1);
  }
  return starts;
}

}  // namespace

int CountTokens(std::string_view text) {
  thread_local std::vector<TokenSpan> toks;
  PreTokenize(text, &toks);
  const int n = static_cast<int>(toks.size());
  ShrinkScratch(&toks);
  return n;
}

std::vector<Chunk> ChunkText(std::string_view text, const ChunkingOptions& options) {
  std::vector<TokenSpan> toks;
  PreTokenize(text, &toks);
  std::vector<Chunk> chunks;
  const size_t n = toks.size();
  if (n == 0) return chunks;
  const size_t max_tokens = static_cast<size_t>(std::max(1, options.max_tokens));
  const size_t overlap = std::min(static_cast<size_t>(std::max(0, options.overlap)), max_tokens - 1);
  std::vector<size_t> starts = SentenceStarts(text, toks);
  starts.push_back(n);  // sentinel: the end of the last sentence

  size_t start = 0;
  while (start < n) {
    // Extend by whole sentences while they fit.
    size_t end = start;
    auto it = std::upper_bound(starts.begin(), starts.end(), start);
    for (; it != starts.end() && *it - start <= max_tokens; ++it) end = *it;
    // No sentence boundary fits: cut the long sentence at the token limit.
    if (end == start) end = std::min(n, start + max_tokens);
    chunks.push_back({toks[start].begin, toks[end - 1].end, static_cast<int>(end - start)});
    if (end >= n) break;
    // The next window begins `overlap` tokens back, moved forward to a sentence start when one
    // lies inside the overlap, so that the repeated context is whole sentences.
    size_t next = end > overlap ? end - overlap : 0;
    auto s = std::lower_bound(starts.begin(), starts.end(), next);
    if (s != starts.end() && *s < end) next = *s;
    if (next <= start) next = end;  // always make progress
    start = next;
  }
  return chunks;
}

}  // namespace contextd
