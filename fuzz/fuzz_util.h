// Helpers shared by the libFuzzer targets.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace contextd::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// The loaders under test read files: each input is written to one scratch file per process.
inline std::string WriteScratch(std::string_view bytes, const char* name) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp != nullptr ? tmp : "/tmp") + "/contextd-fuzz-" + std::to_string(getpid());
  }();
  static const bool made = [] { return std::system(("mkdir -p " + dir).c_str()) == 0; }();
  (void)made;
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

// What a loader returned, or the run stops with its reason (a fuzzer without its
// vocabulary tests nothing). Kept for the life of the process.
template <typename T>
const T* LoadedOrAbort(contextd::StatusOr<std::unique_ptr<T>> loaded) {
  if (!loaded.ok()) {
    std::fprintf(stderr, "cannot load: %s\n", loaded.status().ToString().c_str());
    std::abort();
  }
  return std::move(loaded).value().release();
}

// A file shipped in ../shared (vocabularies), found from CONTEXTD_SHARED_DIR.
inline std::string SharedPath(const char* relative) {
  const char* dir = std::getenv("CONTEXTD_SHARED_DIR");
  return std::string(dir != nullptr ? dir : CONTEXTD_SHARED_DIR) + "/" + relative;
}

}  // namespace contextd::fuzz
