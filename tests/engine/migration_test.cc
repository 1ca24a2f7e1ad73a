// A data directory written by the release before sessions and LLM-cache namespaces were
// keyed by tenant opens with this one and keeps everything: tests/fixtures/datadir_v1.tar.gz
// was written by contextd at 6016457 (serve --auth; tenant "acme" and the default tenant
// each made collection "notes" with two documents, session "chat-1" with two turns, and
// cache namespace "answers" with one entry scoped {"model":"m1"}).
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/test_engine.h"
#include "store/store.h"
#include "test_util.h"

namespace contextd {
namespace {

// The real monotonic clock, with the wall clock stopped an hour after the fixture was written
// (2026-12-04 04:06 UTC): its sessions expire a day after their last turn, so on the real
// date this test would stop passing a day after the fixture was made.
class FixtureDayClock final : public Clock {
 public:
  int64_t NowNanos() const override { return SystemClock::Default()->NowNanos(); }
  int64_t WallMillis() const override { return 1796360400000; }  // 2026-12-04 05:00 UTC
};

class MigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string cmd = "tar xzf " + std::string(CONTEXTD_FIXTURES_DIR) + "/datadir_v1.tar.gz -C " + dir_.path();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string data() const { return dir_.path() + "/data"; }
  static RequestContext& As(RequestContext& ctx, const std::string& tenant) {
    ctx.tenant = tenant;
    return ctx;
  }

  std::unique_ptr<Engine> Open() {
    EngineOptions o;
    o.data_dir = data();
    o.models_dir = CONTEXTD_MODELS_DIR;
    o.clock = &clock_;
    auto e = Engine::Open(o, &metrics_);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  TempDir dir_;
  FixtureDayClock clock_;
  MetricsRegistry metrics_;
};

TEST_F(MigrationTest, EveryTenantsDataSurvivesTheUpgrade) {
  for (int open = 0; open < 2; ++open) {  // the upgrade, then an ordinary restart
    auto engine = Open();
    ASSERT_NE(engine, nullptr);
    for (const std::string tenant : {"default", "acme"}) {
      SCOPED_TRACE(tenant + " (open " + std::to_string(open) + ")");
      RequestContext ctx;
      As(ctx, tenant);
      auto notes = engine->GetCollection(tenant, "notes");
      ASSERT_TRUE(notes.ok()) << notes.status().ToString();
      EXPECT_EQ((*notes)->document_count(), 2u);
      EXPECT_EQ((*notes)->GetDocument("d1")->text, "the " + tenant + " tenant keeps notes about apples");
      // Chunk records written before chunks were stored as spans of their document's text
      // (their text inline) load as they were.
      QueryRequest q;
      q.text = "apples";
      q.mode = QueryMode::kKeyword;
      auto found = (*notes)->Query(q);
      ASSERT_TRUE(found.ok()) << found.status().ToString();
      ASSERT_FALSE(found->hits.empty());
      EXPECT_EQ(found->hits[0].text, "the " + tenant + " tenant keeps notes about apples");
      auto turns = engine->SessionTurns("chat-1", ctx);
      ASSERT_TRUE(turns.ok()) << turns.status().ToString();
      ASSERT_EQ(turns->size(), 2u);
      EXPECT_EQ((*turns)[0]->content, "hello from " + tenant);
      EXPECT_EQ((*turns)[1]->content, "hi " + tenant);
      auto info = engine->CacheDescribe("answers", ctx);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->entries, 1u);
      EXPECT_FLOAT_EQ(info->settings.threshold, 0.9f);
      CacheLookupRequest lookup{.prompt = "what does " + tenant + " keep?", .scope = *ParseJson(R"({"model":"m1"})")};
      auto hit = engine->CacheLookup("answers", lookup, ctx);
      ASSERT_TRUE(hit.ok()) << hit.status().ToString();
      EXPECT_TRUE(hit->hit && hit->exact);
      EXPECT_EQ(hit->response.Find("text")->as_string(), "notes of " + tenant);
    }
    EXPECT_TRUE(engine->auth().Tenant("acme").has_value());
    EXPECT_EQ(engine->auth().Keys("acme").size(), 1u);
    // The default tenant's new writes are keyed by tenant too.
    RequestContext ctx;
    ASSERT_TRUE(engine->AppendTurn("chat-2", {"user", "new"}, 0, ctx).ok());
  }
  // Nothing is left to migrate: every name is a tenant's.
  EXPECT_EQ(*AdoptUnscopedKeys(data() + "/sessions", "mt", "default"), 0u);
  EXPECT_EQ(*AdoptUnscopedKeys(data() + "/llm_cache", "ne", "default"), 0u);
}

}  // namespace
}  // namespace contextd
