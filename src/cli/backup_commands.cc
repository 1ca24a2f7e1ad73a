// contextd backup / restore: every collection of a running server as snapshot files in a
// directory, and back (the server's /v1/collections/{c}/snapshots endpoints do the work).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/json.h"
#include "net/http_client.h"

namespace contextd {
namespace {

namespace fs = std::filesystem;

// The error a reply carries, or its status.
std::string Why(const ClientResponse& r) {
  auto body = ParseJson(r.body);
  if (body.ok()) {
    if (const Json* e = body->Find("error"); e != nullptr && e->Find("message") != nullptr) {
      return e->Find("message")->as_string();
    }
  }
  return "HTTP " + std::to_string(r.status);
}

StatusOr<std::unique_ptr<HttpClient>> Connect(const std::string& url) {
  std::string host;
  int port = 0;
  CTX_RETURN_IF_ERROR(ParseUrl(url, &host, &port));
  auto client = std::make_unique<HttpClient>(host, port);
  client->set_timeout_ms(3600 * 1000);  // a large collection's snapshot takes a while
  return client;
}

}  // namespace

int RunBackup(const BackupOptions& o) {
  auto client = Connect(o.url);
  if (!client.ok()) {
    fprintf(stderr, "contextd backup: %s\n", client.status().message().c_str());
    return 2;
  }
  HttpClient& c = **client;
  const HttpHeaders auth = ClientAuthHeaders(o.api_key);
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) {
    fprintf(stderr, "contextd backup: cannot create %s: %s\n", o.out.c_str(), ec.message().c_str());
    return 2;
  }
  auto listed = c.Request("GET", "/v1/collections", "", auth);
  if (!listed.ok() || listed->status != 200) {
    fprintf(stderr, "contextd backup: cannot list collections: %s\n",
            listed.ok() ? Why(*listed).c_str() : listed.status().message().c_str());
    return 1;
  }
  Json manifest = Json::MakeObject();
  manifest["collections"] = Json::MakeArray();
  int failed = 0;
  auto collections = ParseJson(listed->body);
  if (!collections.ok() || collections->Find("collections") == nullptr) {
    fprintf(stderr, "contextd backup: the collection list is not JSON\n");
    return 1;
  }
  for (const Json& info : collections->Find("collections")->as_array()) {
    const std::string name = info.Find("name")->as_string();
    const std::string base = "/v1/collections/" + UrlEncode(name) + "/snapshots";
    auto made = c.Request("POST", base, "", auth);
    if (!made.ok() || made->status != 201) {
      fprintf(stderr, "contextd backup: %s: %s\n", name.c_str(),
              made.ok() ? Why(*made).c_str() : made.status().message().c_str());
      ++failed;
      continue;
    }
    Json snap = *ParseJson(made->body);
    const std::string snapshot = snap.Find("name")->as_string();
    auto file = c.Request("GET", base + "/" + snapshot, "", auth);
    if (!file.ok() || file->status != 200) {
      fprintf(stderr, "contextd backup: %s: download failed: %s\n", name.c_str(),
              file.ok() ? Why(*file).c_str() : file.status().message().c_str());
      ++failed;
      continue;
    }
    std::ofstream(o.out + "/" + name + ".snap", std::ios::binary) << file->body;
    // The server's copy is not needed once the file is here.
    (void)c.Request("DELETE", base + "/" + snapshot, "", auth);
    snap["file"] = name + ".snap";
    printf("%s\n", snap.Dump().c_str());
    manifest["collections"].push_back(std::move(snap));
  }
  std::ofstream(o.out + "/manifest.json") << manifest.Dump() << "\n";
  return failed == 0 ? 0 : 1;
}

int RunRestore(const RestoreOptions& o) {
  auto client = Connect(o.url);
  if (!client.ok()) {
    fprintf(stderr, "contextd restore: %s\n", client.status().message().c_str());
    return 2;
  }
  std::ifstream in(o.dir + "/manifest.json");
  std::stringstream text;
  text << in.rdbuf();
  auto manifest = ParseJson(text.str());
  if (!in || !manifest.ok() || manifest->Find("collections") == nullptr) {
    fprintf(stderr, "contextd restore: %s/manifest.json is missing or not a backup's manifest\n", o.dir.c_str());
    return 2;
  }
  const HttpHeaders auth = ClientAuthHeaders(o.api_key);
  int failed = 0;
  for (const Json& entry : manifest->Find("collections")->as_array()) {
    const std::string name = entry.Find("collection")->as_string();
    std::ifstream f(o.dir + "/" + entry.Find("file")->as_string(), std::ios::binary);
    std::stringstream bytes;
    bytes << f.rdbuf();
    auto r = (*client)->Request("POST", "/v1/collections/" + UrlEncode(name) + "/snapshots/restore", bytes.str(), auth);
    if (!r.ok() || r->status != 201) {
      fprintf(stderr, "contextd restore: %s: %s\n", name.c_str(),
              r.ok() ? Why(*r).c_str() : r.status().message().c_str());
      ++failed;
      continue;
    }
    printf("%s\n", r->body.c_str());
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace contextd
