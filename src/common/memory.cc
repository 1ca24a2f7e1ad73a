#include "common/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

namespace contextd {

// Blocks of 1 MiB and up are mapped on their own: the bodies worth worrying about, and
// larger than the write path's per-batch buffers. At 256 KiB a SciFact ingest was ~3%
// slower (its ~600 KB write batches were mapped and faulted in each time); at 4 MiB the
// arenas kept 80% more after large embedding requests (bench/memory.sh).
constexpr int kMmapThresholdBytes = 1 << 20;
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
