// Base64 (RFC 4648, standard alphabet, '=' padding): tiktoken vocabularies store token
// bytes in it, and OpenAI's /v1/embeddings sends float32 vectors in it.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace contextd {

// Appends the encoding of `bytes` (padded to a multiple of 4 characters) to *out.
void AppendBase64(std::string_view bytes, std::string* out);
// Decodes `in` into *out (replacing it). Stops at the first '='; false on any character
// outside the alphabet.
bool DecodeBase64(std::string_view in, std::string* out);

}  // namespace contextd
