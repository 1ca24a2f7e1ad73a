// Metadata filters: a spec (the input's first line) parses or is refused with a reason;
// one that parses is matched against metadata objects (the remaining lines), and Select()
// over a payload index of them must pick exactly the slots Matches() accepts.
#include <cstdlib>
#include <vector>

#include "common/json.h"
#include "fuzz_util.h"
#include "index/filter.h"
#include "index/payload_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace contextd;
  const std::string_view text = fuzz::AsText(data, size);
  const size_t nl = text.find('\n');
  auto spec = ParseJson(text.substr(0, nl));
  if (!spec.ok()) return 0;
  auto filter = Filter::Parse(*spec);
  if (!filter.ok()) {
    if (filter.status().message().empty()) std::abort();  // a refusal always says why
    return 0;
  }
  std::vector<Json> docs;
  for (size_t at = nl; at != std::string_view::npos && at < text.size();) {
    const size_t next = text.find('\n', at + 1);
    auto doc = ParseJson(text.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
    if (doc.ok() && doc->is_object() && docs.size() < 64) docs.push_back(std::move(doc).value());
    at = next;
  }
  PayloadIndex index;
  for (uint32_t slot = 0; slot < docs.size(); ++slot) index.Add(slot, docs[slot]);
  const SlotBitset selected = filter->Select(index);
  for (uint32_t slot = 0; slot < docs.size(); ++slot) {
    if (selected.Test(slot) != filter->Matches(docs[slot])) std::abort();
  }
  return 0;
}
