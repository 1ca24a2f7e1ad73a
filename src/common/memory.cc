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

// jemalloc's control interface, present when the binary is linked with it (the server is;
// tests and sanitizer builds are not): weak, so this library links either way.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen) __attribute__((weak));

bool UsingJemalloc() { return mallctl != nullptr; }

void ConfigureAllocatorForServing() {
  if (UsingJemalloc()) {
    // A background thread purges dirty pages as they decay (malloc_conf in main.cc sets
    // the decay), so an idle server hands memory back without a request to trigger it.
    bool on = true;
    mallctl("background_thread", nullptr, nullptr, &on, sizeof(on));
    return;
  }
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
}

namespace {

// Resident pages (statm's second field) less file-backed ones (its third): the heap, stacks
// and anonymous mappings.
size_t AnonymousResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long total = 0, resident = 0, shared = 0;
  const int n = std::fscanf(f, "%lu %lu %lu", &total, &resident, &shared);
  std::fclose(f);
  if (n != 3 || shared > resident) return 0;
  return static_cast<size_t>(resident - shared) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages_total = 0, pages_resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(pages_resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

namespace {

// jemalloc's statistics are a snapshot refreshed by writing "epoch". T: the statistic's
// type (size_t for byte counts, uint64_t for event counts).
template <typename T>
T JemallocStat(const char* name) {
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  mallctl("epoch", &epoch, &len, &epoch, len);
  T v = 0;
  len = sizeof(v);
  return mallctl(name, &v, &len, nullptr, 0) == 0 ? v : 0;
}

}  // namespace

void ReleaseFreeMemory() {
  if (UsingJemalloc()) {
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: every arena
    return;
  }
  malloc_trim(0);
}

int CurrentThreadArena() {
  unsigned arena = 0;
  size_t len = sizeof(arena);
  if (!UsingJemalloc() || mallctl("thread.arena", &arena, &len, nullptr, 0) != 0) return -1;
  return static_cast<int>(arena);
}

void UseThreadArena(int arena) {
  if (arena < 0 || !UsingJemalloc()) return;
  unsigned a = static_cast<unsigned>(arena);
  mallctl("thread.arena", nullptr, nullptr, &a, sizeof(a));
}

void FlushThreadCache() {
  if (UsingJemalloc()) mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
}

AllocatorStats ReadAllocatorStats() {
  AllocatorStats st;
  if (UsingJemalloc()) {
    st.name = "jemalloc";
    st.allocated = JemallocStat<size_t>("stats.allocated");
    st.resident = JemallocStat<size_t>("stats.resident");
    return st;
  }
  const struct mallinfo2 m = mallinfo2();
  st.allocated = m.uordblks + m.hblkhd;
  st.resident = m.arena + m.hblkhd;
  return st;
}

uint64_t AllocationRequests() {
  if (!UsingJemalloc()) return 0;
  // 4096: every arena merged.
  return JemallocStat<uint64_t>("stats.arenas.4096.small.nrequests") +
         JemallocStat<uint64_t>("stats.arenas.4096.large.nrequests");
}

size_t FreeHeapBytes() {
  if (!UsingJemalloc()) return mallinfo2().fordblks;
  // Pages the arenas hold resident beyond what is allocated: dirty pages, metadata.
  const AllocatorStats st = ReadAllocatorStats();
  return st.resident > st.allocated ? st.resident - st.allocated : 0;
}

FreeMemoryReleaser::Reading FreeMemoryReleaser::Read() {
  const AllocatorStats st = ReadAllocatorStats();
  Reading r;
  r.live = st.allocated;
  r.free = FreeHeapBytes();
  r.anon = AnonymousResidentBytes();
  r.requests = AllocationRequests();
  return r;
}

FreeMemoryReleaser::FreeMemoryReleaser(Options options) : options_(options), last_(Read()) {
  if (options_.start_thread) task_ = std::make_unique<PeriodicTask>(options_.period, [this] { CheckNow(); });
}

bool FreeMemoryReleaser::CheckNow() {
  std::lock_guard<std::mutex> lock(check_mu_);
  const Reading now = Read();
  auto moved = [this](size_t a, size_t b) { return (a > b ? a - b : b - a) >= options_.min_change_bytes; };
  // The allocator counts trimmed memory as free still, and frees do not move anonymous
  // RSS, so neither alone says how much free memory is resident: any change means work ran,
  // and work leaves free pages behind. Whether it is still running: allocations made (the
  // background flush after a large delete moves live bytes by megabytes with few), or
  // with glibc live bytes moved (the allocator's own decay moves RSS, never live bytes).
  const bool busy =
      UsingJemalloc() ? now.requests - last_.requests >= options_.busy_allocations : moved(now.live, last_.live);
  worked_ = worked_ || busy || moved(now.free, last_.free) || moved(now.anon, last_.anon);
  last_ = now;
  busy_looks_ = busy ? busy_looks_ + 1 : 0;
  if (!worked_ || now.free < options_.min_free_bytes) return false;
  if (busy && busy_looks_ < options_.max_busy_looks) return false;  // its free pages are reused soon
  ReleaseFreeMemory();
  last_ = Read();
  worked_ = false;
  busy_looks_ = 0;
  trims_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace contextd
