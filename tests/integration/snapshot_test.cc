// Collection snapshots end to end: taken under write load, downloaded, restored on another
// server; every document acknowledged before the snapshot is there and searches answer
// the same. Bad snapshots and names change nothing.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

std::string Text(int i) {
  static const char* kTopics[] = {"rivers carry silt to the sea", "volcanoes erupt molten rock",
                                  "markets fell on rate fears", "kittens and puppies play", "telescopes see galaxies"};
  return "note " + std::to_string(i) + ": " + kTopics[i % 5] + " zq" + std::to_string(i);
}

// Zero-padded, so ids sort as they are written: a restore writes in id order, and equal
// scores then break the same way in both collections.
std::string Id(const std::string& prefix, int i) {
  std::string n = std::to_string(i);
  return prefix + std::string(n.size() < 4 ? 4 - n.size() : 0, '0') + n;
}

Json Docs(const std::string& prefix, int first, int count) {
  Json docs = Json::MakeArray();
  for (int i = first; i < first + count; ++i) {
    Json d = Json::MakeObject();
    d["id"] = Id(prefix, i);
    d["text"] = Text(i);
    d["metadata"]["n"] = i;
    docs.push_back(std::move(d));
  }
  Json body = Json::MakeObject();
  body["documents"] = std::move(docs);
  return body;
}

// Every id in the collection, through the export.
std::set<std::string> AllIds(HttpClient& c, const std::string& collection) {
  std::set<std::string> ids;
  std::string after;
  for (;;) {
    auto [status, page] = Call(
        c, "GET", "/v1/collections/" + collection + "/documents?limit=1000" + (after.empty() ? "" : "&after=" + after));
    EXPECT_EQ(status, 200) << page.Dump();
    if (status != 200) return ids;
    for (const Json& d : page.Find("documents")->as_array()) ids.insert(d.Find("id")->as_string());
    if (page.Find("next")->is_null()) return ids;
    after = page.Find("next")->as_string();
  }
}

// A started server whose collection "src" (made from `spec`) holds documents s0000.. .
std::unique_ptr<ServerProcess> SourceServer(const std::string& data, int documents,
                                            const std::string& spec = R"({"embedder":"glove"})") {
  auto server = std::make_unique<ServerProcess>(data);
  server->Start();
  auto c = server->Client();
  EXPECT_EQ(Call(*c, "PUT", "/v1/collections/src", spec).first, 201);
  EXPECT_EQ(Call(*c, "POST", "/v1/collections/src/documents", Docs("s", 0, documents).Dump()).first, 200);
  return server;
}

TEST(SnapshotTest, TakenUnderWritesRestoresElsewhereWithEverythingAcknowledgedBefore) {
  TempDir dir;
  auto server = SourceServer(dir.path() + "/a", 300);
  ServerProcess& source = *server;
  auto c = source.Client();

  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto w = source.Client();
    for (int batch = 0; !stop; ++batch) {
      const Json body = Docs("w" + std::to_string(batch) + "-", 0, 20);
      auto r = w->Post("/v1/collections/src/documents", body.Dump());
      if (!r.ok() || r->status != 200) continue;
      std::lock_guard<std::mutex> lock(mu);
      for (const Json& d : body.Find("documents")->as_array()) acked.insert(d.Find("id")->as_string());
    }
  });
  while (true) {  // let some writes land first
    std::lock_guard<std::mutex> lock(mu);
    if (acked.size() >= 100) break;
  }
  std::set<std::string> before;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = acked;
  }
  auto [status, snap] = Call(*c, "POST", "/v1/collections/src/snapshots");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // writes go on after it
  stop = true;
  writer.join();
  ASSERT_EQ(status, 201) << snap.Dump();
  const std::string name = snap.Find("name")->as_string();
  const int64_t documents = snap.Find("documents")->as_int();
  EXPECT_GE(documents, static_cast<int64_t>(300 + before.size()));
  auto listed = Call(*c, "GET", "/v1/collections/src/snapshots").second;
  ASSERT_EQ(listed.Find("snapshots")->as_array().size(), 1u);
  EXPECT_EQ(listed.Find("snapshots")->as_array()[0].Find("name")->as_string(), name);
  auto file = c->Get("/v1/collections/src/snapshots/" + name);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->Header("content-type"), "application/octet-stream");
  EXPECT_EQ(static_cast<int64_t>(file->body.size()), snap.Find("size_bytes")->as_int());

  ServerProcess target(dir.path() + "/b");
  target.Start();
  auto t = target.Client();
  auto restored = t->Request("POST", "/v1/collections/copy/snapshots/restore", file->body);
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->status, 201) << restored->body;
  const std::set<std::string> copy = AllIds(*t, "copy");
  EXPECT_EQ(static_cast<int64_t>(copy.size()), documents);
  for (int i = 0; i < 300; ++i) EXPECT_TRUE(copy.count(Id("s", i))) << i;
  for (const std::string& id : before) EXPECT_TRUE(copy.count(id)) << id << " was acknowledged before the snapshot";
  const std::set<std::string> now = AllIds(*c, "src");
  for (const std::string& id : copy) EXPECT_TRUE(now.count(id)) << id << " was never written";
  // Settings travel with it; the document and its chunks are whole.
  auto doc = Call(*t, "GET", "/v1/collections/copy/documents/" + Id("s", 7)).second;
  EXPECT_EQ(doc.Find("text")->as_string(), Text(7));
  EXPECT_EQ(doc.Find("metadata")->Find("n")->as_int(), 7);
  EXPECT_EQ(Call(*t, "GET", "/v1/collections/copy").second.Find("embedder")->as_string(), "glove");
}

