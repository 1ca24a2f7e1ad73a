// Process memory: how the allocator is set up for a long-running server, and what the
// process holds, for /metrics and for tests that check memory comes back.
//
// Thread safety: ResidentBytes() and ReleaseFreeMemory() may be called from any thread;
// ConfigureAllocatorForServing() once, before the server's threads start.
#pragma once

#include <cstddef>
#include <vector>

namespace contextd {

// glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), so
// after one big request every later buffer of that size comes from a thread's arena, and
// arenas give little back: RSS stayed at the high-water mark of the largest requests
// (80 x 1 MB embeddings: 93 MB -> 1.2 GB, never returned). A fixed threshold keeps large
// buffers (1 MiB and up) in mmap, returned whole when freed; a lower trim threshold returns arena tops.
void ConfigureAllocatorForServing();

// Bytes resident in RAM (VmRSS), or 0 where /proc is unavailable.
size_t ResidentBytes();

// Hands free allocator memory back to the kernel (malloc_trim), after work that used a
// lot of it; cheap when there is little to give.
void ReleaseFreeMemory();

// Per-thread scratch vectors are sized by the largest input their thread has seen; with
// ~80 worker threads, one 16 MB text each would pin gigabytes. Call after each use: a
// buffer past this size is freed, smaller ones are kept for reuse.
constexpr size_t kMaxIdleScratchBytes = 256 << 10;
template <typename T>
void ShrinkScratch(std::vector<T>* v) {
  if (v->capacity() * sizeof(T) > kMaxIdleScratchBytes) std::vector<T>().swap(*v);
}

}  // namespace contextd
