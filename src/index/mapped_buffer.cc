#include "index/mapped_buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace contextd {
namespace {

int OpenUnnamedFile(const std::string& dir) {
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // Filesystems without O_TMPFILE: a named file, unlinked while open.
  std::string templ = dir + "/vectors-XXXXXX";
  std::vector<char> name(templ.begin(), templ.end());
  name.push_back('\0');
  fd = mkstemp(name.data());
  if (fd >= 0) unlink(name.data());
  return fd;
}

}  // namespace

MappedBuffer::MappedBuffer(const std::string& dir) {
  if (!dir.empty()) fd_ = OpenUnnamedFile(dir);
}

MappedBuffer::~MappedBuffer() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
}

bool MappedBuffer::Resize(size_t bytes) {
  if (bytes == size_) return true;
  if (bytes == 0) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
    if (fd_ >= 0 && ftruncate(fd_, 0) != 0) return false;
    return true;
  }
  // Reserve the file's blocks first, so a full disk fails here and not as SIGBUS later.
  if (fd_ >= 0 && bytes > size_ && posix_fallocate(fd_, 0, static_cast<off_t>(bytes)) != 0) return false;
  if (fd_ >= 0 && bytes < size_ && ftruncate(fd_, static_cast<off_t>(bytes)) != 0) return false;
  void* p;
  if (data_ == nullptr) {
    p = fd_ >= 0 ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0)
                 : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  } else {
    p = mremap(data_, size_, bytes, MREMAP_MAYMOVE);
  }
  if (p == MAP_FAILED) return false;
  data_ = static_cast<char*>(p);
  size_ = bytes;
  return true;
}

}  // namespace contextd
