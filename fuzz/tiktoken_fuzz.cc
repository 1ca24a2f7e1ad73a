// cl100k_base: any bytes encode, decode back to themselves, and count as they encode;
// CountUpTo agrees with Count below its limit.
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "fuzz_util.h"
#include "text/tiktoken.h"

namespace {
const contextd::TiktokenEncoder* Encoder() {
  static const auto* enc = [] {
    auto e = contextd::TiktokenEncoder::Load(contextd::fuzz::SharedPath("data/tiktoken/cl100k_base.tiktoken"));
    if (!e.ok()) std::abort();
    return std::move(e).value().release();
  }();
  return enc;
}
}  // namespace

// Loaded before the first input, so its seconds never count against an input's timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Encoder();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = contextd::fuzz::AsText(data, size);
  const auto* enc = Encoder();
  const std::vector<uint32_t> ids = enc->Encode(text);
  if (enc->Decode(ids) != text) std::abort();
  if (enc->Count(text) != ids.size()) std::abort();
  const size_t limit = size % 64;
  if (enc->CountUpTo(text, limit) != std::min(ids.size(), limit + 1)) std::abort();
  return 0;
}
