// The stored form of one chunk (the value of its store record, and of a snapshot's chunk
// record): slot:u32 | text length:u32 | text | dim floats, little-endian as the host.
// The slot is stored so a restart numbers chunks as before, which keeps a saved HNSW graph
// (labelled by slot) valid.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace contextd {

inline std::string EncodeChunk(uint32_t slot, std::string_view text, const float* vec, int dim) {
  std::string out;
  const uint32_t len = static_cast<uint32_t>(text.size());
  out.resize(8 + text.size() + sizeof(float) * dim);
  std::memcpy(out.data(), &slot, 4);
  std::memcpy(out.data() + 4, &len, 4);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::memcpy(out.data() + 8 + text.size(), vec, sizeof(float) * dim);
  return out;
}

// False when `value` is not a chunk of `dim` floats. `vec` points into `value`, unaligned.
inline bool DecodeChunk(std::string_view value, int dim, uint32_t* slot, std::string_view* text, const char** vec) {
  if (value.size() < 8) return false;
  uint32_t len;
  std::memcpy(slot, value.data(), 4);
  std::memcpy(&len, value.data() + 4, 4);
  if (value.size() != 8 + static_cast<size_t>(len) + sizeof(float) * dim) return false;
  *text = value.substr(8, len);
  *vec = value.data() + 8 + len;
  return true;
}

}  // namespace contextd
