// Embedding cache keys: the model id and the text after the normalisation that cannot
// change an embedding (Unicode NFC, runs of whitespace collapsed to one space, trimmed),
// hashed with XXH3-128. 128 bits make a collision across billions of texts negligible, so
// the key alone identifies the vector.
//
// Thread safety: free functions, safe for concurrent use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace contextd {

struct EmbedKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool operator==(const EmbedKey& o) const { return hi == o.hi && lo == o.lo; }
  // 16 bytes, big-endian, for persistent tiers.
  std::string Bytes() const;
};

struct EmbedKeyHash {
  size_t operator()(const EmbedKey& k) const { return static_cast<size_t>(k.lo ^ (k.hi * 0x9e3779b97f4a7c15ULL)); }
};

std::string NormalizeForCache(std::string_view text);
EmbedKey MakeEmbedKey(std::string_view model, std::string_view text);

}  // namespace contextd
