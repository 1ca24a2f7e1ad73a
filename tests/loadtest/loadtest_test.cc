// The load generator against a real HTTP server in process (a fake provider serving
// /healthz-like replies), its scenario parsing, and its PNG.
#include "loadtest/loadtest.h"

#include <zlib.h>

#include <gtest/gtest.h>

#include "fake_provider.h"
#include "test_util.h"

namespace contextd {
namespace {

uint32_t BigEndian(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

TEST(ScenarioTest, BadScenariosNameWhatIsWrong) {
  const auto parse = [](const std::string& text) { return Scenario::FromJson(*ParseJson(text), "."); };
  EXPECT_NE(parse(R"({"stages":[{"rate":1,"seconds":1}]})").status().message().find("'requests'"), std::string::npos);
  EXPECT_NE(parse(R"({"requests":[{"path":"x"}],"stages":[{"rate":1,"seconds":1}]})").status().message().find("path"),
            std::string::npos);
  EXPECT_NE(parse(R"({"requests":[{"path":"/q","body":{"q":"{{text}}"}}],"stages":[{"rate":1,"seconds":1}]})")
                .status()
                .message()
                .find("texts"),
            std::string::npos);
  EXPECT_NE(parse(R"({"requests":[{"path":"/q"}]})").status().message().find("stages"), std::string::npos);
  EXPECT_NE(parse(R"({"requests":[{"path":"/q"}],"profile":"burst"})").status().message().find("profile"),
            std::string::npos);
  EXPECT_TRUE(parse(R"({"requests":[{"path":"/q"}],"profile":"stress"})").ok());
  EXPECT_NE(parse(R"({"requests":[{"path":"/q"}],"profile":"stress","stress":{"saturation_error_rate":0.001}})")
                .status()
                .message()
                .find("saturation_error_rate"),
            std::string::npos)
      << "saturation below the error budget";
}

TEST(LoadTestTest, SendsExactlyTheScheduleAndCountsEveryReply) {
  FakeProvider server(4);
  Scenario s;
  s.url = server.url();
  s.connections = 8;
  LoadRequest r;
  r.method = "POST";
  r.path = "/v1/embeddings";
  r.body = R"({"model":"m","input":["{{text}}"]})";
  r.texts = {"one", "two \"quoted\"", "three"};
  s.requests = {r};
  s.stages = {{"a", 100, 100, 1.0}, {"b", 50, 150, 1.0}};
  auto report = RunLoadTest(s);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const Json& stages = report->json["stages"];
  ASSERT_EQ(stages.as_array().size(), 2u);
  // Open loop: the schedule is the rate, whatever the server does (a ramp: its integral).
  EXPECT_EQ(stages.as_array()[0].Find("requests")->as_int(), 100);
  EXPECT_EQ(stages.as_array()[1].Find("requests")->as_int(), 100);
  EXPECT_EQ(stages.as_array()[0].Find("statuses")->Find("200")->as_int(), 100) << stages.Dump();
  EXPECT_EQ(stages.as_array()[1].Find("latency_admitted")->Find("count")->as_int(), 100);
  // Every request reached the server (texts JSON-escaped), after one probe per connection.
  EXPECT_EQ(server.calls(), 200 + s.connections);
  ASSERT_EQ(report->series.size(), 2u);
  EXPECT_EQ(report->series[0][0] + report->series[1][0], 200);

  // A server that is gone is a finding: every request is counted as unanswered.
  s.url = "http://127.0.0.1:1";
  s.stages = {{"down", 20, 20, 1.0}};
  auto down = RunLoadTest(s);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->json["stages"].as_array()[0].Find("statuses")->Find("no_reply")->as_int(), 20);
}

TEST(LoadTestTest, StressStopsAtTheFirstStepThatBreaksTheObjective) {
  FakeProvider server(4);
  Scenario s;
  s.url = server.url();
  s.connections = 4;
  s.profile = "stress";
  s.requests = {LoadRequest{"e", "POST", "/v1/embeddings", 1, R"({"model":"m","input":["x"]})", {}, {}}};
  s.start_rate = 20;
  s.step = 2;
  s.step_seconds = 0.5;
  s.max_steps = 3;
  s.slo_p99_ms = 1e9;  // never broken: all steps run, the knee is the last rate
  auto all = RunLoadTest(s);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->json["steps"].as_array().size(), 3u);
  EXPECT_DOUBLE_EQ(all->json["knee_rate"].as_double(), 80);
  EXPECT_DOUBLE_EQ(all->json["capacity_rps"].as_double(), 80) << "every request of the last step served";
  s.slo_p99_ms = 1e-6;  // broken at once: no rate held
  auto none = RunLoadTest(s);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->json["steps"].as_array().size(), 1u);
  EXPECT_DOUBLE_EQ(none->json["knee_rate"].as_double(), 0);
}

