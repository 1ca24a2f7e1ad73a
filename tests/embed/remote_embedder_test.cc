// RemoteEmbedder against real HTTP fake providers (tests/fake_provider.h).
#include "embed/remote_embedder.h"

#include <gtest/gtest.h>

#include "fake_provider.h"

namespace contextd {
namespace {

constexpr int kDim = 8;

ProviderOptions Options(std::vector<std::string> urls, ProviderProtocol protocol = ProviderProtocol::kOpenAI) {
  ProviderOptions o;
  o.name = "fake";
  o.protocol = protocol;
  o.urls = std::move(urls);
  o.model = "fake-model";
  o.dim = kDim;
  o.health_interval_ms = 0;  // tests count calls; the recovery test turns it on
  o.backoff_base_ms = 1;
  o.backoff_max_ms = 5;
  o.attempt_timeout_ms = 2000;
  o.breaker.consecutive_failures = 3;
  o.breaker.cooldown_ms = 60000;
  return o;
}

std::vector<std::string> Texts(int n, const std::string& prefix = "text ") {
  std::vector<std::string> t;
  for (int i = 0; i < n; ++i) t.push_back(prefix + std::to_string(i));
  return t;
}

// Every row is the fake's vector for its own text: nothing lost or reordered.
void ExpectRows(const std::vector<std::string>& texts, const std::vector<float>& out) {
  ASSERT_EQ(out.size(), texts.size() * kDim);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto want = FakeUnitVector(texts[i], kDim);
    for (int d = 0; d < kDim; ++d) ASSERT_NEAR(out[i * kDim + d], want[d], 1e-5) << "row " << i;
  }
}

Status Embed(const RemoteEmbedder& e, const std::vector<std::string>& texts, std::vector<float>* out,
             int64_t deadline_ms = 0) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  out->assign(texts.size() * kDim, 0.0f);
  EmbedOptions o;
  if (deadline_ms > 0) o.deadline_ns = SystemClock::Default()->NowNanos() + deadline_ms * 1000000;
  return e.EmbedWith(views, o, out->data());
}

class ProtocolTest : public ::testing::TestWithParam<ProviderProtocol> {};

TEST_P(ProtocolTest, ReturnsEveryVectorInOrderAndNormalised) {
  FakeProvider fake(kDim);
  auto e = RemoteEmbedder::Create(Options({fake.url()}, GetParam()), SystemClock::Default());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto texts = Texts(37);
  std::vector<float> out;
  ASSERT_TRUE(Embed(**e, texts, &out).ok());
  ExpectRows(texts, out);
  EXPECT_EQ(fake.calls(), 1);
  EXPECT_EQ((*e)->model(), "provider:fake/fake-model");
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, ProtocolTest,
                         ::testing::Values(ProviderProtocol::kOpenAI, ProviderProtocol::kTei,
                                           ProviderProtocol::kOllama));

TEST(RemoteEmbedderTest, FailsOverToAHealthyReplicaAndOpensTheBrokenOnesBreaker) {
  FakeProvider bad(kDim), good(kDim);
  bad.set_mode(FakeProvider::Mode::kFail);
  auto e = RemoteEmbedder::Create(Options({bad.url(), good.url()}), SystemClock::Default());
  ASSERT_TRUE(e.ok());
  for (int round = 0; round < 10; ++round) {
    auto texts = Texts(5, "r" + std::to_string(round) + " ");
    std::vector<float> out;
    Status st = Embed(**e, texts, &out);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.ToString();
    ExpectRows(texts, out);
  }
  // Three consecutive failures open the bad replica's breaker; after that it gets nothing.
  EXPECT_EQ(bad.calls(), 3);
  EXPECT_EQ(good.calls(), 10);
  auto reps = (*e)->replicas();
  EXPECT_EQ(reps[0].state, CircuitBreaker::State::kOpen);
  EXPECT_EQ(reps[1].state, CircuitBreaker::State::kClosed);
  EXPECT_GE((*e)->retries(), 3u);
}

TEST(RemoteEmbedderTest, WrongDimensionsAreAFailureOfThatReplica) {
  FakeProvider wrong(kDim), good(kDim);
  wrong.set_mode(FakeProvider::Mode::kWrongDim);
  auto e = RemoteEmbedder::Create(Options({wrong.url(), good.url()}), SystemClock::Default());
  ASSERT_TRUE(e.ok());
  auto texts = Texts(4);
  std::vector<float> out;
  ASSERT_TRUE(Embed(**e, texts, &out).ok());
  ExpectRows(texts, out);
  EXPECT_GE(good.calls(), 1);
}

TEST(RemoteEmbedderTest, AllReplicasDownGivesUnavailableThenFailsFastWithoutCallingThem) {
  FakeProvider a(kDim), b(kDim);
  a.set_mode(FakeProvider::Mode::kFail);
  b.set_mode(FakeProvider::Mode::kFail);
  auto opts = Options({a.url(), b.url()});
  opts.max_attempts = 3;
  auto e = RemoteEmbedder::Create(opts, SystemClock::Default());
  ASSERT_TRUE(e.ok());
  std::vector<float> out;
  Status st;
  for (int i = 0; i < 3; ++i) {
    st = Embed(**e, Texts(2), &out);
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  }
  const int calls = a.calls() + b.calls();
  EXPECT_EQ((*e)->replicas()[0].state, CircuitBreaker::State::kOpen);
  EXPECT_EQ((*e)->replicas()[1].state, CircuitBreaker::State::kOpen);
  st = Embed(**e, Texts(2), &out);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("circuit breaker is open"), std::string::npos) << st.message();
  EXPECT_EQ(a.calls() + b.calls(), calls) << "open breakers send nothing";
}

