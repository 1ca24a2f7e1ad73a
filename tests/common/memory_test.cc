#include "common/memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace contextd {
namespace {

// RssAnon in MB: the heap, what frees leave resident until trimmed.
size_t AnonMb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "RssAnon:", 8) == 0) kb = std::strtoull(line + 8, nullptr, 10);
  }
  std::fclose(f);
  return kb >> 10;
}

// Allocates n blocks of 2 KB (below the mmap threshold: they come from the arena), then
// frees all but every hundredth, which it returns: the freed space between them is not the
// arena's top, so glibc's own trim on free never returns it.
std::vector<char*> AllocateAndFreeFragmented(int n) {
  std::vector<char*> blocks, kept;
  for (int i = 0; i < n; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(2000)));
    std::memset(blocks.back(), 1, 2000);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % 100 == 99) {
      kept.push_back(blocks[i]);
    } else {
      std::free(blocks[i]);
    }
  }
  return kept;
}

// Named MemoryBoundTest (RSS-based, like the server's): the sanitizer build, whose allocator
// is not glibc's, skips the suite.
TEST(MemoryBoundTest, FreeMemoryReleaserGivesBackWhatSmallFreesLeave) {
  // The work is over when it looks: neither the 2 MB of blocks it keeps live nor its
  // 100,000 allocations count as work going on.
  FreeMemoryReleaser releaser({std::chrono::milliseconds(1000), 4 << 20, 4 << 20, 1000000, 10, /*start_thread=*/false});
  const size_t base = AnonMb();
  // 200 MB: what deleting a large document used to leave.
  std::vector<char*> kept = AllocateAndFreeFragmented(100000);
  const size_t held = AnonMb();
  ASSERT_GE(held, base + 150) << "the frees were returned already; the test shows nothing";
  EXPECT_TRUE(releaser.CheckNow());
  EXPECT_LE(AnonMb(), base + 20) << "held " << held << " MB before the trim";
  EXPECT_EQ(releaser.trims(), 1u);
  // Nothing changed since: no second trim.
  EXPECT_FALSE(releaser.CheckNow());
  for (char* b : kept) std::free(b);
}

// `blocks` of 16 KB live (4,096: 64 MB), filled so their pages are resident: work going on
// between two looks, by either allocator's measure (live bytes moved, allocations made).
std::vector<char*> AllocateLive(int blocks) {
  std::vector<char*> live;
  for (int i = 0; i < blocks; ++i) {
    live.push_back(static_cast<char*>(std::malloc(16 << 10)));
    std::memset(live.back(), 1, 16 << 10);
  }
  return live;
}

// Free pages left while live memory still moves are reused by the work that moves it:
// trimming them then costs page faults. The releaser waits for a look that finds the work
// paused.
TEST(MemoryBoundTest, FreeMemoryReleaserWaitsForTheWorkToPause) {
  FreeMemoryReleaser releaser({std::chrono::milliseconds(1000), 4 << 20, 1 << 20, 1000, 10, /*start_thread=*/false});
  const size_t base = AnonMb();
  std::vector<char*> live = AllocateLive(4096);  // first: glibc would place it in the freed gaps
  std::vector<char*> kept = AllocateAndFreeFragmented(100000);
  const size_t held = AnonMb();
  ASSERT_GE(held, base + 150 + 60) << "the frees were returned already; the test shows nothing";
  EXPECT_FALSE(releaser.CheckNow()) << "trimmed while live memory moved";
  EXPECT_EQ(releaser.trims(), 0u);
  EXPECT_GE(AnonMb(), base + 150 + 60);
  // Nothing moved since the last look: the work paused, and what it left goes back (most
  // of the ~200 MB freed; the blocks kept pin some of the pages around them).
  EXPECT_TRUE(releaser.CheckNow());
  EXPECT_LE(AnonMb() + 100, held);
  EXPECT_EQ(releaser.trims(), 1u);
  for (char* b : live) std::free(b);
  for (char* b : kept) std::free(b);
}

// Work that never pauses is trimmed anyway, at every max_busy_looks-th look.
TEST(MemoryBoundTest, FreeMemoryReleaserTrimsWorkThatNeverPauses) {
  FreeMemoryReleaser releaser({std::chrono::milliseconds(1000), 4 << 20, 1 << 20, 500, 3, /*start_thread=*/false});
  std::vector<char*> kept = AllocateAndFreeFragmented(100000);
  std::vector<std::vector<char*>> live;
  for (int look = 1; look <= 3; ++look) {
    // 16 MB before every look: glibc places them in the gaps the fragments left, which
    // must not fill up before the third look.
    live.push_back(AllocateLive(1024));
    EXPECT_EQ(releaser.CheckNow(), look == 3) << "look " << look;
  }
  EXPECT_EQ(releaser.trims(), 1u);
  for (auto& l : live)
    for (char* b : l) std::free(b);
  for (char* b : kept) std::free(b);
}

// The thread looks on its own, and stops with its owner.
TEST(MemoryBoundTest, FreeMemoryReleaserThreadTrimsOnItsOwn) {
  FreeMemoryReleaser releaser({std::chrono::milliseconds(20), 4 << 20, 1 << 20, 10000, 10, /*start_thread=*/true});
  std::vector<char*> kept = AllocateAndFreeFragmented(50000);
  for (int i = 0; i < 500 && releaser.trims() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(releaser.trims(), 1u);
  for (char* b : kept) std::free(b);
}

}  // namespace
}  // namespace contextd
