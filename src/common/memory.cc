#include "common/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

namespace contextd {

// Blocks of 256 KiB and up are mapped on their own. Smaller than any request body worth
// worrying about, larger than the per-query scratch that is allocated often.
constexpr int kMmapThresholdBytes = 256 << 10;
constexpr int kTrimThresholdBytes = 1 << 20;

void ConfigureAllocatorForServing() {
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
}

size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages_total = 0, pages_resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(pages_resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void ReleaseFreeMemory() { malloc_trim(0); }

}  // namespace contextd
