#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "common/json.h"
#include "net/http_client.h"

namespace contextd {

HttpHeaders ClientAuthHeaders(const std::string& api_key) {
  std::string key = api_key;
  if (key.empty()) {
    if (const char* env = std::getenv("CONTEXTD_API_KEY")) key = env;
  }
  if (key.empty()) return {};
  return {{"Authorization", "Bearer " + key}};
}

namespace {

// Turns one BEIR-style corpus line into an API document.
StatusOr<Json> ToDocument(const std::string& line) {
  CTX_ASSIGN_OR_RETURN(Json in, ParseJson(line));
  if (!in.is_object()) return InvalidArgument("line is not a JSON object");
  Json doc = Json::MakeObject();
  const Json* id = in.Find("_id");
  if (id == nullptr) id = in.Find("id");
  if (id == nullptr) return InvalidArgument("line has no '_id' or 'id'");
  doc["id"] = id->is_string() ? *id : Json(id->Dump());
  if (const Json* t = in.Find("title"); t && t->is_string() && !t->as_string().empty()) doc["title"] = *t;
  if (const Json* t = in.Find("text")) doc["text"] = *t;
  if (const Json* m = in.Find("metadata"); m && m->is_object()) doc["metadata"] = *m;
  return doc;
}

}  // namespace

int RunIngest(const IngestOptions& o) {
  std::string host;
  int port;
  if (Status st = ParseUrl(o.url, &host, &port); !st.ok()) {
    fprintf(stderr, "contextd ingest: %s\n", st.message().c_str());
    return 2;
  }
  std::ifstream in(o.file);
  if (!in) {
    fprintf(stderr, "contextd ingest: cannot read %s\n", o.file.c_str());
    return 2;
  }
  std::vector<std::string> bodies;
  std::string line;
  size_t line_no = 0, docs = 0;
  Json batch = Json::MakeArray();
  auto flush = [&] {
    if (batch.as_array().empty()) return;
    Json body = Json::MakeObject();
    body["documents"] = std::move(batch);
    bodies.push_back(body.Dump());
    batch = Json::MakeArray();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto doc = ToDocument(line);
    if (!doc.ok()) {
      fprintf(stderr, "contextd ingest: %s line %zu: %s\n", o.file.c_str(), line_no, doc.status().message().c_str());
      return 1;
    }
    batch.push_back(std::move(doc).value());
    ++docs;
    if (static_cast<int>(batch.as_array().size()) >= std::max(1, o.batch)) flush();
  }
  flush();

  const auto start = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0}, chunks{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string error;
  std::vector<std::thread> threads;
  const std::string target = "/v1/collections/" + UrlEncode(o.collection) + "/documents";
  const HttpHeaders auth = ClientAuthHeaders(o.api_key);
  for (int t = 0; t < std::max(1, o.parallel); ++t) {
    threads.emplace_back([&] {
      HttpClient client(host, port);
      for (size_t i = next++; i < bodies.size() && !failed; i = next++) {
        auto res = client.Request("POST", target, bodies[i], auth);
        std::string problem;
        if (!res.ok())
          problem = res.status().message();
        else if (res->status != 200)
          problem = "HTTP " + std::to_string(res->status) + ": " + res->body;
        if (!problem.empty()) {
          std::lock_guard<std::mutex> lock(err_mu);
          error = problem;
          failed = true;
          return;
        }
        auto reply = ParseJson(res->body);
        if (reply.ok() && reply->Find("chunks")) chunks += static_cast<size_t>(reply->Find("chunks")->as_int());
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) {
    fprintf(stderr, "contextd ingest: %s\n", error.c_str());
    return 1;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Json summary = Json::MakeObject();
  summary["documents"] = static_cast<int64_t>(docs);
  summary["chunks"] = static_cast<int64_t>(chunks.load());
  summary["requests"] = static_cast<int64_t>(bodies.size());
  summary["seconds"] = seconds;
  summary["docs_per_second"] = seconds > 0 ? docs / seconds : 0.0;
  printf("%s\n", summary.Dump().c_str());
  return 0;
}

int RunQuery(const QueryOptions& o) {
  std::string host;
  int port;
  if (Status st = ParseUrl(o.url, &host, &port); !st.ok()) {
    fprintf(stderr, "contextd query: %s\n", st.message().c_str());
    return 2;
  }
  Json body = Json::MakeObject();
  body["query"] = o.text;
  body["k"] = o.k;
  if (!o.mode.empty()) body["mode"] = o.mode;
  if (!o.filter.empty()) {
    auto f = ParseJson(o.filter);
    if (!f.ok()) {
      fprintf(stderr, "contextd query: --filter: %s\n", f.status().message().c_str());
      return 2;
    }
    body["filter"] = std::move(f).value();
  }
  HttpClient client(host, port);
  auto res = client.Request("POST", "/v1/collections/" + UrlEncode(o.collection) + "/query", body.Dump(),
                            ClientAuthHeaders(o.api_key));
  if (!res.ok()) {
    fprintf(stderr, "contextd query: %s\n", res.status().message().c_str());
    return 1;
  }
  printf("%s\n", res->body.c_str());
  return res->status == 200 ? 0 : 1;
}

}  // namespace contextd
