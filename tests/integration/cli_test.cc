// The ingest and query subcommands against a running server.
#include <cstdio>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

std::string RunCommand(const std::string& cmd, int* exit_code) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *exit_code = WEXITSTATUS(pclose(p));
  return out;
}

TEST(CliTest, IngestsBeirJsonlAndQueries) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  ASSERT_EQ(Call(*server.Client(), "PUT", "/v1/collections/beir", R"({"embedder":"glove"})").first, 201);
  std::string file = dir.path() + "/corpus.jsonl";
  FILE* f = fopen(file.c_str(), "w");
  for (int i = 0; i < 300; ++i) {
    fprintf(f,
            R"({"_id":"d%d","title":"Title %d","text":"Document number %d talks about topic%d.","metadata":{"n":%d}})"
            "\n",
            i, i, i, i % 7, i);
  }
  fprintf(f, R"({"_id":"whale","title":"Ocean giants","text":"Blue whales are the largest animals ever known."})"
             "\n");
  fclose(f);

  int code;
  std::string out = RunCommand(
      std::string(CONTEXTD_BINARY) + " ingest --url " + url + " --collection beir --batch 50 " + file, &code);
  ASSERT_EQ(code, 0) << out;
  auto summary = ParseJson(out);
  ASSERT_TRUE(summary.ok()) << out;
  EXPECT_EQ(summary->Find("documents")->as_int(), 301);
  EXPECT_EQ(Call(*server.Client(), "GET", "/v1/collections/beir").second.Find("documents")->as_int(), 301);

  out = RunCommand(std::string(CONTEXTD_BINARY) + " query --url " + url + " --collection beir --k 1 'huge sea mammals'",
                   &code);
  ASSERT_EQ(code, 0) << out;
  auto res = ParseJson(out);
  ASSERT_TRUE(res.ok()) << out;
  EXPECT_EQ(res->Find("results")->as_array()[0].Find("id")->as_string(), "whale");

  out = RunCommand(std::string(CONTEXTD_BINARY) + " query --url " + url +
                       " --collection beir --mode keyword --filter '{\"n\":{\"$lt\":2}}' --k 5 topic1",
                   &code);
  ASSERT_EQ(code, 0) << out;
  res = ParseJson(out);
  ASSERT_EQ(res->Find("results")->as_array().size(), 1u) << out;
  EXPECT_EQ(res->Find("results")->as_array()[0].Find("id")->as_string(), "d1");
}

TEST(CliTest, IngestReportsBadLinesAndServerErrors) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  std::string file = dir.path() + "/bad.jsonl";
  FILE* f = fopen(file.c_str(), "w");
  fprintf(f, "{\"_id\":\"a\",\"text\":\"ok\"}\nnot json\n");
  fclose(f);
  int code;
  RunCommand(std::string(CONTEXTD_BINARY) + " ingest --url " + url + " --collection c " + file + " 2>&1", &code);
  EXPECT_NE(code, 0);
  std::string good = dir.path() + "/good.jsonl";
  f = fopen(good.c_str(), "w");
  fprintf(f, "{\"_id\":\"a\",\"text\":\"ok\"}\n");
  fclose(f);
  std::string out = RunCommand(
      std::string(CONTEXTD_BINARY) + " ingest --url " + url + " --collection missing " + good + " 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("404"), std::string::npos) << out;
}

}  // namespace
}  // namespace contextd
