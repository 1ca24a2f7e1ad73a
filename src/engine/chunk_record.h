// The stored form of one chunk (the value of its store record, and of a snapshot's chunk
// record), little-endian as the host, in one of two forms:
//   inline: slot:u32 | text length:u32 | text | dim floats
//   span:   slot:u32 | 0xFFFFFFFF | offset:u32 | length:u32 | dim floats
// A span is text[offset, offset + length) of its document's stored text (the document
// record's "text"), which a chunk the chunker cut always is: written inline, every
// document's text was stored twice, in its record and again across its chunks (overlap
// and all), and every node copied, logged and paged in both. The inline form is for a
// chunk that is not part of the text, and is how records were written before. A length
// of 0xFFFFFFFF cannot be an inline record's (its text would be 4 GiB), so the forms are
// told apart by it.
// The slot is stored so a restart numbers chunks as before, which keeps a saved HNSW graph
// (labelled by slot) valid.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace contextd {

inline constexpr uint32_t kChunkSpanMarker = 0xFFFFFFFFu;

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

// REQUIRES: at and len below 2^32 - 1.
inline std::string EncodeChunkSpan(uint32_t slot, uint64_t at, uint64_t len, const float* vec, int dim) {
  std::string out;
  out.resize(16 + sizeof(float) * dim);
  const uint32_t fields[4] = {slot, kChunkSpanMarker, static_cast<uint32_t>(at), static_cast<uint32_t>(len)};
  std::memcpy(out.data(), fields, 16);
  std::memcpy(out.data() + 16, vec, sizeof(float) * dim);
  return out;
}

// False when `value` is not a chunk of `dim` floats, or is a span outside `doc_text` (the
// stored text of the document it belongs to). *text points into `value` (inline) or into
// `doc_text` (span); `vec` points into `value`, unaligned.
inline bool DecodeChunk(std::string_view value, int dim, std::string_view doc_text, uint32_t* slot,
                        std::string_view* text, const char** vec) {
  if (value.size() < 8) return false;
  uint32_t len;
  std::memcpy(slot, value.data(), 4);
  std::memcpy(&len, value.data() + 4, 4);
  if (len == kChunkSpanMarker) {
    uint32_t at;
    if (value.size() != 16 + sizeof(float) * dim) return false;
    std::memcpy(&at, value.data() + 8, 4);
    std::memcpy(&len, value.data() + 12, 4);
    if (at > doc_text.size() || len > doc_text.size() - at) return false;
    *text = doc_text.substr(at, len);
    *vec = value.data() + 16;
    return true;
  }
  if (value.size() != 8 + static_cast<size_t>(len) + sizeof(float) * dim) return false;
  *text = value.substr(8, len);
  *vec = value.data() + 8 + len;
  return true;
}

}  // namespace contextd
