// The LLM response cache: exact and semantic hits, scopes, thresholds, expiry, deletes,
// bad input, and entries surviving a reopen (the index rebuilt from RocksDB).
#include "cache/llm_cache.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "embed/embedder_registry.h"
#include "manual_clock.h"
#include "server/request_codec.h"
#include "test_util.h"

namespace contextd {
namespace {

Json J(const std::string& s) { return *ParseJson(s); }

class LlmCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    cache_.reset();
    auto c = LlmCache::Open(dir_.path() + "/llm_cache", &registry_, &clock_, &metrics_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cache_ = std::move(c).value();
  }
  // The typed calls, from bodies read as the server reads them (server/request_codec.h).
  StatusOr<CacheSettings> Configure(const std::string& ns, const Json& body) {
    CTX_ASSIGN_OR_RETURN(CacheSettingsUpdate u, ParseCacheSettings(body));
    return cache_->Configure(ns, u);
  }
  StatusOr<std::string> StoreBody(const std::string& ns, const Json& body) {
    CTX_ASSIGN_OR_RETURN(CacheStoreRequest r, ParseCacheStore(body));
    return cache_->Store(ns, r);
  }
  StatusOr<CacheLookup> LookupBody(const std::string& ns, const Json& body) {
    CTX_ASSIGN_OR_RETURN(CacheLookupRequest r, ParseCacheLookup(body));
    return cache_->Lookup(ns, r);
  }
  std::string Store(const std::string& ns, const std::string& body) {
    auto id = StoreBody(ns, J(body));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }
  CacheLookup Lookup(const std::string& ns, const std::string& body) {
    auto r = LookupBody(ns, J(body));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CacheLookup();
  }

  TempDir dir_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  EmbedderRegistry registry_{CONTEXTD_MODELS_DIR};
  std::unique_ptr<LlmCache> cache_;
};

TEST_F(LlmCacheTest, ExactAndSemanticHitsWithinAScope) {
  ASSERT_TRUE(Configure("qa", J(R"({"embedder":"glove","threshold":0.85})")).ok());
  const std::string id = Store("qa", R"({"prompt":"How do I learn to cook Italian food?",
      "response":{"text":"Start with pasta.","tokens":5},"scope":{"model":"gpt-4","lang":"en"}})");
  // Same prompt, other spacing, scope fields in another order: exact.
  auto exact =
      Lookup("qa", R"({"prompt":"How do I  learn to cook Italian food?","scope":{"lang":"en","model":"gpt-4"}})");
  EXPECT_TRUE(exact.hit);
  EXPECT_TRUE(exact.exact);
  EXPECT_EQ(exact.id, id);
  EXPECT_EQ(exact.response.Find("text")->as_string(), "Start with pasta.");
  // A paraphrase: semantic, with its similarity.
  auto para =
      Lookup("qa", R"({"prompt":"How can I learn to cook Italian dishes?","scope":{"model":"gpt-4","lang":"en"}})");
  EXPECT_TRUE(para.hit);
  EXPECT_FALSE(para.exact);
  EXPECT_GE(para.similarity, 0.85f);
  EXPECT_LT(para.similarity, 1.0f);
  // Another scope, or another topic: misses.
  EXPECT_FALSE(
      Lookup("qa", R"({"prompt":"How do I learn to cook Italian food?","scope":{"model":"gpt-3.5","lang":"en"}})").hit);
  EXPECT_FALSE(Lookup("qa", R"({"prompt":"How do I learn to cook Italian food?"})").hit) << "no scope is its own scope";
  EXPECT_FALSE(
      Lookup("qa", R"({"prompt":"What is the capital of Mongolia?","scope":{"model":"gpt-4","lang":"en"}})").hit);
  // A per-lookup threshold above the paraphrase's similarity turns it into a miss.
  EXPECT_FALSE(
      Lookup("qa", R"({"prompt":"How can I learn to cook Italian dishes?","scope":{"model":"gpt-4","lang":"en"},
                                "threshold":0.9999})")
          .hit);
  EXPECT_NE(
      metrics_.RenderPrometheus().find("contextd_llm_cache_requests_total{namespace=\"qa\",result=\"semantic\"} 1"),
      std::string::npos);
}

