#include "encoder/bert.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <dnnl.hpp>

#include <cmath>
#include <new>

#include "common/json.h"
#include "encoder/kernels.h"
#include "encoder/safetensors.h"

namespace contextd {
namespace {

// Allocator for GEMM operands: 64-byte (cache-line) aligned. malloc hands large blocks
// out from mmap at page + 16 bytes, and oneDNN's int8 GEMM runs ~25% slower on rows that
// straddle cache lines (measured here: 297 against 370 GOP/s at M 4096, N 1152, K 384).
template <class T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}  // NOLINT: rebinding, as the Allocator contract asks
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  friend bool operator==(const CacheAligned&, const CacheAligned&) { return true; }
};
template <class T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

// Grows a scratch vector (never shrinks: buffers are reused call after call, so large
// activations are not page-faulted in again each time).
template <class T>
T* Grow(AlignedVector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
  return v->data();
}

}  // namespace

std::unique_ptr<BertEncoder::Scratch> BertEncoder::TakeScratch() const {
  MutexLock lock(&scratch_mu_);
  if (scratch_.empty()) return std::make_unique<Scratch>();
  auto s = std::move(scratch_.back());
  scratch_.pop_back();
  return s;
}

void BertEncoder::GiveScratch(std::unique_ptr<Scratch> s) const {
  MutexLock lock(&scratch_mu_);
  if (scratch_.size() < kMaxIdleScratch) scratch_.push_back(std::move(s));
}

StatusOr<BertConfig> BertConfig::Load(const std::string& dir) {
  const std::string path = dir + "/config.json";
  CTX_ASSIGN_OR_RETURN(Json json, ReadJsonFile(path));
  if (!json.is_object()) return InvalidArgument(path + " must hold a JSON object");
  if (const Json* type = json.Find("model_type"); type != nullptr && type->is_string()) {
    const std::string& t = type->as_string();
    if (t != "bert")
      return InvalidArgument(path + ": model_type '" + t + "' is not supported (BERT-family models only)");
  }
  if (const Json* act = json.Find("hidden_act"); act != nullptr && act->is_string() && act->as_string() != "gelu")
    return InvalidArgument(path + ": hidden_act '" + act->as_string() + "' is not supported (gelu only)");
  BertConfig c;
  auto get = [&](const char* key, int* out, bool required) -> Status {
    const Json* v = json.Find(key);
    if (v == nullptr)
      return required ? InvalidArgument(path + ": '" + std::string(key) + "' is missing") : Status::Ok();
    if (!v->is_int() || v->as_int() <= 0)
      return InvalidArgument(path + ": '" + std::string(key) + "' must be a positive integer");
    *out = static_cast<int>(v->as_int());
    return Status::Ok();
  };
  CTX_RETURN_IF_ERROR(get("vocab_size", &c.vocab_size, true));
  CTX_RETURN_IF_ERROR(get("hidden_size", &c.hidden, true));
  CTX_RETURN_IF_ERROR(get("num_hidden_layers", &c.layers, true));
  CTX_RETURN_IF_ERROR(get("num_attention_heads", &c.heads, true));
  CTX_RETURN_IF_ERROR(get("intermediate_size", &c.intermediate, true));
  CTX_RETURN_IF_ERROR(get("max_position_embeddings", &c.max_positions, false));
  CTX_RETURN_IF_ERROR(get("type_vocab_size", &c.type_vocab, false));
  if (const Json* eps = json.Find("layer_norm_eps"); eps != nullptr && eps->is_number())
    c.layer_norm_eps = static_cast<float>(eps->as_double());
  if (c.hidden % c.heads != 0)
    return InvalidArgument(path + ": hidden_size " + std::to_string(c.hidden) +
                           " is not a multiple of num_attention_heads " + std::to_string(c.heads));
  return c;
}

// Activations of one Forward() call; kept in a free list between calls.
struct BertEncoder::Scratch {
  AlignedVector<float> x, qkv, context, tmp, inter;
  AlignedVector<uint8_t> xq, inter_q;
  AlignedVector<float> xscale, inter_scale;
  AlignedVector<int32_t> acc;
};

