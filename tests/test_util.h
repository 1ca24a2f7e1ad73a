// Helpers shared by the tests: temporary directories that clean up after themselves.
#pragma once

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

}  // namespace contextd