// A server that sheds a little by design passes the 1% error budget (the knee) well before
// its goodput stops rising: stepping goes on until it saturates, and the capacity is the
// most it served within the latency objective.
TEST(LoadTestTest, TheCapacityIsWhereGoodputStopsRisingNotWhereTheErrorBudgetBreaks) {
  Scenario s;
  s.slo_p99_ms = 100;
  s.max_error_rate = 0.01;
  s.saturation_error_rate = 0.1;
  std::vector<StressStep> steps = {{100, 100, 0, 5}, {110, 108.5, 0.013, 8}, {121, 119, 0.016, 9}};
  StressReading r = ReadStress(s, steps);
  EXPECT_DOUBLE_EQ(r.knee_rate, 100);
  EXPECT_DOUBLE_EQ(r.capacity, 119);
  EXPECT_TRUE(r.go_on) << "1.6% shed is not saturation";
  steps.push_back({133, 125, 0.06, 12});
  steps.push_back({146, 124, 0.15, 14});
  r = ReadStress(s, steps);
  EXPECT_DOUBLE_EQ(r.knee_rate, 100);
  EXPECT_DOUBLE_EQ(r.capacity, 125);
  EXPECT_FALSE(r.go_on) << "15% shed: saturated";
  // Goodput served too slowly does not count, and a broken p99 stops the steps.
  steps = {{100, 100, 0, 5}, {110, 110, 0, 150}};
  r = ReadStress(s, steps);
  EXPECT_DOUBLE_EQ(r.knee_rate, 100);
  EXPECT_DOUBLE_EQ(r.capacity, 100);
  EXPECT_FALSE(r.go_on);
  // A step back within the objective after a break does not move the knee.
  steps = {{100, 100, 0, 5}, {110, 105, 0.05, 8}, {121, 121, 0, 8}};
  EXPECT_DOUBLE_EQ(ReadStress(s, steps).knee_rate, 100);
  // With patience 2, one stalled step (a p99 spike) does not stop the steps; two in a row do.
  s.patience = 2;
  steps = {{100, 100, 0, 5}, {110, 110, 0, 150}};
  EXPECT_TRUE(ReadStress(s, steps).go_on);
  steps.push_back({121, 121, 0, 8});
  r = ReadStress(s, steps);
  EXPECT_TRUE(r.go_on);
  EXPECT_DOUBLE_EQ(r.capacity, 121);
  EXPECT_DOUBLE_EQ(r.knee_rate, 100);
  steps.push_back({133, 120, 0.1, 150});
  EXPECT_TRUE(ReadStress(s, steps).go_on);
  steps.push_back({146, 118, 0.2, 20});
  EXPECT_FALSE(ReadStress(s, steps).go_on);
}

TEST(PngChartTest, AValidPngOfTheAskedSize) {
  LoadReport report;
  report.series = {{10, 10, 0, 1, 2}, {20, 18, 2, 1.5, 9}, {30, 20, 10, 3, 40}};
  const std::string png = RenderChartPng(report, 200, 100);
  ASSERT_GT(png.size(), 8u + 25u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(BigEndian(png, 16), 200u);
  EXPECT_EQ(BigEndian(png, 20), 100u);
  // Every chunk's CRC holds, and the image data inflates to its rows.
  size_t at = 8;
  std::string idat;
  while (at + 12 <= png.size()) {
    const uint32_t len = BigEndian(png, at);
    const std::string type = png.substr(at + 4, 4);
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    EXPECT_EQ(BigEndian(png, at + 8 + len), static_cast<uint32_t>(crc)) << type;
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  std::string raw((200 * 3 + 1) * 100, '\0');
  uLongf size = static_cast<uLongf>(raw.size());
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(raw.data()), &size, reinterpret_cast<const Bytef*>(idat.data()),
                       static_cast<uLong>(idat.size())),
            Z_OK);
  EXPECT_EQ(size, raw.size());
  EXPECT_NE(raw.find('\x14'), std::string::npos) << "something was drawn besides white";
}

}  // namespace
}  // namespace contextd
