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

Status ExtractDirArchive(std::string_view archive, const std::string& dir) {
  namespace fs = std::filesystem;
  if (archive.substr(0, kMagic.size()) != kMagic) return Bad("not a contextd archive");
  size_t at = kMagic.size();
  size_t files = 0;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("creating " + dir + ": " + ec.message());
  while (true) {
    const size_t eol = archive.find('\n', at);
    if (eol == std::string_view::npos) return Bad("cut short after " + std::to_string(files) + " files");
    const std::string_view line = archive.substr(at, eol - at);
    at = eol + 1;
    if (line.substr(0, 2) == "E ") {
      size_t count = 0;
      const auto r = std::from_chars(line.data() + 2, line.data() + line.size(), count);
      if (r.ec != std::errc() || r.ptr != line.data() + line.size() || count != files)
        return Bad("its end line does not match the " + std::to_string(files) + " files read");
      if (at != archive.size()) return Bad("bytes after its end");
      return Status::Ok();
    }
    if (line.substr(0, 2) != "F ") return Bad("malformed entry line");
    uint64_t size = 0;
    const char* first = line.data() + 2;
    const auto r = std::from_chars(first, line.data() + line.size(), size);
    if (r.ec != std::errc() || r.ptr == line.data() + line.size() || *r.ptr != ' ') return Bad("malformed size");
    const std::string_view path(r.ptr + 1, static_cast<size_t>(line.data() + line.size() - r.ptr - 1));
    if (!SafePath(path)) return Bad("unsafe path '" + std::string(path) + "'");
    if (size > archive.size() - at) return Bad("cut short in " + std::string(path));
    const fs::path target = fs::path(dir) / std::string(path);
    fs::create_directories(target.parent_path(), ec);
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(archive.data() + at, static_cast<std::streamsize>(size));
    if (!out) return Internal("writing " + target.string());
    at += size;
    ++files;
  }
}

}  // namespace contextd
