#include "text/utf8.h"

#include <algorithm>
#include <cstdlib>

#include <utf8proc.h>

namespace contextd {

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t len = static_cast<utf8proc_ssize_t>(s.size());
  utf8proc_int32_t cp;
  while (len > 0) {
    // Plain ASCII is by far the common case; skip the decoder for it.
    if (*p < 0x80) {
      ++p;
      --len;
      continue;
    }
    utf8proc_ssize_t n = utf8proc_iterate(p, len, &cp);
    if (n < 0) return false;
    p += n;
    len -= n;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n > 0) {
      out.append(s.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

namespace {

std::string Map(std::string_view s, int options) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(s);
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

bool IsWordCategory(utf8proc_int32_t cp) {
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool IsSpace(utf8proc_int32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v') return true;
  if (cp < 0x80) return cp < 0x20 || cp == 0x7f;  // other controls separate words too
  auto cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP ||
         cat == UTF8PROC_CATEGORY_CC;
}

}  // namespace

std::string NormalizeNfc(std::string_view s) { return Map(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE); }

std::string FoldCase(std::string_view word) {
  bool ascii = true;
  for (char c : word) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    std::string out(word);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  return Map(word, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
}

size_t CharBoundaryFrom(std::string_view s, size_t at) {
  while (at < s.size() && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) ++at;
  return std::min(at, s.size());
}

bool IsBlankText(std::string_view text) {
  const auto* base = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const utf8proc_ssize_t size = static_cast<utf8proc_ssize_t>(text.size());
  for (utf8proc_ssize_t i = 0; i < size;) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(base + i, size - i, &cp);
    if (n < 0 || !IsSpace(cp)) return false;  // an invalid byte is a punctuation token
    i += n;
  }
  return true;
}

void PreTokenize(std::string_view text, std::vector<TokenSpan>* out) {
  out->clear();
  const auto* base = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const utf8proc_ssize_t size = static_cast<utf8proc_ssize_t>(text.size());
  utf8proc_ssize_t i = 0;
  bool in_word = false;
  size_t word_begin = 0;
  while (i < size) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n;
    const unsigned char b = base[i];
    if (b < 0x80) {
      cp = b;
      n = 1;
    } else {
      n = utf8proc_iterate(base + i, size - i, &cp);
      if (n < 0) {  // invalid byte: a one-byte punctuation token
        cp = -1;
        n = 1;
      }
    }
    bool word = cp >= 0 && (cp < 0x80 ? ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9')
                                      : IsWordCategory(cp));
    if (word) {
      if (!in_word) {
        in_word = true;
        word_begin = static_cast<size_t>(i);
      }
    } else {
      if (in_word) {
        out->push_back({word_begin, static_cast<size_t>(i), true});
        in_word = false;
      }
      if (cp < 0 || !IsSpace(cp)) {
        out->push_back({static_cast<size_t>(i), static_cast<size_t>(i + n), false});
      }
    }
    i += n;
  }
  if (in_word) out->push_back({word_begin, text.size(), true});
}

}  // namespace contextd