TEST(RemoteEmbedderTest, HonoursRetryAfterOn429) {
  FakeProvider fake(kDim);
  fake.set_retry_after("0.3");
  fake.fail_next(1, FakeProvider::Mode::kTooMany);
  auto e = RemoteEmbedder::Create(Options({fake.url()}), SystemClock::Default());
  ASSERT_TRUE(e.ok());
  auto texts = Texts(3);
  std::vector<float> out;
  ASSERT_TRUE(Embed(**e, texts, &out).ok());
  ExpectRows(texts, out);
  auto times = fake.call_times_ms();
  ASSERT_EQ(times.size(), 2u);
  // The retry waited for the provider's Retry-After, not the 5 ms backoff cap.
  EXPECT_GE(times[1] - times[0], 290);
}

TEST(RemoteEmbedderTest, AHangingReplicaCostsOneAttemptTimeoutThenTheOtherAnswers) {
  FakeProvider hang(kDim), good(kDim);
  hang.set_mode(FakeProvider::Mode::kHang);
  auto opts = Options({hang.url(), good.url()});
  opts.attempt_timeout_ms = 200;
  auto e = RemoteEmbedder::Create(opts, SystemClock::Default());
  ASSERT_TRUE(e.ok());
  auto texts = Texts(3);
  std::vector<float> out;
  // Both replicas start idle; whichever is picked first, the request succeeds.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Embed(**e, texts, &out).ok());
    ExpectRows(texts, out);
  }
}

TEST(RemoteEmbedderTest, TheRequestDeadlineBoundsRetries) {
  FakeProvider hang(kDim);
  hang.set_mode(FakeProvider::Mode::kHang);
  auto opts = Options({hang.url()});
  opts.attempt_timeout_ms = 5000;
  auto e = RemoteEmbedder::Create(opts, SystemClock::Default());
  ASSERT_TRUE(e.ok());
  std::vector<float> out;
  const auto start = std::chrono::steady_clock::now();
  Status st = Embed(**e, Texts(1), &out, /*deadline_ms=*/300);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.code() == StatusCode::kDeadlineExceeded || st.code() == StatusCode::kUnavailable) << st.ToString();
  // Not the 5 s attempt timeout: the caller's deadline cut it short.
  EXPECT_LT(ms, 4000);
}

TEST(RemoteEmbedderTest, HealthChecksCloseTheBreakerOfARecoveredReplica) {
  FakeProvider a(kDim), b(kDim);
  a.set_mode(FakeProvider::Mode::kFail);
  auto opts = Options({a.url(), b.url()});
  opts.breaker.cooldown_ms = 100;
  opts.health_interval_ms = 50;
  auto e = RemoteEmbedder::Create(opts, SystemClock::Default());
  ASSERT_TRUE(e.ok());
  // The health checker alone finds a dead and opens its breaker...
  for (int i = 0; i < 100 && (*e)->replicas()[0].state == CircuitBreaker::State::kClosed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE((*e)->replicas()[0].state, CircuitBreaker::State::kClosed);
  // ...and closes it once the replica answers again, with no user request involved.
  a.set_mode(FakeProvider::Mode::kOk);
  for (int i = 0; i < 200 && (*e)->replicas()[0].state != CircuitBreaker::State::kClosed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ((*e)->replicas()[0].state, CircuitBreaker::State::kClosed);
}

TEST(ProviderOptionsTest, ConfigErrorsNameTheProblem) {
  auto bad = [](const char* json) {
    auto j = ParseJson(json);
    return ProviderOptions::FromJson("p", *j).status().message();
  };
  EXPECT_NE(bad(R"({"urls":["http://x:1"]})").find("dim"), std::string::npos);
  EXPECT_NE(bad(R"({"dim":4})").find("url"), std::string::npos);
  EXPECT_NE(bad(R"({"dim":4,"urls":["http://x:1"],"protocol":"grpc"})").find("protocol"), std::string::npos);
  EXPECT_NE(bad(R"({"dim":4,"urls":["http://x:1"],"colour":1})").find("colour"), std::string::npos);
  // Whole numbers in range: 1e300 would be undefined as an integer, 2.5 was truncated to 2.
  EXPECT_EQ(bad(R"({"dim":1e300,"urls":["http://x:1"]})"),
            "provider 'p': dim must be a whole number from 1 to 65536, got 1e+300");
  EXPECT_NE(bad(R"({"dim":4,"urls":["http://x:1"],"max_attempts":2.5})").find("whole number"), std::string::npos);
  EXPECT_NE(bad(R"({"dim":4,"urls":["http://x:1"],"breaker":{"window":1e12}})").find("from 1 to 1000000"),
            std::string::npos);
  auto ok = ProviderOptions::FromJson("p", *ParseJson(R"({"dim":4,"urls":["http://x:1"],"protocol":"tei",
      "breaker":{"cooldown_ms":10,"consecutive_failures":2}})"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->protocol, ProviderProtocol::kTei);
  EXPECT_EQ(ok->breaker.consecutive_failures, 2);
}

}  // namespace
}  // namespace contextd
