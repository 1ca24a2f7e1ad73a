// MappedBuffer: a growable byte buffer in memory that is either anonymous (plain RAM) or
// backed by an unnamed file in a directory. File-backed pages are page cache: the kernel
// keeps the hot ones and may write back and drop the rest under memory pressure, so data
// that is read rarely (the fp32 vectors an int8 index only rescores with) stops costing
// resident memory. The file has no name (O_TMPFILE, or unlinked at once), so nothing is
// left behind by a crash; the contents are a cache, rebuilt by the owner, never reread.
//
// Thread safety: none; Resize() moves the data, so the owner excludes readers during it.
#pragma once

#include <cstddef>
#include <string>

namespace contextd {

class MappedBuffer {
 public:
  // dir: where the backing file goes; empty for anonymous memory. Falls back to anonymous
  // memory when no file can be made there (file_backed() says which).
  explicit MappedBuffer(const std::string& dir = "");
  ~MappedBuffer();
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;

  // Grows or shrinks to `bytes`, keeping the contents up to the smaller size; new bytes
  // are zero. Returns false (and changes nothing) when memory or disk space runs out.
  bool Resize(size_t bytes);
  char* data() const { return data_; }
  size_t size() const { return size_; }
  bool file_backed() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace contextd
