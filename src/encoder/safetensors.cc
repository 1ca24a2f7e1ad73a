#include "encoder/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/json.h"

namespace contextd {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 8) {
    ::close(fd);
    return InvalidArgument(path + " is not a safetensors file (shorter than its header length)");
  }
  f->map_size_ = static_cast<size_t>(st.st_size);
  void* m = mmap(nullptr, f->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return Internal("cannot map " + path + ": " + std::strerror(errno));
  f->map_ = static_cast<const uint8_t*>(m);
  uint64_t header_len;
  std::memcpy(&header_len, f->map_, 8);
  if (header_len > f->map_size_ - 8) return InvalidArgument(path + ": header length runs past the end of the file");
  f->data_offset_ = 8 + header_len;
  auto header = ParseJson(std::string_view(reinterpret_cast<const char*>(f->map_) + 8, header_len));
  if (!header.ok() || !header->is_object()) return InvalidArgument(path + ": the header is not a JSON object");
  const size_t data_size = f->map_size_ - f->data_offset_;
  for (const auto& [name, t] : header->as_object()) {
    if (name == "__metadata__") continue;
    const Json* dtype = t.Find("dtype");
    const Json* shape = t.Find("shape");
    const Json* offsets = t.Find("data_offsets");
    if (dtype == nullptr || !dtype->is_string() || shape == nullptr || !shape->is_array() || offsets == nullptr ||
        !offsets->is_array() || offsets->as_array().size() != 2)
      return InvalidArgument(path + ": tensor '" + name + "' lacks dtype, shape or data_offsets");
    Tensor tensor;
    tensor.dtype = dtype->as_string();
    for (const Json& d : shape->as_array()) {
      if (!d.is_int() || d.as_int() < 0) return InvalidArgument(path + ": tensor '" + name + "' has a bad shape");
      tensor.shape.push_back(d.as_int());
    }
    tensor.begin = static_cast<size_t>(offsets->as_array()[0].as_int());
    tensor.end = static_cast<size_t>(offsets->as_array()[1].as_int());
    if (tensor.begin > tensor.end || tensor.end > data_size)
      return InvalidArgument(path + ": tensor '" + name + "' lies outside the file");
    f->tensors_.emplace(name, std::move(tensor));
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(const_cast<uint8_t*>(map_), map_size_);
}

const SafetensorsFile::Tensor* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

StatusOr<std::vector<float>> SafetensorsFile::ReadFloat(const std::string& name,
                                                        const std::vector<int64_t>& shape) const {
  const Tensor* t = Find(name);
  if (t == nullptr) return NotFound(path_ + " has no tensor '" + name + "'");
  auto dims = [](const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out + "]";
  };
  if (t->shape != shape)
    return InvalidArgument(path_ + ": tensor '" + name + "' has shape " + dims(t->shape) + ", config.json implies " +
                           dims(shape));
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  const size_t width = t->dtype == "F32" ? 4 : (t->dtype == "F16" || t->dtype == "BF16") ? 2 : 0;
  if (width == 0)
    return InvalidArgument(path_ + ": tensor '" + name + "' is " + t->dtype + "; F32, F16 or BF16 needed");
  if (t->end - t->begin != n * width)
    return InvalidArgument(path_ + ": tensor '" + name + "' byte size does not match its shape");
  std::vector<float> out(n);
  const uint8_t* src = map_ + data_offset_ + t->begin;
  if (width == 4) {
    std::memcpy(out.data(), src, n * 4);
  } else {
    const bool half = t->dtype == "F16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      out[i] = half ? HalfToFloat(v) : Bf16ToFloat(v);
    }
  }
  return out;
}

}  // namespace contextd
