// Nothing acknowledged is lost: across SIGKILL at any moment, and across clean restarts.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONTEXTD_TEST_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CONTEXTD_TEST_UNDER_ASAN)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif

std::string DocText(const std::string& id) {
  // A unique keyword per document lets the test find it through the rebuilt index.
  return "Acknowledged document " + id + " carries token zq" + id + " in its text. It has a second sentence too.";
}

TEST(DurabilityTest, SigkillMidStreamLosesNoAcknowledgedDocument) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::set<std::string> acked;
  std::mutex mu;
  std::atomic<int> next_batch{0};
  for (int round = 0; round < 3; ++round) {
    ServerProcess server(data);
    server.Start();
    if (round == 0) {
      ASSERT_EQ(Call(*server.Client(), "PUT", "/v1/collections/crash", R"({"embedder":"glove"})").first, 201);
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&] {
        auto client = server.Client();
        while (!stop) {
          int b = next_batch++;
          Json docs = Json::MakeArray();
          std::vector<std::string> ids;
          for (int i = 0; i < 10; ++i) {
            std::string id = std::to_string(b) + "x" + std::to_string(i);
            Json d = Json::MakeObject();
            d["id"] = id;
            d["text"] = DocText(id);
            d["metadata"]["batch"] = b;
            docs.push_back(std::move(d));
            ids.push_back(id);
          }
          Json body = Json::MakeObject();
          body["documents"] = std::move(docs);
          auto r = client->Post("/v1/collections/crash/documents", body.Dump());
          if (!r.ok()) return;  // the server died under us: this batch was never acknowledged
          if (r->status == 200) {
            std::lock_guard<std::mutex> lock(mu);
            acked.insert(ids.begin(), ids.end());
          }
        }
      });
    }
    // Kill at a different moment each round, while writes are in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 250 * round));
    server.Kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
    ASSERT_TRUE(WIFSIGNALED(server.exit_status()));
  }
  ASSERT_GT(acked.size(), 100u) << "the test should have streamed real load";
  std::printf("%zu documents acknowledged across 3 SIGKILLs\n", acked.size());

  ServerProcess server(data);
  server.Start();
  auto client = server.Client();
  auto info = Call(*client, "GET", "/v1/collections/crash").second;
  EXPECT_GE(info.Find("documents")->as_int(), static_cast<int64_t>(acked.size()));
  // No clean shutdown ever saved a graph that matches: it was rebuilt from the store.
  EXPECT_EQ(info.Find("index")->Find("graph_source")->as_string(), "rebuilt");
  for (const auto& id : acked) {
    auto [st, doc] = Call(*client, "GET", "/v1/collections/crash/documents/" + id);
    ASSERT_EQ(st, 200) << "acknowledged document " << id << " was lost";
    EXPECT_EQ(doc.Find("text")->as_string(), DocText(id));
  }
  // The rebuilt indexes answer for acknowledged documents too.
  std::mt19937 rng(3);
  std::vector<std::string> sample(acked.begin(), acked.end());
  std::shuffle(sample.begin(), sample.end(), rng);
  for (size_t i = 0; i < 20 && i < sample.size(); ++i) {
    auto res = Call(*client, "POST", "/v1/collections/crash/query",
                    R"({"query":"zq)" + sample[i] + R"(","mode":"keyword","k":1})")
                   .second;
    ASSERT_EQ(res.Find("results")->as_array().size(), 1u) << sample[i];
    EXPECT_EQ(res.Find("results")->as_array()[0].Find("id")->as_string(), sample[i]);
  }
}