// y = x W^T + bias with W [out, in] as Hugging Face stores it: float32, or int8 per
// output channel. The GEMM is a oneDNN matmul primitive made once per layer with the
// token count M left to run time, reading W in place (as the transposed "ba" layout), so
// nothing is repacked or re-created per call (measured on this machine: int8 370 GOP/s
// against 290-310 through dnnl_gemm_u8s8s32, fp32 191 GFLOP/s against 183 via dnnl_sgemm).
struct BertEncoder::Linear {
  int in = 0, out = 0;
  AlignedVector<float> w;
  AlignedVector<int8_t> wq;
  std::vector<float> wscale;
  std::vector<int32_t> col_offset;  // 128 * sum_k wq[c][k]: the u8 activations' offset
  std::vector<float> bias;
  dnnl::matmul matmul;

  void Quantize() {
    wq.resize(w.size());
    wscale.resize(static_cast<size_t>(out));
    col_offset.resize(static_cast<size_t>(out));
    for (int o = 0; o < out; ++o) {
      const float* row = w.data() + static_cast<size_t>(o) * in;
      float mx = 0;
      for (int i = 0; i < in; ++i) mx = std::max(mx, std::fabs(row[i]));
      const float scale = mx > 0 ? mx / 127.0f : 1.0f;
      wscale[static_cast<size_t>(o)] = scale;
      int32_t sum = 0;
      for (int i = 0; i < in; ++i) {
        const auto q = static_cast<int8_t>(std::nearbyint(row[i] / scale));
        wq[static_cast<size_t>(o) * in + i] = q;
        sum += q;
      }
      col_offset[static_cast<size_t>(o)] = 128 * sum;
    }
    w.clear();
    w.shrink_to_fit();
  }

  void Prepare(const dnnl::engine& engine) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const bool q = !wq.empty();
    dnnl::memory::desc src({DNNL_RUNTIME_DIM_VAL, in}, q ? dt::u8 : dt::f32, tag::ab);
    dnnl::memory::desc weights({in, out}, q ? dt::s8 : dt::f32, tag::ba);
    dnnl::memory::desc dst({DNNL_RUNTIME_DIM_VAL, out}, q ? dt::s32 : dt::f32, tag::ab);
    matmul = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), engine));
  }

  void Gemm(const dnnl::engine& engine, const void* x, size_t m, void* y) const {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const bool q = !wq.empty();
    const auto M = static_cast<dnnl::memory::dim>(m);
    dnnl::memory src({{M, in}, q ? dt::u8 : dt::f32, tag::ab}, engine, const_cast<void*>(x));
    dnnl::memory weights(
        {{in, out}, q ? dt::s8 : dt::f32, tag::ba}, engine,
        q ? static_cast<void*>(const_cast<int8_t*>(wq.data())) : static_cast<void*>(const_cast<float*>(w.data())));
    dnnl::memory dst({{M, out}, q ? dt::s32 : dt::f32, tag::ab}, engine, y);
    dnnl::stream stream(engine);
    matmul.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }

  // The int8 GEMM of already-quantised input; the accumulators live in scratch->acc.
  kernels::Int8Product Int8Gemm(const dnnl::engine& engine, const uint8_t* xq, const float* xscale, size_t m,
                                Scratch* scratch) const {
    int32_t* acc = Grow(&scratch->acc, m * static_cast<size_t>(out));
    Gemm(engine, xq, m, acc);
    return {acc, xscale, wscale.data(), col_offset.data()};
  }

  size_t bytes() const {
    return w.size() * 4 + wq.size() + wscale.size() * 4 + col_offset.size() * 4 + bias.size() * 4;
  }

  // y = x W^T + bias, then the epilogue: none, GELU, or y added to `residual` and
  // layer-normalised in place there (y is then scratch). int8 layers fuse their
  // dequantisation into the same pass.
  enum class Epilogue { kBias, kBiasGelu, kResidualLayerNorm };
  struct Norm {
    float* residual = nullptr;
    const float* gamma = nullptr;
    const float* beta = nullptr;
    float eps = 0;
  };
  void Forward(const dnnl::engine& engine, const float* x, size_t m, Epilogue epilogue, float* y, const Norm& norm,
               Scratch* scratch) const {
    const size_t n = static_cast<size_t>(out);
    if (wq.empty()) {
      Gemm(engine, x, m, y);
      switch (epilogue) {
        case Epilogue::kBias:
          return kernels::AddBias(y, m, n, bias.data());
        case Epilogue::kBiasGelu:
          return kernels::BiasGelu(y, m, n, bias.data());
        case Epilogue::kResidualLayerNorm:
          return kernels::ResidualLayerNorm(norm.residual, y, bias.data(), norm.gamma, norm.beta, m, n, norm.eps);
      }
      return;
    }
    uint8_t* xq = Grow(&scratch->xq, m * static_cast<size_t>(in));
    float* xscale = Grow(&scratch->xscale, m);
    kernels::QuantizeRows(x, m, static_cast<size_t>(in), xq, xscale);
    const kernels::Int8Product p = Int8Gemm(engine, xq, xscale, m, scratch);
    switch (epilogue) {
      case Epilogue::kBias:
        return kernels::DequantBias(p, m, n, bias.data(), y);
      case Epilogue::kBiasGelu:
        return kernels::DequantBiasGelu(p, m, n, bias.data(), y);
      case Epilogue::kResidualLayerNorm:
        return kernels::DequantResidualLayerNorm(norm.residual, p, bias.data(), norm.gamma, norm.beta, m, n, norm.eps);
    }
  }
};

