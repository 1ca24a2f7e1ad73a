#include "encoder/wordpiece.h"

#include <fstream>

#include <utf8proc.h>

#include "common/json.h"

namespace contextd {
namespace {

// Hugging Face's _is_chinese_char: the CJK Unified Ideographs blocks and their extensions
// and compatibility ideographs (not Hiragana, Katakana or Hangul, which are words).
bool IsCjk(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool IsWhitespace(int32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

bool IsControl(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  const auto c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF;
}

// ASCII symbols count as punctuation even where Unicode calls them symbols ($, ^, `...).
bool IsPunctuation(int32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
    return true;
  const auto c = utf8proc_category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

// Code points of `s`; an invalid byte becomes U+FFFD.
std::vector<int32_t> Decode(std::string_view s) {
  std::vector<int32_t> out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    if (*p < 0x80) {
      out.push_back(*p++);
      --left;
      continue;
    }
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {
      out.push_back(0xFFFD);
      ++p;
      --left;
      continue;
    }
    out.push_back(cp);
    p += n;
    left -= n;
  }
  return out;
}

void AppendUtf8(int32_t cp, std::string* out) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(cp, buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

// Lowercase and/or strip accents (NFD, then drop nonspacing marks) of one word.
std::vector<int32_t> NormalizeWord(const std::vector<int32_t>& word, bool lower, bool strip) {
  std::vector<int32_t> out;
  out.reserve(word.size());
  for (int32_t cp : word) {
    if (lower) cp = utf8proc_tolower(cp);
    if (!strip || cp < 0x80) {
      out.push_back(cp);
      continue;
    }
    utf8proc_int32_t decomposed[8];
    int last_boundclass = 0;
    const utf8proc_ssize_t n = utf8proc_decompose_char(
        cp, decomposed, 8, static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE), &last_boundclass);
    if (n <= 0 || n > 8) {
      out.push_back(cp);
      continue;
    }
    for (utf8proc_ssize_t i = 0; i < n; ++i) {
      if (utf8proc_category(decomposed[i]) != UTF8PROC_CATEGORY_MN) out.push_back(decomposed[i]);
    }
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Create(std::vector<std::string> vocab,
                                                                         WordPieceOptions options) {
  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());
  t->options_ = std::move(options);
  t->vocab_ = std::move(vocab);
  for (size_t i = 0; i < t->vocab_.size(); ++i) t->ids_.emplace(t->vocab_[i], static_cast<int32_t>(i));
  auto id = [&](const std::string& tok, int32_t* out) -> Status {
    auto it = t->ids_.find(tok);
    if (it == t->ids_.end()) return InvalidArgument("the vocabulary has no " + tok + " token");
    *out = it->second;
    return Status::Ok();
  };
  CTX_RETURN_IF_ERROR(id(t->options_.unk, &t->unk_id_));
  CTX_RETURN_IF_ERROR(id(t->options_.cls, &t->cls_id_));
  CTX_RETURN_IF_ERROR(id(t->options_.sep, &t->sep_id_));
  CTX_RETURN_IF_ERROR(id(t->options_.pad, &t->pad_id_));
  return t;
}

StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromDir(const std::string& dir) {
  WordPieceOptions o;
  std::vector<std::string> vocab;
  const std::string file = dir + "/tokenizer.json";
  auto json = ReadJsonFile(file);
  if (json.status().code() != StatusCode::kNotFound) {
    if (!json.ok()) return json.status();
    const Json* model = json->Find("model");
    const Json* type = model != nullptr ? model->Find("type") : nullptr;
    if (type == nullptr || !type->is_string() || type->as_string() != "WordPiece")
      return InvalidArgument(file + ": model.type must be WordPiece (only BERT-family tokenizers are supported)");
    const Json* v = model->Find("vocab");
    if (v == nullptr || !v->is_object() || v->as_object().empty())
      return InvalidArgument(file + ": model.vocab is missing or empty");
    vocab.resize(v->as_object().size());
    for (const auto& [tok, idj] : v->as_object()) {
      if (!idj.is_int() || idj.as_int() < 0 || static_cast<size_t>(idj.as_int()) >= vocab.size())
        return InvalidArgument(file + ": model.vocab id of '" + tok + "' is out of range");
      vocab[static_cast<size_t>(idj.as_int())] = tok;
    }
    if (const Json* u = model->Find("unk_token"); u != nullptr && u->is_string()) o.unk = u->as_string();
    if (const Json* p = model->Find("continuing_subword_prefix"); p != nullptr && p->is_string())
      o.prefix = p->as_string();
    if (const Json* m = model->Find("max_input_chars_per_word"); m != nullptr && m->is_int())
      o.max_chars_per_word = static_cast<size_t>(m->as_int());
    if (const Json* n = json->Find("normalizer"); n != nullptr && n->is_object()) {
      auto flag = [&](const char* key, bool* out) {
        if (const Json* f = n->Find(key); f != nullptr && f->is_bool()) *out = f->as_bool();
      };
      flag("lowercase", &o.lowercase);
      o.strip_accents = o.lowercase;
      flag("strip_accents", &o.strip_accents);
      flag("clean_text", &o.clean_text);
      flag("handle_chinese_chars", &o.handle_chinese_chars);
    }
    return Create(std::move(vocab), std::move(o));
  }
  const std::string vocab_path = dir + "/vocab.txt";
  std::ifstream in(vocab_path);
  if (!in) return NotFound(dir + " has neither tokenizer.json nor vocab.txt");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(line);
  }
  if (vocab.empty()) return InvalidArgument(vocab_path + " is empty");
  auto config = ReadJsonFile(dir + "/tokenizer_config.json");
  if (config.status().code() != StatusCode::kNotFound) {
    if (!config.ok()) return config.status();
    if (const Json* f = config->Find("do_lower_case"); f != nullptr && f->is_bool()) o.lowercase = f->as_bool();
    o.strip_accents = o.lowercase;
    if (const Json* f = config->Find("strip_accents"); f != nullptr && f->is_bool()) o.strip_accents = f->as_bool();
  }
  return Create(std::move(vocab), std::move(o));
}

std::vector<std::string> WordPieceTokenizer::PreTokenize(std::string_view text) const {
  // Clean-up and CJK spacing, as code points.
  std::vector<int32_t> cps;
  for (int32_t cp : Decode(text)) {
    if (options_.clean_text && (cp == 0 || cp == 0xFFFD || IsControl(cp))) continue;
    if (IsWhitespace(cp)) {
      cps.push_back(' ');
    } else if (options_.handle_chinese_chars && IsCjk(cp)) {
      cps.push_back(' ');
      cps.push_back(cp);
      cps.push_back(' ');
    } else {
      cps.push_back(cp);
    }
  }
  std::vector<std::string> words;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  for (size_t i = 0; i < cps.size();) {
    if (cps[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && cps[j] != ' ') ++j;
    const std::vector<int32_t> word =
        NormalizeWord({cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j)},
                      options_.lowercase, options_.strip_accents);
    for (int32_t cp : word) {
      if (IsPunctuation(cp)) {
        flush();
        AppendUtf8(cp, &current);
        flush();
      } else {
        AppendUtf8(cp, &current);
      }
    }
    flush();
    i = j;
  }
  return words;
}

void WordPieceTokenizer::AppendWordPieces(const std::string& word, std::vector<int32_t>* ids) const {
  // Byte offsets of the word's characters (plus its end), so pieces are whole characters.
  std::vector<size_t> bounds;
  for (size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
  }
  const size_t chars = bounds.size();
  bounds.push_back(word.size());
  if (chars > options_.max_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t mark = ids->size();
  std::string piece;
  for (size_t start = 0; start < chars;) {
    int32_t found = -1;
    size_t end = chars;
    for (; end > start; --end) {
      piece.clear();
      if (start > 0) piece = options_.prefix;
      piece.append(word, bounds[start], bounds[end] - bounds[start]);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids->resize(mark);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    start = end;
  }
}

std::vector<int32_t> WordPieceTokenizer::Encode(std::string_view text, size_t max_len) const {
  std::vector<int32_t> ids = {cls_id_};
  const size_t limit = max_len < 2 ? 1 : max_len - 1;  // room for [SEP]
  for (const std::string& word : PreTokenize(text)) {
    AppendWordPieces(word, &ids);
    if (ids.size() >= limit) break;
  }
  if (ids.size() > limit) ids.resize(limit);
  ids.push_back(sep_id_);
  return ids;
}

}  // namespace contextd