// Replacements and deletes are acknowledged as durably as first writes. Each writer owns
// its ids and replaces (with a different number of chunks) or deletes them at random; after
// SIGKILL every id is in its last acknowledged state, or in the state of the one request
// that was in flight, and no chunk of a replaced version is left for a query to find.
TEST(DurabilityTest, SigkillKeepsEveryAcknowledgedReplaceAndDelete) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  constexpr int kWriters = 4, kIdsEach = 25;
  // A version number, or 0 for absent; every version is a unique token in every chunk.
  std::vector<int> acked(kWriters * kIdsEach, 0), in_flight(kWriters * kIdsEach, -1);
  std::atomic<int> next_version{1};
  std::vector<int> issued;
  std::mutex mu;
  auto text = [](int version) {  // 1 to 4 sentences: replacements change the chunk count
    std::string t = "Sentence 0 of ver" + std::to_string(version) + ".";
    for (int s = 1; s <= version % 4; ++s)
      t += " Sentence " + std::to_string(s) + " of ver" + std::to_string(version) + ".";
    return t;
  };
  {
    ServerProcess server(data);
    server.Start();
    ASSERT_EQ(Call(*server.Client(), "PUT", "/v1/collections/churn",
                   R"({"embedder":"glove","chunking":{"max_tokens":8,"overlap":1}})")
                  .first,
              201);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        auto client = server.Client();
        std::mt19937 rng(static_cast<uint32_t>(w));
        while (!stop) {
          const int slot = w * kIdsEach + static_cast<int>(rng() % kIdsEach);
          const std::string id = "d" + std::to_string(slot);
          const bool remove = rng() % 10 < 3;
          const int version = remove ? 0 : next_version++;
          {
            std::lock_guard<std::mutex> lock(mu);
            in_flight[slot] = version;
            if (version != 0) issued.push_back(version);
          }
          auto r = remove ? client->Request("DELETE", "/v1/collections/churn/documents/" + id)
                          : client->Post("/v1/collections/churn/documents",
                                         R"({"documents":[{"id":")" + id + R"(","text":")" + text(version) + R"("}]})");
          if (!r.ok()) return;  // killed: this one stays in flight
          std::lock_guard<std::mutex> lock(mu);
          ASSERT_TRUE(r->status == 200 || (remove && r->status == 404)) << r->status << " " << r->body;
          acked[slot] = version;
          in_flight[slot] = -1;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    server.Kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
  }
  ASSERT_GT(next_version.load(), 100) << "the test should have streamed real load";

  ServerProcess server(data);
  server.Start();
  auto client = server.Client();
  std::set<int> live;
  for (int slot = 0; slot < kWriters * kIdsEach; ++slot) {
    const std::string id = "d" + std::to_string(slot);
    auto [st, doc] = Call(*client, "GET", "/v1/collections/churn/documents/" + id);
    ASSERT_TRUE(st == 200 || st == 404) << st;
    const std::string found = st == 200 ? doc.Find("text")->as_string() : "";
    const int version = st == 404 ? 0 : std::stoi(found.substr(found.find("ver") + 3));
    if (version > 0) {
      ASSERT_EQ(found, text(version));
    }
    ASSERT_TRUE(version == acked[slot] || version == in_flight[slot])
        << id << ": found version " << version << ", acknowledged " << acked[slot] << ", in flight " << in_flight[slot];
    if (version > 0) live.insert(version);
  }
  // No chunk of a version that is not live is left behind; a live one is found.
  for (int v : issued) {
    auto res = Call(*client, "POST", "/v1/collections/churn/query",
                    R"({"query":"ver)" + std::to_string(v) + R"(","mode":"keyword","k":3})")
                   .second;
    EXPECT_EQ(res.Find("results")->as_array().empty(), live.count(v) == 0) << "ver" << v << ": " << res.Dump();
  }
}