struct BertEncoder::Layer {
  Linear qkv, attn_out, ffn_in, ffn_out;
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;
};

BertEncoder::~BertEncoder() = default;

StatusOr<std::unique_ptr<BertEncoder>> BertEncoder::Load(const std::string& dir, const BertConfig& config,
                                                         const EncoderOptions& options) {
  const std::string path = dir + "/model.safetensors";
  CTX_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  // Checkpoints saved from BertModel have bare names; from BertFor* heads, "bert.".
  const std::string prefix = file->Find("bert.embeddings.word_embeddings.weight") != nullptr ? "bert." : "";
  std::unique_ptr<BertEncoder> e(new BertEncoder());
  e->engine_ = std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0);
  e->config_ = config;
  e->options_ = options;
  const int64_t H = config.hidden, F = config.intermediate;
  auto read = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float>* out) -> Status {
    CTX_ASSIGN_OR_RETURN(*out, file->ReadFloat(prefix + name, shape));
    return Status::Ok();
  };
  CTX_RETURN_IF_ERROR(read("embeddings.word_embeddings.weight", {config.vocab_size, H}, &e->word_));
  CTX_RETURN_IF_ERROR(read("embeddings.position_embeddings.weight", {config.max_positions, H}, &e->position_));
  CTX_RETURN_IF_ERROR(read("embeddings.token_type_embeddings.weight", {config.type_vocab, H}, &e->token_type_));
  CTX_RETURN_IF_ERROR(read("embeddings.LayerNorm.weight", {H}, &e->emb_gamma_));
  CTX_RETURN_IF_ERROR(read("embeddings.LayerNorm.bias", {H}, &e->emb_beta_));
  auto linear = [&](const std::string& name, int64_t out, int64_t in, Linear* l) -> Status {
    l->in = static_cast<int>(in);
    l->out = static_cast<int>(out);
    std::vector<float> w;
    CTX_RETURN_IF_ERROR(read(name + ".weight", {out, in}, &w));
    l->w.assign(w.begin(), w.end());
    return read(name + ".bias", {out}, &l->bias);
  };
  for (int i = 0; i < config.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    auto layer = std::make_unique<Layer>();
    // Q, K and V become one [3H, H] matrix: one GEMM instead of three.
    Linear q, k, v;
    CTX_RETURN_IF_ERROR(linear(p + "attention.self.query", H, H, &q));
    CTX_RETURN_IF_ERROR(linear(p + "attention.self.key", H, H, &k));
    CTX_RETURN_IF_ERROR(linear(p + "attention.self.value", H, H, &v));
    layer->qkv.in = static_cast<int>(H);
    layer->qkv.out = static_cast<int>(3 * H);
    for (Linear* part : {&q, &k, &v}) {
      layer->qkv.w.insert(layer->qkv.w.end(), part->w.begin(), part->w.end());
      layer->qkv.bias.insert(layer->qkv.bias.end(), part->bias.begin(), part->bias.end());
    }
    CTX_RETURN_IF_ERROR(linear(p + "attention.output.dense", H, H, &layer->attn_out));
    CTX_RETURN_IF_ERROR(linear(p + "intermediate.dense", F, H, &layer->ffn_in));
    CTX_RETURN_IF_ERROR(linear(p + "output.dense", H, F, &layer->ffn_out));
    CTX_RETURN_IF_ERROR(read(p + "attention.output.LayerNorm.weight", {H}, &layer->ln1_gamma));
    CTX_RETURN_IF_ERROR(read(p + "attention.output.LayerNorm.bias", {H}, &layer->ln1_beta));
    CTX_RETURN_IF_ERROR(read(p + "output.LayerNorm.weight", {H}, &layer->ln2_gamma));
    CTX_RETURN_IF_ERROR(read(p + "output.LayerNorm.bias", {H}, &layer->ln2_beta));
    for (Linear* l : {&layer->qkv, &layer->attn_out, &layer->ffn_in, &layer->ffn_out}) {
      if (options.int8) l->Quantize();
      l->Prepare(*e->engine_);
    }
    e->layers_.push_back(std::move(layer));
  }
  return e;
}

