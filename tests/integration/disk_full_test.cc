// A full disk, for real: the data directory sits on a small tmpfs that the test fills with
// a ballast file. Writes get 507 disk_full while reads go on and /readyz says degraded;
// freeing space lets writes resume without a restart; a restart on a full disk serves
// reads read-only instead of aborting. Needs permission to mount a tmpfs (root in a
// container with CAP_SYS_ADMIN); elsewhere it is skipped, and says so.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = dir_.path() + "/small";
    std::filesystem::create_directories(mnt_);
    if (mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=160m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "): the full-disk test needs it";
    }
    mounted_ = true;
  }
  void TearDown() override {
    server_.reset();
    if (HasFailure())
      std::filesystem::copy_file(mnt_ + "/data.log", "/tmp/disk_full_test.log",
                                 std::filesystem::copy_options::overwrite_existing);
    if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
  }

  // Leaves about `leave` bytes free on the tmpfs.
  void Fill(uint64_t leave) {
    struct statvfs fs;
    ASSERT_EQ(statvfs(mnt_.c_str(), &fs), 0);
    const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    const int fd = open((mnt_ + "/ballast").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ASSERT_GE(fd, 0);
    if (free_bytes > leave) {
      struct stat st;
      fstat(fd, &st);
      ASSERT_EQ(posix_fallocate(fd, st.st_size, static_cast<off_t>(free_bytes - leave)), 0);
    }
    close(fd);
  }
  void Free() { std::filesystem::remove(mnt_ + "/ballast"); }

  // 1 MB of pseudo-random letters: text that compresses (one letter repeated did) lets
  // RocksDB's flushes, which delete the WAL, give back about as much as each write takes,
  // and the disk then never reached the mark in some runs.
  int Write(int i) {
    std::string text(1 << 20, 'a');
    uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
    for (char& c : text) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      c = static_cast<char>('a' + (x >> 59) % 26);
    }
    const std::string body =
        R"({"documents":[{"id":"big)" + std::to_string(i) + R"(","text":")" + text + R"(","vector":[1,0,0,0]}]})";
    auto r = client_->Request("POST", "/v1/collections/docs/documents", body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    last_body_ = r.ok() ? r->body : "";
    return r.ok() ? r->status : 0;
  }
  // Writes 1 MB documents until one fails; returns its status.
  int WriteUntilRefused(int* i) {
    for (int n = 0; n < 200; ++n) {
      const int status = Write((*i)++);
      if (status != 200) return status;
    }
    return 200;
  }
  void StartServer() {
    server_ = std::make_unique<ServerProcess>(mnt_ + "/data", std::vector<std::string>{"--min-free-disk-mb", "32"});
    server_->Start();
    client_ = server_->Client();
  }

  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  std::string last_body_;
};

TEST_F(DiskFullTest, WritesStopReadsGoOnAndWritesResumeWhenSpaceIsFreed) {
  StartServer();
  ASSERT_EQ(Call(*client_, "PUT", "/v1/collections/docs", R"({"embedder":"none","dim":4})").first, 201);
  int i = 0;
  ASSERT_EQ(Write(i++), 200);

  Fill(40 << 20);  // 8 MB above the reserve
  ASSERT_EQ(WriteUntilRefused(&i), 507) << last_body_;
  EXPECT_NE(last_body_.find("disk_full"), std::string::npos) << last_body_;
  auto [ready, body] = Call(*client_, "GET", "/readyz");
  EXPECT_EQ(ready, 503);
  EXPECT_EQ(body.Find("storage")->as_string(), "disk_full");
  EXPECT_EQ(Call(*client_, "GET", "/v1/collections/docs/documents/big0").first, 200) << "reads go on";
  EXPECT_EQ(Call(*client_, "POST", "/v1/collections/docs/query", R"({"vector":[1,0,0,0],"k":1})").first, 200);
  // The other databases in the data directory stop at the same mark.
  EXPECT_EQ(Call(*client_, "POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"hi"})").first, 507);

  // Space freed: writes come back by themselves.
  Free();
  int status = 0;
  for (int attempt = 0; attempt < 30 && status != 200; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    status = Write(i++);
  }
  EXPECT_EQ(status, 200) << last_body_;
  EXPECT_EQ(Call(*client_, "GET", "/readyz").first, 200);

  // Full again, and the process dies: it restarts read-only instead of aborting.
  Fill(36 << 20);
  ASSERT_EQ(WriteUntilRefused(&i), 507) << last_body_;
  server_->Kill(SIGKILL);
  Fill(2 << 20);
  StartServer();
  auto [ready2, body2] = Call(*client_, "GET", "/readyz");
  EXPECT_EQ(ready2, 503);
  EXPECT_EQ(body2.Find("storage")->as_string(), "read_only");
  EXPECT_EQ(Call(*client_, "GET", "/v1/collections/docs/documents/big0").first, 200);
  EXPECT_EQ(Write(i++), 507) << last_body_;
}

}  // namespace
}  // namespace contextd
