// The encoder's element-wise kernels, fused so each pass over the activations does all
// the work for its step. Each runs over row ranges on the OpenMP threads and dispatches at
// run time to AVX-512, AVX2+FMA or baseline code (target_clones: the loops are written so
// the compiler vectorises them for each target).
//
// Shapes: `rows` x `cols`, row-major, contiguous. All are safe for concurrent calls on
// distinct buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace contextd::kernels {

// x[r][c] += bias[c].
void AddBias(float* x, size_t rows, size_t cols, const float* bias);
// x = GELU(x + bias), the exact erf form: 0.5 x (1 + erf(x / sqrt 2)).
void BiasGelu(float* x, size_t rows, size_t cols, const float* bias);
// x = LayerNorm(x + y + bias) * gamma + beta over each row; y and bias may be null.
void ResidualLayerNorm(float* x, const float* y, const float* bias, const float* gamma, const float* beta, size_t rows,
                       size_t cols, float eps);
// Softmax of each row without its final division: x = exp(x - max(row)) in place and
// inv_sum[r] = 1 / sum(row). Attention applies inv_sum to its output rows (d wide) rather
// than to the score rows (L wide). One thread: callers parallelise over heads.
void ExpRows(float* x, size_t rows, size_t cols, size_t ld, float* inv_sum);

// Dynamic per-row (per-token) symmetric int8 quantisation, stored offset by 128 as u8 for
// the u8 x s8 GEMM: q = round(x / scale) + 128, scale = max|x| / 127.
void QuantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* scales);
// The int8 GEMM's output: acc[r][c] = sum_k q[r][k] * w[c][k] with q the u8 activations
// (offset by 128), so the true product is acc - col_offset[c] (col_offset = 128 * sum_k
// w[c][k]), scaled by row_scale[r] * col_scale[c].
struct Int8Product {
  const int32_t* acc;
  const float* row_scale;
  const float* col_scale;
  const int32_t* col_offset;
};
// Its epilogues, one pass each (the int32 accumulators are never written back as floats),
// with v = (acc - col_offset[c]) * row_scale[r] * col_scale[c] + bias[c]:
//   DequantBias:               out = v
//   DequantBiasGelu:           out = GELU(v)
//   DequantResidualLayerNorm:  x = LayerNorm(x + v) * gamma + beta
void DequantBias(const Int8Product& p, size_t rows, size_t cols, const float* bias, float* out);
void DequantBiasGelu(const Int8Product& p, size_t rows, size_t cols, const float* bias, float* out);
// GELU(v) quantised straight into the next layer's u8 input and per-row scales (as
// QuantizeRows would), so the widest activation (the feed-forward's) never goes to memory
// as floats.
void DequantBiasGeluQuantize(const Int8Product& p, size_t rows, size_t cols, const float* bias, uint8_t* q,
                             float* scales);
void DequantResidualLayerNorm(float* x, const Int8Product& p, const float* bias, const float* gamma, const float* beta,
                              size_t rows, size_t cols, float eps);

// Scalar forms for tests and tails.
float Erf(float x);
float Exp(float x);

}  // namespace contextd::kernels