TEST_F(LlmCacheTest, EntriesExpire) {
  ASSERT_TRUE(Configure("t", J(R"({"embedder":"glove","ttl_s":60})")).ok());
  Store("t", R"({"prompt":"short lived answer","response":1,"ttl_s":10})");
  Store("t", R"({"prompt":"namespace default ttl","response":2})");
  EXPECT_TRUE(Lookup("t", R"({"prompt":"short lived answer"})").hit);
  clock_.AdvanceMs(11000);
  EXPECT_FALSE(Lookup("t", R"({"prompt":"short lived answer"})").hit);
  EXPECT_TRUE(Lookup("t", R"({"prompt":"namespace default ttl"})").hit);
  clock_.AdvanceMs(50000);
  EXPECT_FALSE(Lookup("t", R"({"prompt":"namespace default ttl"})").hit);
}

TEST_F(LlmCacheTest, DeletesByScopeAndById) {
  ASSERT_TRUE(Configure("d", J(R"({"embedder":"glove"})")).ok());
  const std::string a =
      Store("d", R"({"prompt":"first question here","response":"a","scope":{"model":"m1","user":"u1"}})");
  Store("d", R"({"prompt":"second question here","response":"b","scope":{"model":"m1","user":"u2"}})");
  Store("d", R"({"prompt":"third question here","response":"c","scope":{"model":"m2"}})");
  auto n = cache_->DeleteByScope("d", {{"model", "m1"}});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_FALSE(Lookup("d", R"({"prompt":"first question here","scope":{"model":"m1","user":"u1"}})").hit);
  EXPECT_TRUE(Lookup("d", R"({"prompt":"third question here","scope":{"model":"m2"}})").hit);
  EXPECT_EQ(cache_->DeleteEntry("d", a).code(), StatusCode::kNotFound) << "already gone";
  const std::string c = Lookup("d", R"({"prompt":"third question here","scope":{"model":"m2"}})").id;
  ASSERT_TRUE(cache_->DeleteEntry("d", c).ok());
  EXPECT_FALSE(Lookup("d", R"({"prompt":"third question here","scope":{"model":"m2"}})").hit);
  EXPECT_EQ(cache_->Describe("d")->entries, 0u);
}

TEST_F(LlmCacheTest, AcknowledgedEntriesSurviveAReopen) {
  ASSERT_TRUE(Configure("p", J(R"({"embedder":"glove","threshold":0.8})")).ok());
  const std::string id =
      Store("p", R"({"prompt":"Which planet is the largest?","response":{"a":"Jupiter"},"scope":{"m":"x"}})");
  Store("p", R"({"prompt":"An answer that expires soon","response":0,"ttl_s":5})");
  const std::string gone = Store("p", R"({"prompt":"deleted before the restart","response":0})");
  ASSERT_TRUE(cache_->DeleteEntry("p", gone).ok());
  Reopen();
  auto d = cache_->Describe("p");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FLOAT_EQ(d->settings.threshold, 0.8f);
  auto hit = Lookup("p", R"({"prompt":"which planet is largest","scope":{"m":"x"}})");
  EXPECT_TRUE(hit.hit);
  EXPECT_EQ(hit.id, id);
  EXPECT_EQ(hit.response.Find("a")->as_string(), "Jupiter");
  EXPECT_FALSE(Lookup("p", R"({"prompt":"deleted before the restart"})").hit);
  EXPECT_EQ(d->entries, 2u);
  clock_.AdvanceMs(6000);
  Reopen();
  EXPECT_FALSE(Lookup("p", R"({"prompt":"An answer that expires soon"})").hit) << "expired while closed";
}

// Earlier versions could store a threshold of 0 (1e-300 checked as a double); restoring it
// then failed the check and the server would not start. Such a namespace opens and keeps
// "any similarity" as the smallest positive threshold.
TEST_F(LlmCacheTest, AZeroThresholdFromAnOlderVersionStillOpens) {
  ASSERT_TRUE(Configure("old", J(R"({"embedder":"glove","threshold":0.5})")).ok());
  Store("old", R"({"prompt":"Which planet is the largest?","response":1})");
  cache_.reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.path() + "/llm_cache", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "nold", R"({"embedder":"glove","threshold":0,"ttl_s":0})").ok());
  }
  Reopen();
  auto d = cache_->Describe("old");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_GT(d->settings.threshold, 0);
  EXPECT_LT(d->settings.threshold, 1e-30);
  EXPECT_EQ(d->entries, 1u);
  EXPECT_TRUE(Lookup("old", R"({"prompt":"which planet is largest"})").hit);
  EXPECT_TRUE(d->settings.verify.enabled) << "a namespace from before verification gets the default policy";
}

