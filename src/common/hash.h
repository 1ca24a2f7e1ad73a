// Hashing helpers over xxHash (XXH3): fast, stable across runs and machines, so hashes may
// be stored.
#pragma once

#include <cstdint>
#include <string_view>

namespace contextd {

uint64_t Hash64(std::string_view data, uint64_t seed = 0);

}  // namespace contextd
