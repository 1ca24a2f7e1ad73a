// An Engine over a test's temporary directory and the repo's models, for engine tests.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/engine.h"

namespace contextd {

// The embedders tests' collection specs name ("glove", "hash", "none"), resolved as the
// engine's own registry resolves them: for CreateFromSpec in tests that hold an Engine.
inline const EmbedderCatalog& TestEmbedders() {
  static const EmbedderRegistry* registry = new EmbedderRegistry(CONTEXTD_MODELS_DIR);
  return *registry;
}

inline std::unique_ptr<Engine> OpenTestEngine(const std::string& dir, MetricsRegistry* metrics) {
  EngineOptions o;
  o.data_dir = dir;
  o.models_dir = CONTEXTD_MODELS_DIR;
  auto e = Engine::Open(o, metrics);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

// The log of an engine fed mutations by hand (Engine::Apply), as a replica is fed by its
// log: it commits nothing and leads no maintenance, so the engine proposes no splits of
// its own (a replica's come in the stream, from the node that leads).
class HandFedLog : public UpdateLog {
 public:
  Status Commit(const RequestContext&, Mutation*, ApplyResult*) override {
    return FailedPrecondition("this engine is fed by hand; it commits nothing");
  }
  bool LeadsMaintenance() const override { return false; }
};

inline std::unique_ptr<Engine> OpenHandFedEngine(const std::string& dir) {
  EngineOptions o;
  o.data_dir = dir;
  o.models_dir = CONTEXTD_MODELS_DIR;
  o.make_log = [](MutationApplier*) -> StatusOr<std::unique_ptr<UpdateLog>> {
    return std::unique_ptr<UpdateLog>(new HandFedLog());
  };
  auto e = Engine::Open(o, nullptr);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

inline Json J(const std::string& s) { return *ParseJson(s); }

// The first n SciFact documents (a "year" in their metadata, 2000 + i % 20) and training
// claims, from ../shared.
inline std::vector<DocumentInput> SciFactDocuments(size_t n) {
  std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/corpus.jsonl");
  std::vector<DocumentInput> docs;
  std::string line;
  for (size_t i = 0; i < n && std::getline(in, line); ++i) {
    Json j = J(line);
    DocumentInput d;
    d.id = j.Find("_id")->as_string();
    d.title = j.Find("title")->as_string();
    d.text = j.Find("text")->as_string();
    d.metadata["year"] = static_cast<int64_t>(2000 + i % 20);
    docs.push_back(std::move(d));
  }
  return docs;
}

inline std::vector<std::string> SciFactClaims(size_t n) {
  std::ifstream in(std::string(CONTEXTD_SHARED_DIR) + "/data/scifact/queries.train.jsonl");
  std::vector<std::string> out;
  std::string line;
  while (out.size() < n && std::getline(in, line)) out.push_back(J(line).Find("text")->as_string());
  return out;
}

}  // namespace contextd