// A semantic candidate is verified before it is served: a changed number is refused and the
// lookup says why; the true paraphrase behind it is still found; a namespace may turn the
// check off and get the nearest entry as before.
TEST_F(LlmCacheTest, SemanticHitsAreVerifiedAndSayWhy) {
  ASSERT_TRUE(Configure("v", J(R"({"embedder":"glove","threshold":0.5})")).ok());
  const std::string two = Store("v", R"({"prompt":"What is 2+2?","response":"4"})");
  auto refused = LookupBody("v", J(R"({"prompt":"What is 2+3?"})"));
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->hit) << "the nearest prompt asks about other numbers";
  ASSERT_TRUE(refused->verification.has_value());
  EXPECT_EQ(refused->verification->vetoed_by, "numbers");
  EXPECT_EQ(refused->verification->evidence.Find("query")->Dump(), R"(["3","expr:2+3"])");
  ASSERT_FALSE(refused->candidates.empty());
  EXPECT_EQ(refused->candidates[0].id, two);
  auto paraphrase = LookupBody("v", J(R"({"prompt":"what is 2+2"})"));
  ASSERT_TRUE(paraphrase.ok());
  EXPECT_TRUE(paraphrase->hit);
  EXPECT_TRUE(paraphrase->verification->passed);
  ASSERT_TRUE(Configure("v", J(R"({"verify":{"enabled":false}})")).ok());
  auto unchecked = LookupBody("v", J(R"({"prompt":"What is 2+3?"})"));
  ASSERT_TRUE(unchecked.ok());
  EXPECT_TRUE(unchecked->hit) << "verification off: the nearest over the threshold, as before";
  EXPECT_FALSE(unchecked->verification.has_value());
  Reopen();
  EXPECT_FALSE(cache_->Describe("v")->settings.verify.enabled) << "the policy is stored with the namespace";
  EXPECT_FALSE(Configure("v", J(R"({"verify":{"numbers":"sometimes"}})")).ok());
}

