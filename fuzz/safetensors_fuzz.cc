// safetensors files: any bytes open or fail with a message; every tensor of one that opens
// lies inside the data section, and reading it as float with its own shape succeeds for
// float dtypes or fails cleanly for others.
#include <cstdlib>

#include "encoder/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace contextd;
  const std::string path = fuzz::WriteScratch(fuzz::AsText(data, size), "model.safetensors");
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) {
    if (file.status().message().empty()) std::abort();
    return 0;
  }
  for (const auto& [name, tensor] : (*file)->tensors()) {
    if (tensor.begin > tensor.end || tensor.end > size) std::abort();
    auto floats = (*file)->ReadFloat(name, tensor.shape);
    if (floats.ok()) {
      size_t n = 1;
      for (int64_t d : tensor.shape) n *= static_cast<size_t>(d);
      if (floats->size() != n) std::abort();
    }
  }
  return 0;
}
