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
  // Stops counting once past `limit`: the first ~limit tokens' worth of text is read, not all.
  size_t CountUpTo(std::string_view text, size_t limit) const override;
  std::string Decode(const std::vector<uint32_t>& tokens) const;
  size_t vocab_size() const { return by_rank_.size(); }
  // The bytes of one token (not always whole UTF-8 characters). REQUIRES: id < vocab_size().
  std::string_view TokenBytes(uint32_t id) const { return by_rank_[id]; }

  // The pre-tokenizer alone (byte ranges of the pieces), for tests.
  std::vector<std::string_view> Split(std::string_view text) const;

  // Work and memory are bounded whatever the input: text is pre-tokenized in blocks of
  // about kBlockBytes, cut where a letter meets a space (where a piece always ends, so the
  // result is exact), or, in text with no such place within kBlockSlackBytes, at a
  // character boundary; and byte-pair merging, quadratic in a piece's length, works on at
  // most kMaxMergeBytes of a piece at a time. Only text without a space between letters
  // for kilobytes (never prose or code) can encode differently from tiktoken.
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr size_t kBlockSlackBytes = 4 * 1024;
  static constexpr size_t kMaxMergeBytes = 512;
  // Where the block starting at `from` ends. For tests.
  static size_t BlockEnd(std::string_view text, size_t from);

 private:
  TiktokenEncoder() = default;
  void EncodePiece(std::string_view piece, std::vector<uint32_t>* out) const;
  void MergePiece(std::string_view piece, std::vector<uint32_t>* out) const;
  // Calls fn(tokens of one block) block by block until it returns false.
  template <typename Fn>
  void ForEachBlock(std::string_view text, Fn fn) const;

  std::unordered_map<std::string, uint32_t> ranks_;
  std::vector<std::string> by_rank_;
};

}  // namespace contextd
