// A directory tree through one archive stream and back: the same files and bytes; cut,
// malformed or escaping streams refused with nothing written outside the target.
#include "common/dir_archive.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace contextd {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string Archive(const std::string& dir) {
  std::string out;
  EXPECT_TRUE(WriteDirArchive(dir, [&](std::string_view piece) {
                out.append(piece);
                return true;
              }).ok());
  return out;
}

TEST(DirArchiveTest, ATreeComesBackAsItWent) {
  TempDir src, dst;
  std::string big(3 << 20, '\0');  // past one piece
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  Write(src.path() + "/db/000001.sst", big);
  Write(src.path() + "/db/CURRENT", "MANIFEST-000002\n");
  Write(src.path() + "/sessions/empty", "");
  Write(src.path() + "/a name with spaces", "F 3 x\nE 0\n");  // entry-like bytes inside a file
  const std::string archive = Archive(src.path());
  ASSERT_TRUE(ExtractDirArchive(archive, dst.path() + "/out").ok());
  EXPECT_EQ(Read(dst.path() + "/out/db/000001.sst"), big);
  EXPECT_EQ(Read(dst.path() + "/out/db/CURRENT"), "MANIFEST-000002\n");
  EXPECT_TRUE(std::filesystem::exists(dst.path() + "/out/sessions/empty"));
  EXPECT_EQ(Read(dst.path() + "/out/a name with spaces"), "F 3 x\nE 0\n");
}

TEST(DirArchiveTest, CutMalformedAndEscapingStreamsAreRefused) {
  TempDir src, dst;
  Write(src.path() + "/db/CURRENT", "MANIFEST-000002\n");
  Write(src.path() + "/db/LOG", "log line\n");
  const std::string archive = Archive(src.path());
  const std::vector<std::string> bad = {
      archive.substr(0, archive.size() - 1),            // the end line cut
      archive.substr(0, archive.size() - 4),            // no end line
      archive.substr(0, archive.find("MANIFEST") + 3),  // inside a file
      archive + "x",                                    // after the end
      "contextd-archive 1\nE 1\n",                      // a count that does not match
      "not an archive",                                 //
      "contextd-archive 1\nF 2 ../escape\nhiE 1\n",     // out of the target
      "contextd-archive 1\nF 2 /tmp/abs\nhiE 1\n",      // absolute
      "contextd-archive 1\nF 2 a/./b\nhiE 1\n",         // dot parts
      "contextd-archive 1\nF x a\nhiE 1\n",             // no size
      "contextd-archive 1\nF 99999999999 a\nhiE 1\n",   // longer than the stream
  };
  for (const std::string& b : bad) {
    const Status st = ExtractDirArchive(b, dst.path() + "/t");
    EXPECT_FALSE(st.ok()) << b.substr(0, 60);
    EXPECT_EQ(st.reason(), "invalid_archive") << b.substr(0, 60);
  }
  EXPECT_FALSE(std::filesystem::exists(dst.path() + "/escape"));
}

// A seed arrives in whatever pieces the network gives: any split extracts the same tree,
// and a bad stream is refused whichever piece shows it (or at Finish, when cut).
TEST(DirArchiveTest, FedInPiecesOfAnySizeItExtractsTheSame) {
  TempDir src, dst;
  std::string table(100000, '\0');
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<char>(i * 7 % 253);
  Write(src.path() + "/db/000001.sst", table);
  Write(src.path() + "/db/CURRENT", "MANIFEST-000002\n");
  Write(src.path() + "/sessions/empty", "");
  Write(src.path() + "/llm_cache/LOG", "F 1 y\n");
  const std::string archive = Archive(src.path());
  for (size_t step : {1, 2, 3, 7, 4096, 1 << 20}) {
    const std::string out = dst.path() + "/s" + std::to_string(step);
    DirArchiveExtractor x(out);
    for (size_t at = 0; at < archive.size(); at += step) ASSERT_TRUE(x.Feed(archive.substr(at, step)).ok()) << step;
    ASSERT_TRUE(x.Finish().ok()) << step;
    EXPECT_EQ(x.files(), 4u);
    EXPECT_EQ(x.bytes(), archive.size());
    EXPECT_EQ(Read(out + "/db/000001.sst"), table) << step;
    EXPECT_EQ(Read(out + "/db/CURRENT"), "MANIFEST-000002\n");
    EXPECT_TRUE(std::filesystem::exists(out + "/sessions/empty"));
    EXPECT_EQ(Read(out + "/llm_cache/LOG"), "F 1 y\n");
  }
  for (const std::string& bad :
       {archive.substr(0, archive.size() / 2), archive + "x", std::string("contextd-archive 1\nF 2 ../escape\nhiE 1\n"),
        std::string("contextd-archive 2\n"), std::string(10000, 'F')}) {
    DirArchiveExtractor x(dst.path() + "/bad");
    Status st = Status::Ok();
    for (size_t at = 0; at < bad.size() && st.ok(); ++at) st = x.Feed(bad.substr(at, 1));
    if (st.ok()) st = x.Finish();
    EXPECT_EQ(st.reason(), "invalid_archive") << bad.substr(0, 40);
    EXPECT_EQ(x.Feed("more").reason(), "invalid_archive") << "errors stick";
  }
  EXPECT_FALSE(std::filesystem::exists(dst.path() + "/escape"));
}

TEST(DirArchiveTest, AReaderThatGoesAwayStopsTheWriter) {
  TempDir src;
  Write(src.path() + "/a", std::string(5 << 20, 'a'));
  size_t pieces = 0;
  const Status st = WriteDirArchive(src.path(), [&](std::string_view) { return ++pieces < 3; });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(pieces, 3u);
}

}  // namespace
}  // namespace contextd
