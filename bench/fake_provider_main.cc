// A fake embedding provider as a process, for benchmarks that drive the real contextd
// binary (bench/embed_http_bench.sh): the tests' FakeProvider, a real HTTP server speaking
// the OpenAI, TEI and Ollama shapes. Prints its URL and serves until killed.
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "fake_provider.h"

int main(int argc, char** argv) {
  CLI::App app{"Fake embedding provider"};
  int dim = 384;
  int64_t call_us = 0;
  app.add_option("--dim", dim);
  app.add_option("--call-us", call_us, "latency of every call, whatever its size");
  CLI11_PARSE(app, argc, argv);
  contextd::FakeProvider fake(dim, call_us);
  std::printf("listening on %s\n", fake.url().c_str());
  std::fflush(stdout);
  for (;;) pause();
}
