#include "text/tiktoken.h"

#include <utf8proc.h>

#include <cstdlib>
#include <fstream>
#include <limits>

#include "common/base64.h"
#include "text/utf8.h"

namespace contextd {
namespace {

// Character classes of the cl100k pattern, worked out once per character.
enum : uint8_t { kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8 };

// One decoded character: code point, byte range and classes.
struct Char {
  int32_t cp;
  size_t begin, end;
  uint8_t cls;
};

uint8_t ClassOf(int32_t cp) {
  uint8_t cls = 0;
  if (cp == '\r' || cp == '\n') cls |= kNewline;
  // \s: Unicode White_Space.
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85) cls |= kSpace;
  const auto c = utf8proc_category(cp);
  if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) cls |= kLetter;
  if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) cls |= kNumber;
  if (c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP) cls |= kSpace;
  return cls;
}

// ASCII classes from a table: most text is mostly ASCII, and the category lookup was most
// of the tokenizer's time.
struct AsciiClasses {
  uint8_t cls[128];
  AsciiClasses() {
    for (int32_t c = 0; c < 128; ++c) cls[c] = ClassOf(c);
  }
};

std::vector<Char> DecodeChars(std::string_view s) {
  static const AsciiClasses ascii;
  std::vector<Char> out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      out.push_back({p[i], i, i + 1, ascii.cls[p[i]]});
      ++i;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {  // an invalid byte stands alone (its bytes still get encoded)
      cp = 0xFFFD;
      n = 1;
    }
    out.push_back({cp, i, i + static_cast<size_t>(n), ClassOf(cp)});
    i += static_cast<size_t>(n);
  }
  return out;
}

bool IsLetter(const Char& c) { return c.cls & kLetter; }
bool IsNumber(const Char& c) { return c.cls & kNumber; }
bool IsSpace(const Char& c) { return c.cls & kSpace; }
bool IsNewline(const Char& c) { return c.cls & kNewline; }

}  // namespace

StatusOr<std::unique_ptr<TiktokenEncoder>> TiktokenEncoder::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read the tokenizer file " + path);
  std::unique_ptr<TiktokenEncoder> e(new TiktokenEncoder());
  std::string line, bytes;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    char* end = nullptr;
    const unsigned long rank = space == std::string::npos ? 0 : std::strtoul(line.c_str() + space + 1, &end, 10);
    if (space == std::string::npos || end == line.c_str() + space + 1 || *end != '\0' || rank > 10000000 ||
        !DecodeBase64(std::string_view(line).substr(0, space), &bytes))
      return InvalidArgument(path + ":" + std::to_string(line_no) + ": expected 'base64 rank'");
    if (rank >= e->by_rank_.size()) e->by_rank_.resize(rank + 1);
    e->by_rank_[rank] = bytes;
    e->ranks_.emplace(bytes, static_cast<uint32_t>(rank));
  }
  if (e->ranks_.size() < 256) return InvalidArgument(path + " does not hold a byte-level BPE vocabulary");
  return e;
}

std::vector<std::string_view> TiktokenEncoder::Split(std::string_view text) const {
  // The cl100k_base pattern, alternative by alternative (first match wins):
  //   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3}
  //   | ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
  const std::vector<Char> cs = DecodeChars(text);
  const size_t n = cs.size();
  std::vector<std::string_view> out;
  auto lower = [&](size_t i) { return i < n && cs[i].cp < 128 ? std::tolower(cs[i].cp) : -1; };
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    const int32_t c = cs[i].cp;
    const Char& ch = cs[i];
    // 1. Contractions.
    if (c == '\'') {
      const int a = lower(i + 1), b = lower(i + 2);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        j = i + 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        j = i + 3;
      }
    }
    // 2. Letters, with at most one leading character that is not a newline, letter or digit.
    if (j == i) {
      size_t k = i;
      if (!IsLetter(ch) && !IsNewline(ch) && !IsNumber(ch) && i + 1 < n && IsLetter(cs[i + 1])) k = i + 1;
      if (IsLetter(cs[k])) {
        while (k < n && IsLetter(cs[k])) ++k;
        j = k;
      }
    }
    // 3. One to three digits.
    if (j == i && IsNumber(ch)) {
      while (j < n && j < i + 3 && IsNumber(cs[j])) ++j;
    }
    // 4. An optional space, punctuation (neither space, letter nor digit), trailing newlines.
    if (j == i) {
      size_t k = i;
      if (c == ' ' && i + 1 < n) k = i + 1;
      auto punct = [&](size_t x) { return (cs[x].cls & (kSpace | kLetter | kNumber)) == 0; };
      if (k < n && punct(k)) {
        while (k < n && punct(k)) ++k;
        while (k < n && IsNewline(cs[k])) ++k;
        j = k;
      }
    }
    if (j == i && IsSpace(ch)) {
      size_t run = i;
      while (run < n && IsSpace(cs[run])) ++run;
      // 5. Whitespace up to and including its last newline.
      size_t last_newline = run;
      for (size_t k = i; k < run; ++k) {
        if (IsNewline(cs[k])) last_newline = k;
      }
      if (last_newline < run) {
        j = last_newline + 1;
      } else if (run == n) {
        j = run;  // 6. trailing whitespace, all of it
      } else if (run - i > 1) {
        j = run - 1;  // 6. leaves one space for the next piece
      } else {
        j = run;  // 7.
      }
    }
    if (j == i) j = i + 1;  // unreachable for valid patterns; never loop forever
    out.push_back(text.substr(cs[i].begin, cs[j - 1].end - cs[i].begin));
    i = j;
  }
  return out;
}

