// Native encoder throughput (issue 4): a random-weight BERT of the given shape (default
// all-MiniLM-L6-v2's), written as a model directory and loaded like any other, then
// Forward() over --batch sequences of --seq tokens for --seconds. Prints
//   {"sentences_per_s":..,"gflops":..,"ms_per_batch":..,"peak_rss_mb":..,"model_mb":..}
// bench/encoder_peer.py runs the same shapes in PyTorch for the side-by-side figure.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "encoder/bert.h"

namespace contextd {
namespace {

// Writes float32 tensors as safetensors.
void WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes,
                      std::mt19937& rng) {
  std::string header = "{";
  size_t offset = 0;
  for (const auto& [name, shape] : shapes) {
    size_t n = 1;
    std::string dims;
    for (int64_t d : shape) {
      n *= static_cast<size_t>(d);
      dims += (dims.empty() ? "" : ",") + std::to_string(d);
    }
    header += (header.size() > 1 ? "," : "") +
              ("\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims + "],\"data_offsets\":[" +
               std::to_string(offset) + "," + std::to_string(offset + n * 4) + "]}");
    offset += n * 4;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = header.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << header;
  std::normal_distribution<float> dist(0.0f, 0.05f);
  for (const auto& [name, shape] : shapes) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> v(n);
    const bool gamma = name.find("LayerNorm.weight") != std::string::npos;
    for (float& f : v) f = gamma ? 1.0f + dist(rng) : dist(rng);
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(n * 4));
  }
}

double PeakRssMb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"Native encoder benchmark"};
  int layers = 6, hidden = 384, heads = 12, ffn = 1536, batch = 32, seq = 128, threads = 2, vocab = 30522;
  double seconds = 10;
  bool int8 = false;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--ffn", ffn);
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--threads", threads);
  app.add_option("--seconds", seconds);
  app.add_flag("--int8", int8);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);

  const std::string dir =
      std::filesystem::temp_directory_path() / ("contextd-encoder-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/config.json") << "{\"model_type\":\"bert\",\"vocab_size\":" << vocab
                                        << ",\"hidden_size\":" << hidden << ",\"num_hidden_layers\":" << layers
                                        << ",\"num_attention_heads\":" << heads << ",\"intermediate_size\":" << ffn
                                        << ",\"max_position_embeddings\":512}";
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"embeddings.word_embeddings.weight", {vocab, hidden}},
        {"embeddings.position_embeddings.weight", {512, hidden}},
        {"embeddings.token_type_embeddings.weight", {2, hidden}},
        {"embeddings.LayerNorm.weight", {hidden}},
        {"embeddings.LayerNorm.bias", {hidden}}};
    for (int l = 0; l < layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      for (const char* n :
           {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        shapes.push_back({p + n + ".weight", {hidden, hidden}});
        shapes.push_back({p + n + ".bias", {hidden}});
      }
      shapes.push_back({p + "intermediate.dense.weight", {ffn, hidden}});
      shapes.push_back({p + "intermediate.dense.bias", {ffn}});
      shapes.push_back({p + "output.dense.weight", {hidden, ffn}});
      shapes.push_back({p + "output.dense.bias", {hidden}});
      for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
        shapes.push_back({p + n + ".weight", {hidden}});
        shapes.push_back({p + n + ".bias", {hidden}});
      }
    }
    std::mt19937 rng(1);
    WriteSafetensors(dir + "/model.safetensors", shapes, rng);
  }
  const double model_mb = static_cast<double>(std::filesystem::file_size(dir + "/model.safetensors")) / (1 << 20);
  auto config = BertConfig::Load(dir);
  if (!config.ok()) return 1;
  EncoderOptions options;
  options.int8 = int8;
  auto encoder = BertEncoder::Load(dir, *config, options);
  std::filesystem::remove_all(dir);
  if (!encoder.ok()) {
    std::fprintf(stderr, "%s\n", encoder.status().ToString().c_str());
    return 1;
  }
  std::mt19937 rng(2);
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(batch));
  for (auto& s : seqs) {
    s.resize(static_cast<size_t>(seq));
    for (auto& id : s) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  }
  std::vector<float> out(static_cast<size_t>(batch) * hidden);
  (void)(*encoder)->Forward(seqs, Pooling::kMean, out.data());  // warm-up
  int runs = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds || runs < 3) {
    (void)(*encoder)->Forward(seqs, Pooling::kMean, out.data());
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // FLOPs per token: 4 H^2 + 2 H F multiply-adds in the linear layers, 2 T H in attention.
  const double tokens = static_cast<double>(batch) * seq;
  const double flops = 2.0 * layers * tokens * (4.0 * hidden * hidden + 2.0 * hidden * ffn + 2.0 * seq * hidden);
  std::printf(
      "{\"layers\":%d,\"hidden\":%d,\"batch\":%d,\"seq\":%d,\"threads\":%d,\"int8\":%s,\"sentences_per_s\":%.1f,"
      "\"ms_per_batch\":%.2f,\"gflops\":%.1f,\"peak_rss_mb\":%.0f,\"model_mb\":%.0f}\n",
      layers, hidden, batch, seq, threads, int8 ? "true" : "false", batch * runs / elapsed, elapsed * 1000 / runs,
      flops * runs / elapsed / 1e9, PeakRssMb(), model_mb);
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
