// WordPiece tokenizer, matching Hugging Face's BertTokenizer (and its fast twin configured
// by tokenizer.json: BertNormalizer + BertPreTokenizer + WordPiece):
//   clean-up (drop NUL, U+FFFD and control characters; whitespace becomes a space),
//   spaces around CJK ideographs, whitespace split, lowercasing and accent stripping (NFD,
//   drop Mn) when configured, a split at every punctuation character, then greedy
//   longest-match-first WordPiece with the "##" prefix; a word over 100 characters, or one
//   with no segmentation, is [UNK]. Encode() adds [CLS] ... [SEP] and truncates.
//
// Invalid UTF-8 bytes are read as U+FFFD, which the clean-up drops.
//
// Thread safety: immutable after construction; Encode() is safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace contextd {

struct WordPieceOptions {
  bool lowercase = true;
  bool strip_accents = true;  // Hugging Face: strip_accents = null follows lowercase
  bool handle_chinese_chars = true;
  bool clean_text = true;
  size_t max_chars_per_word = 100;
  std::string prefix = "##";
  std::string unk = "[UNK]", cls = "[CLS]", sep = "[SEP]", pad = "[PAD]";
};

class WordPieceTokenizer {
 public:
  // vocab: token strings by id.
  static StatusOr<std::unique_ptr<WordPieceTokenizer>> Create(std::vector<std::string> vocab, WordPieceOptions options);
  // A model directory: tokenizer.json when present (its normalizer and WordPiece model),
  // else vocab.txt with tokenizer_config.json's do_lower_case / strip_accents.
  static StatusOr<std::unique_ptr<WordPieceTokenizer>> FromDir(const std::string& dir);

  // [CLS] pieces [SEP], at most max_len ids (max_len >= 2).
  std::vector<int32_t> Encode(std::string_view text, size_t max_len) const;
  // The words after normalisation and pre-tokenisation (before WordPiece), for tests.
  std::vector<std::string> PreTokenize(std::string_view text) const;

  size_t vocab_size() const { return vocab_.size(); }
  int32_t pad_id() const { return pad_id_; }
  const std::string& token(int32_t id) const { return vocab_[static_cast<size_t>(id)]; }

 private:
  WordPieceTokenizer() = default;
  void AppendWordPieces(const std::string& word, std::vector<int32_t>* ids) const;

  WordPieceOptions options_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, pad_id_ = 0;
};

}  // namespace contextd
