// A BERT-family encoder (BERT, MiniLM, BGE, E5, GTE) computed in-process: embeddings +
// LayerNorm, self-attention, exact-erf GELU feed-forward, post-LayerNorm, pooling.
//
// Batch-first: Forward() takes many sequences and packs their tokens into one matrix, so
// every linear layer is one GEMM over all real tokens of the batch (no padding at all:
// attention runs per sequence over its own length, which is what a padding mask computes).
// GEMMs go through oneDNN (run-time CPU dispatch); the rest is in encoder/kernels.h.
//
// int8 (EncoderOptions::int8): the four linear layers of every block use per-output-
// channel int8 weights and per-token int8 activations quantised on the fly; attention,
// LayerNorm and GELU stay in float32.
//
// Thread safety: immutable after Load(); Forward() is safe for concurrent use. It runs on
// the calling thread's OpenMP team (omp_set_num_threads sets the threads per call).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace dnnl {
struct engine;
}

namespace contextd {

struct BertConfig {
  int vocab_size = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0, max_positions = 512, type_vocab = 2;
  float layer_norm_eps = 1e-12f;
  // config.json in a Hugging Face model directory; errors name the file and the key.
  static StatusOr<BertConfig> Load(const std::string& dir);
};

enum class Pooling { kMean, kCls };

struct EncoderOptions {
  bool int8 = false;
};

class BertEncoder {
 public:
  // model.safetensors in `dir`, tensor names with or without the "bert." prefix.
  static StatusOr<std::unique_ptr<BertEncoder>> Load(const std::string& dir, const BertConfig& config,
                                                     const EncoderOptions& options);
  ~BertEncoder();

  const BertConfig& config() const { return config_; }
  bool int8() const { return options_.int8; }
  // Bytes of weights held (after quantisation).
  size_t weight_bytes() const;
  // The instruction set oneDNN runs the GEMMs with on this CPU, as oneDNN names it
  // ("cpu_isa_avx2", "cpu_isa_avx512_core_vnni", ...): the best the CPU has, or less where
  // ONEDNN_MAX_CPU_ISA caps it (the encoder tests run under caps to test each path).
  static std::string GemmIsa();

  // seqs: token ids (each 1..max_positions long, ids < vocab_size). out: seqs.size() x
  // hidden floats, the pooled (not normalised) last hidden state of each sequence.
  Status Forward(const std::vector<std::vector<int32_t>>& seqs, Pooling pooling, float* out) const;

 private:
  struct Linear;
  struct Layer;
  struct Scratch;
  static constexpr size_t kMaxIdleScratch = 4;
  std::unique_ptr<Scratch> TakeScratch() const;
  void GiveScratch(std::unique_ptr<Scratch> s) const;
  BertEncoder() = default;
  void Attention(const float* qkv, const std::vector<size_t>& offsets, const std::vector<size_t>& lengths,
                 float* context) const;

  BertConfig config_;
  EncoderOptions options_;
  std::unique_ptr<dnnl::engine> engine_;  // oneDNN's CPU engine (dnnl.hpp stays out of this header)
  std::vector<float> word_, position_, token_type_, emb_gamma_, emb_beta_;
  std::vector<std::unique_ptr<Layer>> layers_;
  mutable Mutex scratch_mu_;
  mutable std::vector<std::unique_ptr<Scratch>> scratch_ GUARDED_BY(scratch_mu_);
};

}  // namespace contextd
