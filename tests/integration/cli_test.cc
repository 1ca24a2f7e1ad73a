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

// Numeric settings have one range whether from a flag or the config file; a value outside
// it (1e9 search threads, a negative body limit) stops the start and names the setting.
TEST(CliTest, ServeRefusesSettingsOutOfRange) {
  TempDir dir;
  const std::string serve =
      std::string(CONTEXTD_BINARY) + " serve --port 0 --data " + dir.path() + "/data --models " + CONTEXTD_MODELS_DIR;
  const std::string config = dir.path() + "/contextd.json";
  const std::pair<const char*, const char*> cases[] = {
      {R"({"search_threads":1e9})", "'search_threads' must be a whole number from 0 to 256"},
      {R"({"max_body_bytes":-1})", "'max_body_bytes' must be a whole number from 1024 to"},
      {R"({"write_threads":0})", "'write_threads' must be a whole number from 1 to 1024"},
      {R"({"embed_threads":2.5})", "'embed_threads' must be a whole number"},
      {R"({"port":"8080"})", "'port' must be a whole number from 0 to 65535"},
  };
  for (const auto& [json, message] : cases) {
    FILE* f = fopen(config.c_str(), "w");
    fputs(json, f);
    fclose(f);
    int code = 0;
    const std::string out = RunCommand(serve + " --config " + config + " 2>&1", &code);
    EXPECT_EQ(code, 2) << json << ": " << out;
    EXPECT_NE(out.find(message), std::string::npos) << json << ": " << out;
  }
  int code = 0;
  const std::string out = RunCommand(serve + " --search-threads 100000 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--search-threads: Value 100000 not in range 0 to 256"), std::string::npos) << out;
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

namespace contextd {
namespace {

// `contextd eval` on a tiny BEIR-layout set whose metrics are known: query q1's only
// relevant document ranks first (nDCG 1, MRR 1); q2's relevant document ("stars") does not
// contain the query's words, so keyword search cannot find it (0); q3 has no judgements and
// is not scored.
// contextd backup writes every collection of one server to a directory; contextd restore
// brings them into another, documents and settings whole.
TEST(CliTest, BackupAndRestoreAWholeServer) {
  TempDir dir;
  ServerProcess a(dir.path() + "/a");
  a.Start();
  auto c = a.Client();
  ASSERT_EQ(Call(*c, "PUT", "/v1/collections/one", R"({"embedder":"glove"})").first, 201);
  ASSERT_EQ(
      Call(*c, "PUT", "/v1/collections/two", R"({"embedder":"glove","chunking":{"max_tokens":10,"overlap":2}})").first,
      201);
  ASSERT_EQ(Call(*c, "POST", "/v1/collections/one/documents",
                 R"({"documents":[{"id":"x","text":"tea leaves steep in hot water"},{"id":"y","text":"rivers flow"}]})")
                .first,
            200);
  ASSERT_EQ(Call(*c, "POST", "/v1/collections/two/documents",
                 R"({"documents":[{"id":"z","text":"volcanoes erupt molten rock and ash","metadata":{"k":1}}]})")
                .first,
            200);
  int code = 0;
  const std::string out =
      RunCommand(std::string(CONTEXTD_BINARY) + " backup --url http://127.0.0.1:" + std::to_string(a.port()) +
                     " --out " + dir.path() + "/backup 2>&1",
                 &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/one/snapshots").second.Find("snapshots")->as_array().size(), 0u)
      << "the server's copies are removed once downloaded";

  ServerProcess b(dir.path() + "/b");
  b.Start();
  auto t = b.Client();
  const std::string restore = std::string(CONTEXTD_BINARY) +
                              " restore --url http://127.0.0.1:" + std::to_string(b.port()) + " --dir " + dir.path() +
                              "/backup 2>&1";
  const std::string restored = RunCommand(restore, &code);
  ASSERT_EQ(code, 0) << restored;
  EXPECT_EQ(Call(*t, "GET", "/v1/collections/one").second.Find("documents")->as_int(), 2);
  auto two = Call(*t, "GET", "/v1/collections/two").second;
  EXPECT_EQ(two.Find("chunking")->Find("max_tokens")->as_int(), 10);
  EXPECT_EQ(Call(*t, "GET", "/v1/collections/two/documents/z").second.Find("metadata")->Find("k")->as_int(), 1);
  // Again: the collections exist now; each is reported and the exit code says so.
  const std::string again = RunCommand(restore, &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(again.find("already exists"), std::string::npos) << again;
}

TEST(CliTest, EvalReportsBeirMetrics) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  server.Start();
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  ASSERT_EQ(Call(*server.Client(), "PUT", "/v1/collections/b", R"({"embedder":"glove"})").first, 201);
  ASSERT_EQ(Call(*server.Client(), "POST", "/v1/collections/b/documents", R"({"documents":[
      {"id":"whale","text":"Blue whales are the largest animals in the ocean."},
      {"id":"stars","text":"Telescopes observe distant galaxies."},
      {"id":"bread","text":"Bakers knead dough before baking bread."}]})")
                .first,
            200);
  const std::string q = dir.path() + "/queries.jsonl", r = dir.path() + "/qrels.tsv";
  FILE* f = fopen(q.c_str(), "w");
  fputs(
      "{\"_id\":\"q1\",\"text\":\"largest whales\"}\n{\"_id\":\"q2\",\"text\":\"cosmos\"}\n"
      "{\"_id\":\"q3\",\"text\":\"bread\"}\n",
      f);
  fclose(f);
  f = fopen(r.c_str(), "w");
  fputs("query-id\tcorpus-id\tscore\nq1\twhale\t1\nq2\tstars\t1\n", f);
  fclose(f);
  int code;
  std::string out = RunCommand(std::string(CONTEXTD_BINARY) + " eval --url " + url +
                                   " --collection b --mode keyword --queries " + q + " --qrels " + r,
                               &code);
  ASSERT_EQ(code, 0) << out;
  auto m = ParseJson(out);
  ASSERT_TRUE(m.ok()) << out;
  EXPECT_EQ(m->Find("queries")->as_int(), 2);
  EXPECT_NEAR(m->Find("ndcg@10")->as_double(), 0.5, 1e-9);
  EXPECT_NEAR(m->Find("mrr@10")->as_double(), 0.5, 1e-9);
  EXPECT_NEAR(m->Find("recall@100")->as_double(), 0.5, 1e-9);
  EXPECT_GT(m->Find("latency_ms")->Find("p99")->as_double(), 0.0);
  // Bad input: a missing qrels file is a clear error.
  out = RunCommand(std::string(CONTEXTD_BINARY) + " eval --url " + url + " --collection b --queries " + q +
                       " --qrels /nonexistent.tsv 2>&1",
                   &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("cannot read /nonexistent.tsv"), std::string::npos) << out;
}

}  // namespace
}  // namespace contextd
