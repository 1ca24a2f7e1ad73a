// UTF-8 validation, normalisation and the word pre-tokenizer shared by the analyzer, the
// chunker and the GloVe embedder.
//
// Thread safety: free functions, safe for concurrent use.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace contextd {

bool IsValidUtf8(std::string_view s);
// The first offset at or after `at` that does not fall inside a character (a byte that is
// not a continuation byte), or s.size(): where a cut leaves whole characters on both sides.
size_t CharBoundaryFrom(std::string_view s, size_t at);
// `s` with each byte that starts no valid character replaced by U+FFFD (token bytes
// decoded from ids can split a character; JSON replies must stay valid UTF-8).
std::string ToValidUtf8(std::string_view s);

// Unicode NFC normalisation; returns the input unchanged if it is not valid UTF-8.
std::string NormalizeNfc(std::string_view s);

// A token of the pre-tokenizer: a run of letters, digits and combining marks (a word), or
// one other visible character (punctuation). Offsets are bytes into the input.
struct TokenSpan {
  size_t begin = 0;
  size_t end = 0;
  bool is_word = false;
};

// True when PreTokenize finds no token in `text`: it holds only whitespace and control
// characters. Such a text can be neither indexed nor searched for.
bool IsBlankText(std::string_view text);

// Splits `text` into word and punctuation tokens; whitespace separates and is dropped.
// Invalid bytes are treated as punctuation so that no input is lost or crashes.
void PreTokenize(std::string_view text, std::vector<TokenSpan>* out);

// Lowercases (full Unicode case folding, then NFC) one word.
std::string FoldCase(std::string_view word);

}  // namespace contextd