TEST(DurabilityTest, CleanRestartServesTheSameAnswers) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::string before;
  {
    ServerProcess server(data);
    server.Start();
    auto c = server.Client();
    ASSERT_EQ(
        Call(*c, "PUT", "/v1/collections/p", R"({"embedder":"glove","chunking":{"max_tokens":12,"overlap":3}})").first,
        201);
    std::string text =
        "Volcanoes erupt molten rock. Glaciers carve valleys slowly. Rivers deposit silt in deltas. "
        "Earthquakes shake cities along faults.";
    ASSERT_EQ(Call(*c, "POST", "/v1/collections/p/documents",
                   R"({"documents":[{"id":"geo","text":")" + text +
                       R"(","metadata":{"k":"v"}},{"id":"x","text":"unrelated cooking recipes"}]})")
                  .first,
              200);
    ASSERT_EQ(Call(*c, "DELETE", "/v1/collections/p/documents/x").first, 200);
    auto res = Call(*c, "POST", "/v1/collections/p/query", R"({"query":"ice sheets and mountains","k":5})").second;
    before = res.Find("results")->Dump();
    server.Kill(SIGTERM);
    ASSERT_TRUE(WIFEXITED(server.exit_status()));
    EXPECT_EQ(WEXITSTATUS(server.exit_status()), 0);
  }
  ServerProcess server(data);
  server.Start();
  auto c = server.Client();
  auto info = Call(*c, "GET", "/v1/collections/p").second;
  EXPECT_EQ(info.Find("documents")->as_int(), 1);
  EXPECT_EQ(info.Find("index")->Find("graph_source")->as_string(), "loaded");
  EXPECT_EQ(info.Find("chunking")->Find("max_tokens")->as_int(), 12);
  EXPECT_GT(info.Find("chunks")->as_int(), 1);
  auto res = Call(*c, "POST", "/v1/collections/p/query", R"({"query":"ice sheets and mountains","k":5})").second;
  EXPECT_EQ(res.Find("results")->Dump(), before);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/p/documents/x").first, 404);
}

// A saved graph that no longer matches the store (written to after the save, or damaged)
// is never used: the server rebuilds it and answers as before.
TEST(DurabilityTest, StaleOrCorruptGraphFilesAreRebuilt) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string query = R"({"query":"ocean tides","k":3,"mode":"vector"})";
  std::string expected;
  {
    ServerProcess server(data);
    server.Start();
    auto c = server.Client();
    ASSERT_EQ(Call(*c, "PUT", "/v1/collections/g", R"({"embedder":"glove"})").first, 201);
    ASSERT_EQ(Call(*c, "POST", "/v1/collections/g/documents",
                   R"({"documents":[{"id":"a","text":"The moon pulls the ocean into tides."},
                                    {"id":"b","text":"Bread rises with yeast."}]})")
                  .first,
              200);
    server.Kill(SIGTERM);  // saves the graph
  }
  {
    ServerProcess server(data);
    server.Start();
    auto c = server.Client();
    EXPECT_EQ(Call(*c, "GET", "/v1/collections/g").second.Find("index")->Find("graph_source")->as_string(), "loaded");
    ASSERT_EQ(Call(*c, "POST", "/v1/collections/g/documents",
                   R"({"documents":[{"id":"c","text":"Waves and currents move sea water."}]})")
                  .first,
              200);
    expected = Call(*c, "POST", "/v1/collections/g/query", query).second.Find("results")->Dump();
    server.Kill(SIGKILL);  // the saved graph now predates an acknowledged write
  }
  {
    ServerProcess server(data);
    server.Start();
    auto c = server.Client();
    auto info = Call(*c, "GET", "/v1/collections/g").second;
    EXPECT_EQ(info.Find("index")->Find("graph_source")->as_string(), "rebuilt");
    EXPECT_EQ(info.Find("documents")->as_int(), 3);
    EXPECT_EQ(Call(*c, "POST", "/v1/collections/g/query", query).second.Find("results")->Dump(), expected);
    server.Kill(SIGTERM);
  }
  // Damage the freshly saved graph file: it must be detected and rebuilt.
  for (const auto& entry : std::filesystem::directory_iterator(data + "/graphs")) {
    std::string path = entry.path().string();
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  }
  ServerProcess server(data);
  server.Start();
  auto c = server.Client();
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/g").second.Find("index")->Find("graph_source")->as_string(), "rebuilt");
  EXPECT_EQ(Call(*c, "POST", "/v1/collections/g/query", query).second.Find("results")->Dump(), expected);
}

