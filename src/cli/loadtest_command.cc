// contextd loadtest --scenario FILE [--url URL] [--out REPORT.json] [--chart CHART.png]
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "loadtest/loadtest.h"

namespace contextd {

int RunLoadTestCommand(const LoadTestOptions& options) {
  auto json = ReadJsonFile(options.scenario);
  if (!json.ok()) {
    std::fprintf(stderr, "contextd loadtest: %s\n", json.status().message().c_str());
    return 2;
  }
  const size_t slash = options.scenario.rfind('/');
  const std::string base = slash == std::string::npos ? "." : options.scenario.substr(0, slash);
  auto scenario = Scenario::FromJson(*json, base);
  if (!scenario.ok()) {
    std::fprintf(stderr, "contextd loadtest: %s: %s\n", options.scenario.c_str(), scenario.status().message().c_str());
    return 2;
  }
  if (!options.url.empty()) scenario->url = options.url;
  if (scenario->url.empty()) scenario->url = "http://127.0.0.1:8080";
  auto report = RunLoadTest(*scenario);
  if (!report.ok()) {
    std::fprintf(stderr, "contextd loadtest: %s\n", report.status().message().c_str());
    return 2;
  }
  if (!options.chart.empty()) {
    std::ofstream(options.chart, std::ios::binary) << RenderChartPng(*report);
    Json chart = Json::MakeObject();
    chart["file"] = options.chart;
    chart["series"] =
        Json(Json::Array{"offered/s (blue)", "ok/s (green)", "errors/s (black)", "p50 ms (orange)", "p99 ms (red)"});
    chart["note"] = "each series is scaled to its own maximum (see per_second)";
    report->json["chart"] = std::move(chart);
  }
  const std::string text = report->json.Dump();
  if (!options.out.empty()) std::ofstream(options.out) << text << "\n";
  std::printf("%s\n", text.c_str());
  return 0;
}

}  // namespace contextd
