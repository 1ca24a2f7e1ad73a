#include "common/dir_archive.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <vector>

namespace contextd {
namespace {

constexpr std::string_view kMagic = "contextd-archive 1\n";

Status Bad(const std::string& what) { return InvalidArgument("seed archive: " + what, "invalid_archive"); }

// A path the archive may name: relative, without "." or ".." parts.
bool SafePath(std::string_view p) {
  if (p.empty() || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Status WriteDirArchive(const std::string& dir, const std::function<bool(std::string_view)>& sink) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).generic_string());
  }
  if (ec) return Internal("listing " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  if (!sink(kMagic)) return Unavailable("the reader went away");
  std::string piece(1 << 20, '\0');
  for (const std::string& f : files) {
    std::ifstream in(dir + "/" + f, std::ios::binary);
    const uint64_t size = fs::file_size(dir + "/" + f, ec);
    if (!in || ec) return Internal("reading " + dir + "/" + f);
    if (!sink("F " + std::to_string(size) + " " + f + "\n")) return Unavailable("the reader went away");
    uint64_t left = size;
    while (left > 0) {
      in.read(piece.data(), static_cast<std::streamsize>(std::min<uint64_t>(left, piece.size())));
      const auto n = static_cast<size_t>(in.gcount());
      if (n == 0) return Internal("reading " + dir + "/" + f + ": shorter than its size");
      if (!sink(std::string_view(piece.data(), n))) return Unavailable("the reader went away");
      left -= n;
    }
  }
  if (!sink("E " + std::to_string(files.size()) + "\n")) return Unavailable("the reader went away");
  return Status::Ok();
}

Status DirArchiveExtractor::Fail(Status st) {
  error_ = st;
  out_.close();
  return st;
}

Status DirArchiveExtractor::Feed(std::string_view piece) {
  namespace fs = std::filesystem;
  if (!error_.ok()) return error_;
  bytes_ += piece.size();
  while (!piece.empty()) {
    switch (state_) {
      case State::kMagic: {
        const size_t n = std::min(piece.size(), kMagic.size() - pending_.size());
        pending_.append(piece.substr(0, n));
        piece.remove_prefix(n);
        if (kMagic.substr(0, pending_.size()) != pending_) return Fail(Bad("not a contextd archive"));
        if (pending_.size() == kMagic.size()) {
          std::error_code ec;
          fs::create_directories(dir_, ec);
          if (ec) return Fail(Internal("creating " + dir_ + ": " + ec.message()));
          pending_.clear();
          state_ = State::kLine;
        }
        break;
      }
      case State::kLine: {
        const size_t eol = piece.find('\n');
        pending_.append(piece.substr(0, eol == std::string_view::npos ? piece.size() : eol));
        // An entry line is a size and a path: anything longer is not one.
        if (pending_.size() > 8192) return Fail(Bad("malformed entry line"));
        if (eol == std::string_view::npos) return Status::Ok();
        piece.remove_prefix(eol + 1);
        std::string line = std::move(pending_);
        pending_.clear();
        CTX_RETURN_IF_ERROR(EntryLine(line));
        break;
      }
      case State::kFile: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left_, piece.size()));
        out_.write(piece.data(), static_cast<std::streamsize>(n));
        piece.remove_prefix(n);
        left_ -= n;
        if (left_ == 0) {
          out_.close();
          if (!out_) return Fail(Internal("writing " + path_));
          ++files_;
          state_ = State::kLine;
        }
        break;
      }
      case State::kDone:
        return Fail(Bad("bytes after its end"));
    }
  }
  return Status::Ok();
}

Status DirArchiveExtractor::EntryLine(std::string_view line) {
  namespace fs = std::filesystem;
  if (line.substr(0, 2) == "E ") {
    size_t count = 0;
    const auto r = std::from_chars(line.data() + 2, line.data() + line.size(), count);
    if (r.ec != std::errc() || r.ptr != line.data() + line.size() || count != files_)
      return Fail(Bad("its end line does not match the " + std::to_string(files_) + " files read"));
    state_ = State::kDone;
    return Status::Ok();
  }
  if (line.substr(0, 2) != "F ") return Fail(Bad("malformed entry line"));
  uint64_t size = 0;
  const char* first = line.data() + 2;
  const auto r = std::from_chars(first, line.data() + line.size(), size);
  if (r.ec != std::errc() || r.ptr == line.data() + line.size() || *r.ptr != ' ') return Fail(Bad("malformed size"));
  const std::string_view path(r.ptr + 1, static_cast<size_t>(line.data() + line.size() - r.ptr - 1));
  if (!SafePath(path)) return Fail(Bad("unsafe path '" + std::string(path) + "'"));
  const fs::path target = fs::path(dir_) / std::string(path);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  path_ = target.string();
  out_.open(target, std::ios::binary | std::ios::trunc);
  if (!out_) return Fail(Internal("writing " + path_));
  left_ = size;
  if (size > 0) {
    state_ = State::kFile;
    return Status::Ok();
  }
  out_.close();
  ++files_;
  return Status::Ok();
}

Status DirArchiveExtractor::Finish() {
  if (!error_.ok()) return error_;
  if (state_ == State::kDone) return Status::Ok();
  return Fail(state_ == State::kFile ? Bad("cut short in " + path_)
                                     : Bad("cut short after " + std::to_string(files_) + " files"));
}

Status ExtractDirArchive(std::string_view archive, const std::string& dir) {
  DirArchiveExtractor extractor(dir);
  CTX_RETURN_IF_ERROR(extractor.Feed(archive));
  return extractor.Finish();
}

}  // namespace contextd