TEST(SnapshotTest, ARestoredCollectionAnswersTheSame) {
  TempDir dir;
  auto server = SourceServer(dir.path() + "/a", 200, R"({"embedder":"glove","chunking":{"max_tokens":8,"overlap":2}})");
  auto c = server->Client();
  auto [status, snap] = Call(*c, "POST", "/v1/collections/src/snapshots");
  ASSERT_EQ(status, 201) << snap.Dump();
  // From the snapshot this server keeps, into another collection here.
  auto restored = c->Request("POST", "/v1/collections/copy/snapshots/restore",
                             R"({"from":{"collection":"src","snapshot":")" + snap.Find("name")->as_string() + R"("}})");
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->status, 201) << restored->body;
  auto info = Call(*c, "GET", "/v1/collections/copy").second;
  EXPECT_EQ(info.Find("documents")->as_int(), 200);
  EXPECT_EQ(info.Find("chunks")->as_int(), Call(*c, "GET", "/v1/collections/src").second.Find("chunks")->as_int());
  EXPECT_EQ(info.Find("chunking")->Find("max_tokens")->as_int(), 8);
  for (const char* mode : {"keyword", "vector", "hybrid"}) {
    for (const char* q : {"molten rock eruptions", "interest rates and markets", "zq17 galaxies"}) {
      const std::string body =
          std::string(R"({"query":")") + q + R"(","k":10,"cache":"bypass","mode":")" + mode + R"("})";
      auto a = Call(*c, "POST", "/v1/collections/src/query", body).second;
      auto b = Call(*c, "POST", "/v1/collections/copy/query", body).second;
      ASSERT_NE(a.Find("results"), nullptr) << a.Dump();
      EXPECT_EQ(a.Find("results")->Dump(), b.Find("results")->Dump()) << mode << " " << q;
    }
  }
}

TEST(SnapshotTest, BadSnapshotsAndNamesChangeNothing) {
  TempDir dir;
  auto server = SourceServer(dir.path() + "/a", 20);
  auto c = server->Client();
  auto snap = Call(*c, "POST", "/v1/collections/src/snapshots").second;
  const std::string name = snap.Find("name")->as_string();
  const std::string bytes = c->Get("/v1/collections/src/snapshots/" + name)->body;
  auto reason = [](const Json& body) {
    const Json* e = body.Find("error");
    return e != nullptr && e->Find("code") ? e->Find("code")->as_string() : body.Dump();
  };
  auto restore = [&](const std::string& into, const std::string& body) {
    auto r = c->Request("POST", "/v1/collections/" + into + "/snapshots/restore", body);
    EXPECT_TRUE(r.ok());
    return std::make_pair(r->status, *ParseJson(r->body));
  };
  // Damaged: truncated, one byte flipped.
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  for (const std::string& bad : {bytes.substr(0, bytes.size() - 3), flipped}) {
    auto [status, body] = restore("copy", bad);
    EXPECT_EQ(status, 400);
    EXPECT_EQ(reason(body), "invalid_snapshot");
    EXPECT_EQ(Call(*c, "GET", "/v1/collections/copy").first, 404) << "a bad snapshot created the collection";
  }
  EXPECT_EQ(reason(restore("copy", "not a snapshot").second), "invalid_json");
  EXPECT_EQ(reason(restore("copy", R"({"from":{"collection":"src"}})").second), "missing_field");
  EXPECT_EQ(reason(restore("copy", R"({"from":{"collection":"src","snapshot":"nope"}})").second), "snapshot_not_found");
  EXPECT_EQ(restore("src", bytes).first, 409);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/src").second.Find("documents")->as_int(), 20);
  EXPECT_EQ(Call(*c, "POST", "/v1/collections/missing/snapshots").first, 404);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/src/snapshots/nope").first, 404);
  EXPECT_EQ(reason(Call(*c, "GET", "/v1/collections/src/snapshots/a.b").second), "invalid_name");
  // Deleted, it is gone from the list and the disk.
  EXPECT_EQ(Call(*c, "DELETE", "/v1/collections/src/snapshots/" + name).first, 200);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/src/snapshots/" + name).first, 404);
  EXPECT_EQ(Call(*c, "GET", "/v1/collections/src/snapshots").second.Find("snapshots")->as_array().size(), 0u);
  EXPECT_EQ(Call(*c, "DELETE", "/v1/collections/src/snapshots/" + name).first, 404);
}

}  // namespace
}  // namespace contextd
