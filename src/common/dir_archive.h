// A directory tree as one byte stream, to move a replica's seed between nodes:
//
//   "contextd-archive 1\n"
//   per regular file: "F <size> <relative path>\n" then exactly <size> bytes
//   "E <file count>\n"
//
// The end line is what tells a complete stream from a cut one. Extraction refuses absolute
// paths, ".." and anything after the end line, so a hostile or broken peer cannot write
// outside the target directory.
//
// Thread safety: free functions over their arguments.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace contextd {

// Streams every regular file under `dir` (in path order) to `sink`, a piece at a time;
// `sink` returns false to stop (the reader went away): Cancelled then.
Status WriteDirArchive(const std::string& dir, const std::function<bool(std::string_view)>& sink);

// Writes the files of an archive fed a piece at a time as it arrives (a seed streamed
// from a peer) under `dir` (created; it should be empty), holding no more than one entry
// line in memory besides the piece. InvalidArgument (invalid_archive) for a malformed or
// escaping stream, as soon as it shows; Finish() says whether the stream was complete.
// Errors stick: once Feed() failed, every later call returns the same error.
class DirArchiveExtractor {
 public:
  explicit DirArchiveExtractor(std::string dir) : dir_(std::move(dir)) {}
  Status Feed(std::string_view piece);
  // Ok once the end line was read, with nothing after it; invalid_archive for a cut stream.
  Status Finish();
  uint64_t bytes() const { return bytes_; }  // fed so far
  size_t files() const { return files_; }    // written whole so far

 private:
  Status EntryLine(std::string_view line);
  Status Fail(Status st);

  enum class State { kMagic, kLine, kFile, kDone };
  const std::string dir_;
  State state_ = State::kMagic;
  std::string pending_;  // the magic or an entry line, until complete
  std::ofstream out_;    // the file being written
  std::string path_;     // its path, for messages
  uint64_t left_ = 0;    // its bytes still to come
  uint64_t bytes_ = 0;
  size_t files_ = 0;
  Status error_ = Status::Ok();
};

// Writes the files of a complete archive under `dir` (created; it should be empty).
// InvalidArgument (invalid_archive) for a cut, malformed or escaping stream.
Status ExtractDirArchive(std::string_view archive, const std::string& dir);

}  // namespace contextd