// SIGTERM while a large write is going into the graphs, past the point where its reply
// could still be sent in the grace: the write, durable already, stops indexing and is
// acknowledged (never committed without a reply); the next start indexes its chunks.
TEST(DurabilityTest, SigtermDuringIndexingAcknowledgesTheStoredWrite) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  // The reply, once indexing stops at the cut-off (a quarter of the grace before its end),
  // must go out before the end: under AddressSanitizer, freeing the write's many small
  // strings alone takes a few hundred ms, so that build gets a longer grace (and, indexing
  // ten times slower, a smaller document still being indexed at the cut-off).
  auto server = std::make_unique<ServerProcess>(
      data, std::vector<std::string>{"--shutdown-grace-ms", kUnderAsan ? "3000" : "1200"});
  server->Start();
  auto c = server->Client();
  // Small chunks: many graph insertions for little text.
  ASSERT_EQ(
      Call(*c, "PUT", "/v1/collections/big", R"({"embedder":"glove","chunking":{"max_tokens":16,"overlap":0}})").first,
      201);
  const char* words[] = {"river", "protein", "market", "planet", "music",  "winter", "engine", "forest",
                         "court", "vaccine", "harbor", "theory", "garden", "copper", "signal", "temple"};
  std::mt19937 rng(5);
  std::string text;
  while (text.size() < (kUnderAsan ? 1'500'000u : 4'000'000u)) {
    for (int i = 0; i < 12; ++i) text += std::string(words[rng() % 16]) + " ";
    text += "and more. ";
  }
  text += "The last sentence names zqfinal.";
  Json body = *ParseJson(R"({"documents":[{"id":"big"}]})");
  body["documents"].as_array()[0]["text"] = text;
  std::atomic<int> status{-1};
  std::thread writer([&] {
    auto w = server->Client();
    w->set_timeout_ms(120000);
    auto r = w->Post("/v1/collections/big/documents", body.Dump());
    status = r.ok() ? r->status : 0;
  });
  // The document is readable once it is stored and its chunks are being indexed.
  while (Call(*c, "GET", "/v1/collections/big/documents/big").first != 200 && status.load() == -1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(status.load(), -1) << "the write finished before it could be interrupted; make it bigger";
  server->Signal(SIGTERM);
  server->Wait();
  writer.join();
  ASSERT_TRUE(WIFEXITED(server->exit_status()));
  EXPECT_EQ(WEXITSTATUS(server->exit_status()), 0);
  EXPECT_EQ(status.load(), 200) << "a stored write must be acknowledged";
  std::stringstream log;
  log << std::ifstream(data + ".log").rdbuf();
  EXPECT_NE(log.str().find("left out of the graphs"), std::string::npos) << "indexing was not cut short";
  server = std::make_unique<ServerProcess>(data);
  server->Start();
  c = server->Client();
  auto info = Call(*c, "GET", "/v1/collections/big").second;
  EXPECT_EQ(info.Find("documents")->as_int(), 1);
  EXPECT_EQ(info.Find("index")->Find("graph_source")->as_string(), "rebuilt");
  auto hit = Call(*c, "POST", "/v1/collections/big/query", R"({"query":"zqfinal","k":1,"mode":"keyword"})").second;
  ASSERT_EQ(hit.Find("results")->as_array().size(), 1u) << hit.Dump();
  EXPECT_NE(hit.Find("results")->as_array()[0].Find("text")->as_string().find("zqfinal"), std::string::npos);
  // Every chunk is back in the graphs.
  EXPECT_EQ(info.Find("index")->Find("graph_nodes")->as_int(), info.Find("chunks")->as_int());
}

}  // namespace
}  // namespace contextd
