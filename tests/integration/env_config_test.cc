// Settings from the environment (CONTEXTD_<FLAG>): a flag beats the environment, which
// beats the config file; --log-format json (here CONTEXTD_LOG_FORMAT) writes one JSON
// object per log line.
#include <fstream>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

int QueryStatus(HttpClient& c) {
  auto r = c.Request("POST", "/v1/collections/d/query", R"({"query":"one two three four five","mode":"keyword"})");
  return r.ok() ? r->status : 0;
}

TEST(EnvConfigTest, FlagsBeatTheEnvironmentWhichBeatsTheConfigFile) {
  TempDir dir;
  const std::string config = dir.path() + "/config.json";
  std::ofstream(config) << R"({"max_query_tokens":100})";
  const std::vector<std::pair<std::string, std::string>> env = {{"CONTEXTD_MAX_QUERY_TOKENS", "3"},
                                                                {"CONTEXTD_LOG_FORMAT", "json"}};
  ServerProcess from_env(dir.path() + "/a", {"--config", config}, env);
  from_env.Start();
  ServerProcess from_flag(dir.path() + "/b", {"--config", config, "--max-query-tokens", "10"}, env);
  from_flag.Start();
  for (ServerProcess* s : {&from_env, &from_flag}) {
    ASSERT_EQ(s->Client()->Request("PUT", "/v1/collections/d", R"({"embedder":"hash"})")->status, 201);
  }
  EXPECT_EQ(QueryStatus(*from_env.Client()), 400) << "the environment's 3 words, not the config file's 100";
  EXPECT_EQ(QueryStatus(*from_flag.Client()), 200) << "the flag's 10 words, not the environment's 3";
  // Every log line is a JSON object with the message in it.
  std::ifstream log(dir.path() + "/a.log");
  std::string line;
  int lines = 0;
  bool serving = false;
  while (std::getline(log, line)) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok() && j->is_object()) << line;
    ASSERT_NE(j->Find("msg"), nullptr) << line;
    EXPECT_EQ(j->Find("logger")->as_string(), "contextd");
    serving |= j->Find("msg")->as_string().find("serving on") != std::string::npos;
    ++lines;
  }
  EXPECT_GT(lines, 0);
  EXPECT_TRUE(serving);
}

TEST(EnvConfigTest, ABadValueInTheEnvironmentIsRefusedByName) {
  TempDir dir;
  int rc = 0;
  const std::string out = RunShell(
      "CONTEXTD_MAX_QUERY_TOKENS=lots " + std::string(CONTEXTD_BINARY) + " serve --port 0 --data " + dir.path() + "/d",
      &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("max-query-tokens"), std::string::npos) << out;
}

}  // namespace
}  // namespace contextd
