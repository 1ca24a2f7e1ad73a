// all-MiniLM-L6-v2's WordPiece: any bytes (invalid UTF-8 included) encode to ids in the
// vocabulary, framed by [CLS] ... [SEP], never longer than asked.
#include <cstdlib>
#include <memory>

#include "encoder/wordpiece.h"
#include "fuzz_util.h"

namespace {
const contextd::WordPieceTokenizer* tokenizer = nullptr;
}  // namespace

// Loaded before the first input, so its seconds never count against an input's timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer = contextd::fuzz::LoadedOrAbort(
      contextd::WordPieceTokenizer::FromDir(contextd::fuzz::SharedPath("models/all-MiniLM-L6-v2-tokenizer")));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* t = tokenizer;
  const size_t max_len = 2 + size % 300;
  const std::vector<int32_t> ids = t->Encode(contextd::fuzz::AsText(data, size), max_len);
  if (ids.size() < 2 || ids.size() > max_len) std::abort();
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= t->vocab_size()) std::abort();
  }
  return 0;
}