// Feedback: an entry found wrong for a prompt is not served for it again (nor anything
// it is as sure of), every observation is kept across a reopen, and with a bound on the
// error rate the namespace's threshold follows what feedback taught.
TEST_F(LlmCacheTest, FeedbackTeachesTheEntryAndTheNamespace) {
  ASSERT_TRUE(Configure("fb", J(R"({"embedder":"glove","threshold":0.8})")).ok());
  const std::string id = Store("fb", R"({"prompt":"How do I reset my router?","response":"Hold the button 10 s."})");
  const std::string paraphrase = R"({"prompt":"how can I reset my router"})";
  auto before = Lookup("fb", paraphrase);
  ASSERT_TRUE(before.hit) << "served on similarity and verification";
  ASSERT_EQ(before.id, id);
  const float served_at = before.verification->confidence;

  // Told it was wrong (given as the fresh response, which disagrees).
  CacheFeedbackRequest wrong{id, "how can I reset my router", std::nullopt, Json("Unplug it for 30 s.")};
  auto observed = cache_->PrepareFeedback("fb", wrong);
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_FALSE(observed->correct);
  EXPECT_NEAR(observed->confidence, served_at, 1e-6) << "the same confidence the lookup computed";
  ASSERT_TRUE(cache_->ApplyFeedback("fb", *observed).ok());
  auto after = Lookup("fb", paraphrase);
  EXPECT_FALSE(after.hit);
  ASSERT_TRUE(after.verification.has_value());
  EXPECT_EQ(after.verification->vetoed_by, "feedback");
  EXPECT_TRUE(Lookup("fb", R"({"prompt":"How do I reset my router?"})").hit) << "its own prompt still hits exactly";

  // A verdict for an entry that is not there, or both kinds of answer: refused.
  EXPECT_EQ(cache_->PrepareFeedback("fb", {"nope", "x", true, std::nullopt}).status().reason(), "entry_not_found");
  EXPECT_EQ(cache_->PrepareFeedback("fb", {id, "x", true, Json("y")}).status().reason(), "invalid_value");

  // Kept across a reopen: the entry's floor and the observations.
  Reopen();
  EXPECT_FALSE(Lookup("fb", paraphrase).hit);
  auto state = cache_->FeedbackState("fb", id);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->observations, 1u);
  EXPECT_EQ(state->wrong, 1u);
  EXPECT_GT(*state->entry_floor, served_at);
  EXPECT_FALSE(state->learned_min_confidence.has_value()) << "no error bound asked for";

  // With a bound: 30 hits found right at 0.2 and above teach a threshold of 0.2, lower than
  // the policy's 0.3, so a candidate at 0.25 is served; then wrong ones above it raise it.
  const std::string other =
      Store("fb", R"({"prompt":"What is the boiling point of water at sea level?","response":"100 C"})");
  ASSERT_TRUE(Configure("fb", J(R"({"verify":{"max_error_rate":0.2}})")).ok());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(cache_->ApplyFeedback("fb", {other, 0.9f, 0.2f + 0.02f * (i % 10), true}).ok());
  }
  state = cache_->FeedbackState("fb");
  ASSERT_TRUE(state->learned_min_confidence.has_value());
  EXPECT_FLOAT_EQ(*state->learned_min_confidence, 0.2f);
  EXPECT_FLOAT_EQ(state->min_confidence, 0.2f);
  EXPECT_FLOAT_EQ(cache_->Describe("fb")->feedback.min_confidence, 0.2f);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(cache_->ApplyFeedback("fb", {other, 0.9f, 0.5f, i % 2 == 0}).ok());
  state = cache_->FeedbackState("fb");
  EXPECT_GT(*state->learned_min_confidence, 0.5f) << "half wrong at 0.5: no threshold at or below it keeps 20%";
  Reopen();
  EXPECT_FLOAT_EQ(cache_->FeedbackState("fb")->min_confidence, state->min_confidence) << "relearnt on reopen";
  // Deleting the entry forgets its floor with it.
  ASSERT_TRUE(cache_->DeleteEntry("fb", id).ok());
  EXPECT_FALSE(cache_->FeedbackState("fb", id)->entry_floor.has_value());
}

TEST_F(LlmCacheTest, BadInputIsRejectedAndChangesNothing) {
  EXPECT_EQ(LookupBody("nope", J(R"({"prompt":"x"})")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Configure("bad name!", J("{}")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Configure("c", J(R"({"threshold":1.5})")).status().code(), StatusCode::kInvalidArgument);
  // Above 0 as a double, 0 as the float it would be kept as.
  EXPECT_EQ(Configure("c", J(R"({"threshold":1e-300})")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Configure("c", J(R"({"embedder":"nonexistent"})")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Configure("c", J(R"({"colour":"red"})")).status().reason(), "unknown_field");
  EXPECT_EQ(cache_->Describe("c").status().code(), StatusCode::kNotFound) << "nothing was created";
  ASSERT_TRUE(Configure("c", J(R"({"embedder":"glove"})")).ok());
  for (const char* body : {R"({"response":1})", R"({"prompt":"","response":1})", R"({"prompt":"x"})",
                           R"({"prompt":"x","response":1,"scope":"gpt"})", R"({"prompt":"x","response":1,"ttl_s":-1})",
                           R"({"prompt":"x","response":1,"extra":1})"}) {
    EXPECT_EQ(StoreBody("c", J(body)).status().code(), StatusCode::kInvalidArgument) << body;
  }
  EXPECT_EQ(cache_->Describe("c")->entries, 0u);
  EXPECT_EQ(LookupBody("c", J(R"({"prompt":"x","threshold":1e-300})")).status().code(), StatusCode::kInvalidArgument);
  Store("c", R"({"prompt":"keeps its embedder","response":1})");
  EXPECT_EQ(Configure("c", J(R"({"embedder":"hash"})")).status().reason(), "embedder_change");
}

}  // namespace
}  // namespace contextd
