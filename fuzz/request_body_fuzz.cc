// JSON request bodies as the API reads them: every reader either returns a request or a
// refusal with a reason (never a crash, never an empty message), whatever the body.
#include <cstdio>
#include <cstdlib>

#include "common/json.h"
#include "fuzz_util.h"
#include "server/request_codec.h"

namespace {
void MustExplain(const char* reader, const contextd::Status& s) {
  if (s.ok() || !s.message().empty()) return;
  std::fprintf(stderr, "%s refused the body without saying why (%s)\n", reader, s.ToString().c_str());
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace contextd;
  auto body = ParseJson(fuzz::AsText(data, size));
  if (!body.ok()) return 0;
  const int dim = 1 + static_cast<int>(size % 8);
  MustExplain("ParseUpsertRequest", ParseUpsertRequest(*body, dim, size % 2 == 0).status());
  MustExplain("ParseQueryRequest", ParseQueryRequest(*body, dim, size % 3 != 0).status());
  MustExplain("ParseContextRequest", ParseContextRequest(*body, size % 2 == 1).status());
  MustExplain("ParseCacheSettings", ParseCacheSettings(*body).status());
  MustExplain("ParseCacheStore", ParseCacheStore(*body).status());
  MustExplain("ParseCacheLookup", ParseCacheLookup(*body).status());
  return 0;
}
