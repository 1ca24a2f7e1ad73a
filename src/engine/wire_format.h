// The binary building blocks of the engine's records on the wire and on disk (mutations,
// shard snapshots): varints, length-prefixed bytes and raw little-endian float32 arrays,
// with a Reader that never trusts its input (every read is bounds-checked and a count is
// capped, so a corrupt length cannot ask for an absurd allocation).
//
// Thread safety: free functions; a Reader is one caller's.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace contextd::wire {

// The most items a count may announce.
inline constexpr uint64_t kMaxItems = 1u << 24;

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

inline void PutFloats(std::string* out, const float* v, size_t n) {
  out->append(reinterpret_cast<const char*>(v), n * sizeof(float));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Bytes(std::string* s) {
    std::string_view v;
    if (!Bytes(&v)) return false;
    s->assign(v);
    return true;
  }
  // A view into the input: valid while the input is.
  bool Bytes(std::string_view* s) {
    uint64_t n = 0;
    if (!Varint(&n) || n > in_.size() - pos_) return false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Count(uint64_t* n) { return Varint(n) && *n <= kMaxItems; }
  bool Floats(std::vector<float>* v, uint64_t n) {
    if (n > (in_.size() - pos_) / sizeof(float)) return false;
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), in_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return true;
  }
  bool done() const { return pos_ == in_.size(); }
  // Everything not read yet, as a view into the input; the reader is then done.
  std::string_view Rest() {
    const std::string_view rest = in_.substr(pos_);
    pos_ = in_.size();
    return rest;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace contextd::wire
