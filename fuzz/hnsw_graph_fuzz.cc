// HNSW graph files: a body (the input) sealed with its checksum, so the fuzzer reaches the
// parser behind it. Any body loads or fails with a reason; a graph that loads can be
// searched and saved again.
#include <cstdlib>
#include <string>
#include <vector>

#include "common/hash.h"
#include "fuzz_util.h"
#include "index/hnsw_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace contextd;
  std::string file(fuzz::AsText(data, size));
  // The header must name the graph's shape; the fuzzer varies dim and M through it too.
  const uint64_t sum = Hash64(file);
  file.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
  const std::string path = fuzz::WriteScratch(file, "graph.hnsw");
  for (bool int8 : {false, true}) {
    HnswParams params;
    params.M = 4;
    params.int8 = int8;
    uint64_t tag = 0;
    auto index = HnswIndex::Load(path, 4, Metric::kCosine, params, &tag);
    if (!index.ok()) {
      if (index.status().message().empty()) std::abort();
      continue;
    }
    const std::vector<float> query = {0.5f, -0.25f, 1.0f, 0.125f};
    (void)(*index)->Search(query.data(), 5, 16, [](uint32_t) { return true; });
    if (!(*index)->Save(path + ".again", tag).ok()) std::abort();
  }
  return 0;
}
