#include "common/metrics.h"

#include <thread>

#include <gtest/gtest.h>

namespace contextd {
namespace {

TEST(MetricsTest, CountersAreSharedByNameAndLabels) {
  MetricsRegistry r;
  Counter* a = r.GetCounter("x_total", "help", {{"k", "v"}});
  Counter* b = r.GetCounter("x_total", "help", {{"k", "v"}});
  Counter* c = r.GetCounter("x_total", "help", {{"k", "w"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  a->Increment(3);
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE x_total counter"), std::string::npos);
  EXPECT_NE(text.find("x_total{k=\"v\"} 3"), std::string::npos);
  EXPECT_NE(text.find("x_total{k=\"w\"} 0"), std::string::npos);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram* h = r.GetHistogram("lat_seconds", "help", {{"route", "/q"}}, {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(5);
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/q\",le=\"0.1\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/q\",le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/q\",le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{route=\"/q\"} 3"), std::string::npos);
  EXPECT_NEAR(h->sum(), 5.55, 1e-6);
}

TEST(MetricsTest, LabelValuesAreEscaped) { EXPECT_EQ(RenderLabels({{"a", "x\"y\\z"}}), "{a=\"x\\\"y\\\\z\"}"); }

TEST(MetricsTest, CollectorsRunAtScrapeAndCanBeRemoved) {
  MetricsRegistry r;
  int id = r.AddCollector([](std::string* out) { *out += "dyn 7\n"; });
  EXPECT_NE(r.RenderPrometheus().find("dyn 7"), std::string::npos);
  r.RemoveCollector(id);
  EXPECT_EQ(r.RenderPrometheus().find("dyn 7"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry r;
  Counter* c = r.GetCounter("n_total", "help");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([c] {
      for (int i = 0; i < 10000; ++i) c->Increment();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->value(), 40000u);
}

}  // namespace
}  // namespace contextd