std::string BertEncoder::GemmIsa() { return dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()); }

size_t BertEncoder::weight_bytes() const {
  size_t n = (word_.size() + position_.size() + token_type_.size() + emb_gamma_.size() + emb_beta_.size()) * 4;
  for (const auto& l : layers_) {
    n += l->qkv.bytes() + l->attn_out.bytes() + l->ffn_in.bytes() + l->ffn_out.bytes();
    n += (l->ln1_gamma.size() + l->ln1_beta.size() + l->ln2_gamma.size() + l->ln2_beta.size()) * 4;
  }
  return n;
}

void BertEncoder::Attention(const float* qkv, const std::vector<size_t>& offsets, const std::vector<size_t>& lengths,
                            float* context) const {
  const int H = config_.hidden, heads = config_.heads, d = H / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t tasks = static_cast<int64_t>(offsets.size()) * heads;
  size_t max_len = 0;
  for (size_t len : lengths) max_len = std::max(max_len, len);
    // One (sequence, head) per task; each thread keeps its own score matrix. The GEMMs
    // inside run single-threaded (oneDNN sees it is inside a parallel region).
#pragma omp parallel if (tasks > 1)
  {
    AlignedVector<float> scores(max_len * max_len), inv_sum(max_len);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const size_t s = static_cast<size_t>(t / heads);
      const int h = static_cast<int>(t % heads);
      const auto L = static_cast<dnnl_dim_t>(lengths[s]);
      const float* q = qkv + offsets[s] * 3 * H + h * d;
      const float* k = q + H;
      const float* v = q + 2 * H;
      dnnl_sgemm('N', 'T', L, L, d, scale, q, 3 * H, k, 3 * H, 0.0f, scores.data(), L);
      kernels::ExpRows(scores.data(), lengths[s], lengths[s], lengths[s], inv_sum.data());
      float* out = context + offsets[s] * H + h * d;
      dnnl_sgemm('N', 'N', L, d, L, 1.0f, scores.data(), L, v, 3 * H, 0.0f, out, H);
      for (size_t i = 0; i < lengths[s]; ++i) {
        for (int c = 0; c < d; ++c) out[i * H + c] *= inv_sum[i];
      }
    }
  }
}

