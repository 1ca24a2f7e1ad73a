#include "encoder/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/target_clones.h"

namespace contextd::kernels {
namespace {

// Below this many elements a pass is not worth waking the other threads.
constexpr size_t kParallelMin = 1 << 15;

// Calls f(begin, end) over disjoint row ranges on the OpenMP team. The vectorised code
// lives in f's callee (a cloned function), not in this outlined region, which the
// compiler would build for the baseline target only.
template <class F>
void ForRows(size_t rows, size_t cols, F&& f) {
  if (rows * cols < kParallelMin || omp_in_parallel()) {
    f(size_t{0}, rows);
    return;
  }
#pragma omp parallel
  {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    const size_t n = static_cast<size_t>(omp_get_num_threads());
    const size_t b = rows * t / n, e = rows * (t + 1) / n;
    if (b < e) f(b, e);
  }
}

// exp(x) branch-free (so loops over it vectorise): x = k ln2 + r, |r| <= ln2/2, a
// degree-6 polynomial for e^r, 2^k built in the exponent bits. Relative error ~2e-7.
inline float ExpInline(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));
  const float k = std::nearbyint(x * 1.44269504088896341f);
  const float r = x - k * 0.693145751953125f - k * 1.428606765330187045e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (erf(4) = 1 - 1.5e-8; beyond it, +-1): a rational
// fit with no exp and one division, max error 8e-8 in double, ~3e-7 in float. Fitted by
// weighted least squares (Sanathanan-Koerner) for this project.
inline float ErfInline(float x) {
  x = std::min(4.0f, std::max(-4.0f, x));
  const float z = x * x;
  float p = 1.9667930395428357e-08f;
  p = p * z - 1.9775157083581907e-06f;
  p = p * z + 1.482245826714885e-04f;
  p = p * z + 3.965617864571137e-03f;
  p = p * z + 5.138600574497002e-02f;
  p = p * z + 2.061136187352884e-01f;
  p = p * z + 1.1283788191949686f;
  float q = 1.0204738969647883e-03f;
  q = q * z + 1.4880657573158632e-02f;
  q = q * z + 1.1755333975262251e-01f;
  q = q * z + 5.15992596936872e-01f;
  q = q * z + 1.0f;
  return std::min(1.0f, std::max(-1.0f, x * p / q));
}

CTX_CLONES void AddBiasRows(float* x, size_t rows, size_t cols, const float* bias) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    for (size_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

CTX_CLONES void BiasGeluRows(float* x, size_t rows, size_t cols, const float* bias) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    for (size_t c = 0; c < cols; ++c) {
      const float v = row[c] + bias[c];
      row[c] = 0.5f * v * (1.0f + ErfInline(v * 0.70710678118654752f));
    }
  }
}

CTX_CLONES void LayerNormRows(float* x, const float* y, const float* bias, const float* gamma, const float* beta,
                              size_t rows, size_t cols, float eps) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    if (y != nullptr) {
      const float* yr = y + r * cols;
      if (bias != nullptr) {
        for (size_t c = 0; c < cols; ++c) row[c] += yr[c] + bias[c];
      } else {
        for (size_t c = 0; c < cols; ++c) row[c] += yr[c];
      }
    }
    float sum = 0;
    for (size_t c = 0; c < cols; ++c) sum += row[c];
    const float mean = sum / static_cast<float>(cols);
    float sq = 0;
    for (size_t c = 0; c < cols; ++c) {
      const float d = row[c] - mean;
      sq += d * d;
    }
    const float inv = 1.0f / std::sqrt(sq / static_cast<float>(cols) + eps);
    for (size_t c = 0; c < cols; ++c) row[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
  }
}

CTX_CLONES void ExpRowsImpl(float* x, size_t rows, size_t cols, size_t ld, float* inv_sum) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    float mx = row[0];
    for (size_t c = 1; c < cols; ++c) mx = std::max(mx, row[c]);
    float sum = 0;
    for (size_t c = 0; c < cols; ++c) {
      row[c] = ExpInline(row[c] - mx);
      sum += row[c];
    }
    inv_sum[r] = 1.0f / sum;
  }
}

CTX_CLONES void QuantizeRowsImpl(const float* x, size_t rows, size_t cols, uint8_t* q, float* scales) {
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    float mx = 0;
    for (size_t c = 0; c < cols; ++c) mx = std::max(mx, std::fabs(row[c]));
    const float scale = mx > 0 ? mx / 127.0f : 1.0f;
    const float inv = 1.0f / scale;
    uint8_t* out = q + r * cols;
    for (size_t c = 0; c < cols; ++c) {
      out[c] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(row[c] * inv)) + 128);
    }
    scales[r] = scale;
  }
}

