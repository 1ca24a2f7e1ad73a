// Byte-pair-encoding tokenizer for OpenAI's tiktoken vocabularies (cl100k_base), so
// context budgets are counted in the tokens the model will see.
//
// Encode() = cl100k's pre-tokenizer (contractions, letter runs with one leading
// non-letter, numbers of up to three digits, punctuation runs, newlines and spaces, the
// pattern tiktoken uses, written out by hand over Unicode categories) followed by
// rank-ordered byte-pair merges within each piece, as tiktoken's _byte_pair_merge does.
// Decode() concatenates the tokens' bytes. Special tokens are not recognised in text.
//
// Thread safety: immutable after Load(); safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/request_context.h"
#include "common/status.h"

namespace contextd {

class TiktokenEncoder final : public TokenCounter {
 public:
  // A .tiktoken file: one "base64(token bytes) rank" per line.
  static StatusOr<std::unique_ptr<TiktokenEncoder>> Load(const std::string& path);

  std::vector<uint32_t> Encode(std::string_view text) const;
  // Tokens without building the list.
  size_t Count(std::string_view text) const override;
  std::string Decode(const std::vector<uint32_t>& tokens) const;
  size_t vocab_size() const { return by_rank_.size(); }
  // The bytes of one token (not always whole UTF-8 characters). REQUIRES: id < vocab_size().
  std::string_view TokenBytes(uint32_t id) const { return by_rank_[id]; }

  // The pre-tokenizer alone (byte ranges of the pieces), for tests.
  std::vector<std::string_view> Split(std::string_view text) const;

 private:
  TiktokenEncoder() = default;
  void EncodePiece(std::string_view piece, std::vector<uint32_t>* out) const;

  std::unordered_map<std::string, uint32_t> ranks_;
  std::vector<std::string> by_rank_;
};

}  // namespace contextd
