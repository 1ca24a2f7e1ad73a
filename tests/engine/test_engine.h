// An Engine over a test's temporary directory and the repo's models, for engine tests.
#pragma once

#include <memory>
#include <string>

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

inline Json J(const std::string& s) { return *ParseJson(s); }

}  // namespace contextd
