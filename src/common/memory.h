// Process memory: how the allocator is set up for a long-running server, and what the
// process holds, for /metrics and for tests that check memory comes back.
//
// Thread safety: ResidentBytes() and ReleaseFreeMemory() may be called from any thread;
// ConfigureAllocatorForServing() once, before the server's threads start.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "common/periodic_task.h"

namespace contextd {

// glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), so
// after one big request every later buffer of that size comes from a thread's arena, and
// arenas give little back: RSS stayed at the high-water mark of the largest requests
// (80 x 1 MB embeddings: 93 MB -> 1.2 GB, never returned). A fixed threshold keeps large
// buffers (1 MiB and up) in mmap, returned whole when freed; a lower trim threshold returns arena tops.
// With jemalloc (the server's allocator, see CMakeLists.txt) it starts jemalloc's
// background purging thread instead.
void ConfigureAllocatorForServing();

// Whether this process allocates with jemalloc.
bool UsingJemalloc();

// What the allocator holds, as Redis's INFO memory reports it: "jemalloc" or "glibc", the
// bytes in live blocks, and the bytes it holds resident for them (live blocks, free blocks
// not yet handed back, metadata; glibc: what its arenas and mappings took from the
// kernel). Resident less allocated is what a trim or purge could give back at most.
struct AllocatorStats {
  const char* name = "glibc";
  size_t allocated = 0;
  size_t resident = 0;
};
AllocatorStats ReadAllocatorStats();

// jemalloc: the arena the calling thread allocates from (-1 without jemalloc), and binding
// the calling thread to one. Short-lived helper threads of one piece of work allocate from
// their parent's arena, not each from the next arena in turn, which would spread (and
// fragment) the work's memory over every arena.
int CurrentThreadArena();
void UseThreadArena(int arena);

// jemalloc: hands the calling thread's cache of freed blocks back to its arena, where the
// pages they sit in can be purged. A cache is otherwise trimmed only as its thread
// allocates, so a thread that went idle after a large request keeps what it cached (~80
// server threads held 4-5 MB so after bench/memory.sh). Without jemalloc: nothing.
void FlushThreadCache();

// jemalloc: allocation requests since the process started (small and large; those a
// thread's cache answered are counted when the cache is flushed). Without jemalloc: 0
// (glibc counts none).
uint64_t AllocationRequests();

// Bytes resident in RAM (VmRSS), or 0 where /proc is unavailable.
size_t ResidentBytes();

// Hands free allocator memory back to the kernel (malloc_trim, or jemalloc's purge of
// every arena), after work that used a lot of it; cheap when there is little to give.
void ReleaseFreeMemory();

// Free memory that no large request hands back: a delete that drops a 16 MB document's
// chunks, terms and graph nodes frees ~250 MB of small blocks, on a thread whose request was
// small, so nothing trims it; freed parse trees and buffers stay resident in the arenas.
// This looks every `period`, on its own thread, at the allocator's live bytes, the free
// memory it holds and anonymous RSS. Work since the last trim (any of them moved by
// `min_change_bytes`) leaves free pages behind; they are trimmed at the first look that
// finds the work paused, with at least `min_free_bytes` free, or at the
// `max_busy_looks`-th busy look in a row. Busy: with jemalloc, `busy_allocations` or more
// allocation requests since the last look; with glibc (no count), live bytes moved by
// `min_change_bytes`. Trimming while work goes on hands back pages the work faults in
// again: during a cluster ingest a replica spent ~10% of its CPU purging and ~17% in page
// faults. One place for it, instead of trims after each large request.
// Thread safety: CheckNow() may be called from any thread.
class FreeMemoryReleaser {
 public:
  struct Options {
    std::chrono::milliseconds period{1000};
    size_t min_free_bytes = 4 << 20;
    size_t min_change_bytes = 1 << 20;
    // A second of an idle node makes ~50; of the background flush after deleting 64 MB of
    // documents, 10,000-20,000; of a replica applying a cluster ingest, 100,000-1,000,000.
    uint64_t busy_allocations = 100000;
    int max_busy_looks = 10;   // work that never pauses is still trimmed this often
    bool start_thread = true;  // false: only CheckNow() (tests)
  };
  explicit FreeMemoryReleaser(Options options);
  ~FreeMemoryReleaser() = default;  // stops the thread
  FreeMemoryReleaser(const FreeMemoryReleaser&) = delete;
  FreeMemoryReleaser& operator=(const FreeMemoryReleaser&) = delete;

  // One look (see above). True when it trimmed.
  bool CheckNow();
  size_t trims() const { return trims_.load(std::memory_order_relaxed); }

 private:
  struct Reading {
    size_t live = 0, free = 0, anon = 0;
    uint64_t requests = 0;
  };
  static Reading Read();

  const Options options_;
  std::mutex check_mu_;  // one look at a time
  Reading last_;         // at the last look (after its trim)
  bool worked_ = false;  // work since the last trim
  int busy_looks_ = 0;   // looks in a row that found work going on
  std::atomic<size_t> trims_{0};
  std::unique_ptr<PeriodicTask> task_;  // last: stopped before the state above goes
};

// Free bytes the allocator holds in its arenas (mallinfo2's fordblks; with jemalloc,
// resident less allocated), in use by nobody.
size_t FreeHeapBytes();

// Per-thread scratch vectors are sized by the largest input their thread has seen; with
// ~80 worker threads, one 16 MB text each would pin gigabytes. Call after each use: a
// buffer past this size is freed, smaller ones are kept for reuse.
constexpr size_t kMaxIdleScratchBytes = 256 << 10;
template <typename T>
void ShrinkScratch(std::vector<T>* v) {
  if (v->capacity() * sizeof(T) > kMaxIdleScratchBytes) std::vector<T>().swap(*v);
}

}  // namespace contextd
