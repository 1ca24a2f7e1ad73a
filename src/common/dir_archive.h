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

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace contextd {

// Streams every regular file under `dir` (in path order) to `sink`, a piece at a time;
// `sink` returns false to stop (the reader went away): Cancelled then.
Status WriteDirArchive(const std::string& dir, const std::function<bool(std::string_view)>& sink);

// Writes the files of a complete archive under `dir` (created; it should be empty).
// InvalidArgument (invalid_archive) for a cut, malformed or escaping stream.
Status ExtractDirArchive(std::string_view archive, const std::string& dir);

}  // namespace contextd