size_t TiktokenEncoder::BlockEnd(std::string_view text, size_t from) {
  if (text.size() - from <= kBlockBytes + kBlockSlackBytes) return text.size();
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  // A piece that holds a letter ends at the next non-letter, and a piece starts at a space
  // whatever precedes it: cutting between the two changes nothing.
  for (size_t cut = from + kBlockBytes; cut < from + kBlockBytes + kBlockSlackBytes; ++cut) {
    if (text[cut] == ' ' && letter(text[cut - 1])) return cut;
  }
  return CharBoundaryFrom(text, from + kBlockBytes + kBlockSlackBytes);
}

template <typename Fn>
void TiktokenEncoder::ForEachBlock(std::string_view text, Fn fn) const {
  std::vector<uint32_t> tokens;
  for (size_t from = 0; from < text.size();) {
    const size_t end = BlockEnd(text, from);
    tokens.clear();
    for (std::string_view piece : Split(text.substr(from, end - from))) EncodePiece(piece, &tokens);
    if (!fn(tokens)) return;
    from = end;
  }
}

void TiktokenEncoder::EncodePiece(std::string_view piece, std::vector<uint32_t>* out) const {
  if (auto it = ranks_.find(std::string(piece)); it != ranks_.end()) {
    out->push_back(it->second);
    return;
  }
  for (size_t at = 0; at < piece.size(); at += kMaxMergeBytes) MergePiece(piece.substr(at, kMaxMergeBytes), out);
}

void TiktokenEncoder::MergePiece(std::string_view piece, std::vector<uint32_t>* out) const {
  // Byte-pair merges: parts start as single bytes; repeatedly merge the adjacent pair
  // whose concatenation has the lowest rank.
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  std::vector<size_t> starts;  // part boundaries, plus the end
  for (size_t i = 0; i <= piece.size(); ++i) starts.push_back(i);
  auto rank_of = [&](size_t a) -> uint32_t {  // rank of parts a and a+1 merged
    if (a + 2 >= starts.size()) return kNone;
    auto it = ranks_.find(std::string(piece.substr(starts[a], starts[a + 2] - starts[a])));
    return it == ranks_.end() ? kNone : it->second;
  };
  std::vector<uint32_t> pair_rank(starts.size());
  for (size_t a = 0; a < starts.size(); ++a) pair_rank[a] = rank_of(a);
  while (starts.size() > 2) {
    size_t best = 0;
    uint32_t best_rank = kNone;
    for (size_t a = 0; a + 2 < starts.size(); ++a) {
      if (pair_rank[a] < best_rank) {
        best_rank = pair_rank[a];
        best = a;
      }
    }
    if (best_rank == kNone) break;
    starts.erase(starts.begin() + static_cast<std::ptrdiff_t>(best + 1));
    pair_rank.erase(pair_rank.begin() + static_cast<std::ptrdiff_t>(best + 1));
    pair_rank[best] = rank_of(best);
    if (best > 0) pair_rank[best - 1] = rank_of(best - 1);
  }
  for (size_t a = 0; a + 1 < starts.size(); ++a) {
    auto it = ranks_.find(std::string(piece.substr(starts[a], starts[a + 1] - starts[a])));
    // Every single byte has a rank in a byte-level vocabulary.
    out->push_back(it != ranks_.end() ? it->second : 0);
  }
}

std::vector<uint32_t> TiktokenEncoder::Encode(std::string_view text) const {
  std::vector<uint32_t> out;
  ForEachBlock(text, [&](const std::vector<uint32_t>& tokens) {
    out.insert(out.end(), tokens.begin(), tokens.end());
    return true;
  });
  return out;
}

size_t TiktokenEncoder::Count(std::string_view text) const { return CountUpTo(text, SIZE_MAX - 1); }

size_t TiktokenEncoder::CountUpTo(std::string_view text, size_t limit) const {
  size_t n = 0;
  ForEachBlock(text, [&](const std::vector<uint32_t>& tokens) {
    n += tokens.size();
    return n <= limit;
  });
  return std::min(n, limit + 1);
}

std::string TiktokenEncoder::Decode(const std::vector<uint32_t>& tokens) const {
  std::string out;
  for (uint32_t t : tokens) {
    if (t < by_rank_.size()) out += by_rank_[t];
  }
  return out;
}

}  // namespace contextd
