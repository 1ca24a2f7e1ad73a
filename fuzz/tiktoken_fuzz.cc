// cl100k_base: any bytes encode, decode back to themselves, and count as they encode;
// CountUpTo agrees with Count below its limit.
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "fuzz_util.h"
#include "text/tiktoken.h"

namespace {
const contextd::TiktokenEncoder* encoder = nullptr;
}  // namespace

// Loaded before the first input, so its seconds never count against an input's timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  encoder = contextd::fuzz::LoadedOrAbort(
      contextd::TiktokenEncoder::Load(contextd::fuzz::SharedPath("data/tiktoken/cl100k_base.tiktoken")));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = contextd::fuzz::AsText(data, size);
  const auto* enc = encoder;
  const std::vector<uint32_t> ids = enc->Encode(text);
  if (enc->Decode(ids) != text) std::abort();
  if (enc->Count(text) != ids.size()) std::abort();
  const size_t limit = size % 64;
  if (enc->CountUpTo(text, limit) != std::min(ids.size(), limit + 1)) std::abort();
  return 0;
}