Status BertEncoder::Forward(const std::vector<std::vector<int32_t>>& seqs, Pooling pooling, float* out) const {
  const size_t H = static_cast<size_t>(config_.hidden), F = static_cast<size_t>(config_.intermediate);
  std::vector<size_t> offsets, lengths;
  size_t total = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const size_t len = seqs[s].size();
    if (len == 0 || len > static_cast<size_t>(config_.max_positions))
      return InvalidArgument("sequence " + std::to_string(s) + " has " + std::to_string(len) +
                             " tokens; the model takes 1 to " + std::to_string(config_.max_positions));
    for (int32_t id : seqs[s]) {
      if (id < 0 || id >= config_.vocab_size)
        return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary");
    }
    offsets.push_back(total);
    lengths.push_back(len);
    total += len;
  }
  if (total == 0) return Status::Ok();

  // Hidden state of every real token of the batch, packed.
  std::unique_ptr<Scratch> scratch = TakeScratch();
  float* x = Grow(&scratch->x, total * H);
  float* qkv = Grow(&scratch->qkv, total * 3 * H);
  float* context = Grow(&scratch->context, total * H);
  float* tmp = Grow(&scratch->tmp, total * H);
  float* inter = options_.int8 ? nullptr : Grow(&scratch->inter, total * F);  // int8 keeps it as u8
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t t = 0; t < lengths[s]; ++t) {
      float* row = x + (offsets[s] + t) * H;
      const float* w = word_.data() + static_cast<size_t>(seqs[s][t]) * H;
      const float* p = position_.data() + t * H;
      for (size_t c = 0; c < H; ++c) row[c] = w[c] + p[c] + token_type_[c];
    }
  }
  const float eps = config_.layer_norm_eps;
  kernels::ResidualLayerNorm(x, nullptr, nullptr, emb_gamma_.data(), emb_beta_.data(), total, H, eps);
  using Epilogue = Linear::Epilogue;
  for (const auto& layer : layers_) {
    layer->qkv.Forward(*engine_, x, total, Epilogue::kBias, qkv, {}, scratch.get());
    Attention(qkv, offsets, lengths, context);
    layer->attn_out.Forward(*engine_, context, total, Epilogue::kResidualLayerNorm, tmp,
                            {x, layer->ln1_gamma.data(), layer->ln1_beta.data(), eps}, scratch.get());
    if (options_.int8) {
      // The feed-forward's wide activation goes from the first GEMM's accumulators to the
      // second GEMM's u8 input in one pass.
      uint8_t* xq = Grow(&scratch->xq, total * H);
      float* xscale = Grow(&scratch->xscale, total);
      kernels::QuantizeRows(x, total, H, xq, xscale);
      const kernels::Int8Product hidden = layer->ffn_in.Int8Gemm(*engine_, xq, xscale, total, scratch.get());
      uint8_t* inter_q = Grow(&scratch->inter_q, total * F);
      float* inter_scale = Grow(&scratch->inter_scale, total);
      kernels::DequantBiasGeluQuantize(hidden, total, F, layer->ffn_in.bias.data(), inter_q, inter_scale);
      const kernels::Int8Product ffn = layer->ffn_out.Int8Gemm(*engine_, inter_q, inter_scale, total, scratch.get());
      kernels::DequantResidualLayerNorm(x, ffn, layer->ffn_out.bias.data(), layer->ln2_gamma.data(),
                                        layer->ln2_beta.data(), total, H, eps);
    } else {
      layer->ffn_in.Forward(*engine_, x, total, Epilogue::kBiasGelu, inter, {}, scratch.get());
      layer->ffn_out.Forward(*engine_, inter, total, Epilogue::kResidualLayerNorm, tmp,
                             {x, layer->ln2_gamma.data(), layer->ln2_beta.data(), eps}, scratch.get());
    }
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    float* o = out + s * H;
    const float* first = x + offsets[s] * H;
    if (pooling == Pooling::kCls) {
      std::copy(first, first + H, o);
      continue;
    }
    std::fill(o, o + H, 0.0f);
    for (size_t t = 0; t < lengths[s]; ++t) {
      for (size_t c = 0; c < H; ++c) o[c] += first[t * H + c];
    }
    const float inv = 1.0f / static_cast<float>(lengths[s]);
    for (size_t c = 0; c < H; ++c) o[c] *= inv;
  }
  GiveScratch(std::move(scratch));
  return Status::Ok();
}

}  // namespace contextd