CTX_CLONES void DequantBiasRows(const int32_t* acc, const float* row_scale, const float* col_scale,
                                const int32_t* col_offset, size_t rows, size_t cols, const float* bias, float* out,
                                bool gelu) {
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * cols;
    float* o = out + r * cols;
    const float rs = row_scale[r];
    if (gelu) {
      for (size_t c = 0; c < cols; ++c) {
        const float v = static_cast<float>(a[c] - col_offset[c]) * rs * col_scale[c] + bias[c];
        o[c] = 0.5f * v * (1.0f + ErfInline(v * 0.70710678118654752f));
      }
    } else {
      for (size_t c = 0; c < cols; ++c) o[c] = static_cast<float>(a[c] - col_offset[c]) * rs * col_scale[c] + bias[c];
    }
  }
}

CTX_CLONES void DequantGeluQuantizeRows(const int32_t* acc, const float* row_scale, const float* col_scale,
                                        const int32_t* col_offset, size_t rows, size_t cols, const float* bias,
                                        float* row_buf, uint8_t* q, float* scales) {
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * cols;
    const float rs = row_scale[r];
    float mx = 0;
    for (size_t c = 0; c < cols; ++c) {
      const float v = static_cast<float>(a[c] - col_offset[c]) * rs * col_scale[c] + bias[c];
      const float g = 0.5f * v * (1.0f + ErfInline(v * 0.70710678118654752f));
      row_buf[c] = g;
      mx = std::max(mx, std::fabs(g));
    }
    const float scale = mx > 0 ? mx / 127.0f : 1.0f;
    const float inv = 1.0f / scale;
    uint8_t* out = q + r * cols;
    for (size_t c = 0; c < cols; ++c)
      out[c] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(row_buf[c] * inv)) + 128);
    scales[r] = scale;
  }
}

CTX_CLONES void DequantAddRows(float* x, const int32_t* acc, const float* row_scale, const float* col_scale,
                               const int32_t* col_offset, const float* bias, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const int32_t* a = acc + r * cols;
    const float rs = row_scale[r];
    for (size_t c = 0; c < cols; ++c) row[c] += static_cast<float>(a[c] - col_offset[c]) * rs * col_scale[c] + bias[c];
  }
}

}  // namespace

void AddBias(float* x, size_t rows, size_t cols, const float* bias) {
  ForRows(rows, cols, [&](size_t b, size_t e) { AddBiasRows(x + b * cols, e - b, cols, bias); });
}

void BiasGelu(float* x, size_t rows, size_t cols, const float* bias) {
  ForRows(rows, cols, [&](size_t b, size_t e) { BiasGeluRows(x + b * cols, e - b, cols, bias); });
}

void ResidualLayerNorm(float* x, const float* y, const float* bias, const float* gamma, const float* beta, size_t rows,
                       size_t cols, float eps) {
  ForRows(rows, cols, [&](size_t b, size_t e) {
    LayerNormRows(x + b * cols, y == nullptr ? nullptr : y + b * cols, bias, gamma, beta, e - b, cols, eps);
  });
}

void ExpRows(float* x, size_t rows, size_t cols, size_t ld, float* inv_sum) { ExpRowsImpl(x, rows, cols, ld, inv_sum); }

void QuantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* scales) {
  ForRows(rows, cols,
          [&](size_t b, size_t e) { QuantizeRowsImpl(x + b * cols, e - b, cols, q + b * cols, scales + b); });
}

void DequantBias(const Int8Product& p, size_t rows, size_t cols, const float* bias, float* out) {
  ForRows(rows, cols, [&](size_t b, size_t e) {
    DequantBiasRows(p.acc + b * cols, p.row_scale + b, p.col_scale, p.col_offset, e - b, cols, bias, out + b * cols,
                    false);
  });
}

void DequantBiasGelu(const Int8Product& p, size_t rows, size_t cols, const float* bias, float* out) {
  ForRows(rows, cols, [&](size_t b, size_t e) {
    DequantBiasRows(p.acc + b * cols, p.row_scale + b, p.col_scale, p.col_offset, e - b, cols, bias, out + b * cols,
                    true);
  });
}

void DequantBiasGeluQuantize(const Int8Product& p, size_t rows, size_t cols, const float* bias, uint8_t* q,
                             float* scales) {
  ForRows(rows, cols, [&](size_t b, size_t e) {
    std::vector<float> row(cols);  // one row at a time stays in L1
    DequantGeluQuantizeRows(p.acc + b * cols, p.row_scale + b, p.col_scale, p.col_offset, e - b, cols, bias, row.data(),
                            q + b * cols, scales + b);
  });
}

void DequantResidualLayerNorm(float* x, const Int8Product& p, const float* bias, const float* gamma, const float* beta,
                              size_t rows, size_t cols, float eps) {
  ForRows(rows, cols, [&](size_t b, size_t e) {
    DequantAddRows(x + b * cols, p.acc + b * cols, p.row_scale + b, p.col_scale, p.col_offset, bias, e - b, cols);
    LayerNormRows(x + b * cols, nullptr, nullptr, gamma, beta, e - b, cols, eps);
  });
}

float Erf(float x) { return ErfInline(x); }
float Exp(float x) { return ExpInline(x); }

}  // namespace contextd::kernels
