// JSON parsing: any bytes parse or fail cleanly; what parses dumps to text that parses to
// the same dump (the writer emits only what the reader accepts).
#include <cstdlib>

#include "common/json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = contextd::ParseJson(contextd::fuzz::AsText(data, size));
  if (!parsed.ok()) return 0;
  const std::string once = parsed->Dump();
  auto again = contextd::ParseJson(once);
  if (!again.ok() || again->Dump() != once) std::abort();
  return 0;
}
