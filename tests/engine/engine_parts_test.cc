// The composition root's side of the Engine: it is built from parts made outside it.
#include "engine/engine_parts.h"

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/test_engine.h"
#include "server/request_codec.h"
#include "test_util.h"

namespace contextd {
namespace {

class EnginePartsTest : public ::testing::Test {
 protected:
  EnginePartsTest() {
    o.data_dir = dir.path();
    o.models_dir = CONTEXTD_MODELS_DIR;
  }
  TempDir dir;
  EngineOptions o;
};

TEST_F(EnginePartsTest, AnEngineServesFromThePartsItWasGiven) {
  auto parts = OpenEngineParts(o, nullptr);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_NE(parts->tokenizer, nullptr) << "scripts/setup installs cl100k_base";
  // What the server keeps beside the engine.
  std::shared_ptr<const EmbedderCatalog> catalog = parts->embedders;
  auto engine = Engine::Open(o, std::move(parts).value(), nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto c = CreateFromSpec(**engine, *catalog, kDefaultTenant, "docs", J(R"({"embedder":"glove"})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  UpsertResult r;
  ASSERT_TRUE((*c)->Upsert({{"a", "", "the cat sat on the mat"}}, &r).ok());
  QueryRequest q;
  q.text = "cat";
  q.mode = QueryMode::kVector;
  auto hits = (*c)->Query(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->hits.size(), 1u) << "the engine embeds with the registry it was given";
  // The catalog outlives the engine that shared it.
  engine->reset();
  EXPECT_TRUE(catalog->Resolve("glove").ok());
}

TEST_F(EnginePartsTest, AnEngineWithoutItsPartsIsRefused) {
  auto parts = OpenEngineParts(o, nullptr);
  ASSERT_TRUE(parts.ok());
  parts->sessions.reset();
  auto engine = Engine::Open(o, std::move(parts).value(), nullptr);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("session store"), std::string::npos) << engine.status().message();
}

}  // namespace
}  // namespace contextd
