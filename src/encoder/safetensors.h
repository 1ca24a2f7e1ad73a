// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}, then the
// raw tensor bytes. The file is memory-mapped; tensors are read out as float32 (F32, F16
// and BF16 are converted).
//
// Thread safety: immutable after Open(); reads are safe for concurrent use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace contextd {

class SafetensorsFile {
 public:
  struct Tensor {
    std::string dtype;  // "F32", "F16", "BF16", ...
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte offsets into the data section
  };

  // Fails with a message naming the file when it is not a well-formed safetensors file.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const Tensor* Find(const std::string& name) const;
  // The tensor as float32; fails unless its dtype is F32, F16 or BF16 and its shape is
  // `shape` exactly.
  StatusOr<std::vector<float>> ReadFloat(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::map<std::string, Tensor> tensors_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_offset_ = 0;
};

// IEEE half and bfloat16 to float.
float HalfToFloat(uint16_t h);
inline float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

}  // namespace contextd
