// Helpers shared by the tests: temporary directories that clean up after themselves, and
// running a shell command (the real npm clients) for its output.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace contextd {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/contextd-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `command` with /bin/sh, stderr folded into stdout; returns the output, and the
// exit status in *rc (-1 when it could not start).
inline std::string RunShell(const std::string& command, int* rc) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

}  // namespace contextd
