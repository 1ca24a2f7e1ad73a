// Chunker: splits a document into token-bounded windows with overlap, cutting at sentence
// boundaries where it can.
//
// Tokens here are the pre-tokenizer's words and punctuation marks (text/utf8.h), a close,
// model-independent stand-in for subword tokens (a word is 1.3 BPE tokens on average in
// English prose). Windows are byte ranges into the original text, so chunk text is always
// an exact substring and citations can point into the source.
//
// Thread safety: free function, safe for concurrent use.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace contextd {

struct ChunkingOptions {
  int max_tokens = 200;  // > 0
  int overlap = 20;      // >= 0 and < max_tokens
};

struct Chunk {
  size_t begin = 0;  // byte offsets into the text
  size_t end = 0;
  int tokens = 0;
};

// Returns the chunks of `text` in order; none when the text has no tokens.
std::vector<Chunk> ChunkText(std::string_view text, const ChunkingOptions& options);

// Number of pre-tokenizer tokens in `text`.
int CountTokens(std::string_view text);

}  // namespace contextd
