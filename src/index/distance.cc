#include "index/distance.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "common/target_clones.h"

// Each kernel is compiled for AVX-512, AVX2+FMA and baseline x86-64 (CTX_CLONES).

namespace contextd {

bool ParseMetric(std::string_view name, Metric* out) {
  if (name == "cosine")
    *out = Metric::kCosine;
  else if (name == "dot")
    *out = Metric::kDot;
  else if (name == "l2")
    *out = Metric::kL2;
  else
    return false;
  return true;
}

std::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kCosine:
      return "cosine";
    case Metric::kDot:
      return "dot";
    case Metric::kL2:
      return "l2";
  }
  return "cosine";
}

CTX_CLONES float DotProduct(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) s += a[i] * b[i];
  return s;
}

CTX_CLONES float L2Squared(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

namespace {

// Eight floats; lowered to one AVX register, two SSE registers, or half an AVX-512 one,
// whichever the clone being compiled targets.
typedef float V8 __attribute__((vector_size(32), aligned(4)));

inline V8 Load8(const float* p) {
  V8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

inline float Sum8(V8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// Scores four base vectors per pass: the query is loaded once for all four, and the four
// accumulators are independent chains, so the loop is bound by throughput, not latency.
// row(i) is the i-th base vector: contiguous for scans, scattered for graph neighbours.
template <bool kL2, class RowAt>
inline void Batch(const float* q, RowAt row, size_t n, size_t dim, float* out) {
  const size_t body = dim & ~size_t{7};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float* v0 = row(i);
    const float* v1 = row(i + 1);
    const float* v2 = row(i + 2);
    const float* v3 = row(i + 3);
    V8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (size_t j = 0; j < body; j += 8) {
      V8 x = Load8(q + j);
      if constexpr (kL2) {
        V8 d0 = x - Load8(v0 + j), d1 = x - Load8(v1 + j), d2 = x - Load8(v2 + j), d3 = x - Load8(v3 + j);
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
      } else {
        a0 += x * Load8(v0 + j);
        a1 += x * Load8(v1 + j);
        a2 += x * Load8(v2 + j);
        a3 += x * Load8(v3 + j);
      }
    }
    float s[4] = {Sum8(a0), Sum8(a1), Sum8(a2), Sum8(a3)};
    const float* vs[4] = {v0, v1, v2, v3};
    for (size_t j = body; j < dim; ++j) {
      for (int r = 0; r < 4; ++r) {
        float d = kL2 ? q[j] - vs[r][j] : q[j] * vs[r][j];
        s[r] += kL2 ? d * d : d;
      }
    }
    out[i] = s[0];
    out[i + 1] = s[1];
    out[i + 2] = s[2];
    out[i + 3] = s[3];
  }
  for (; i < n; ++i) out[i] = kL2 ? L2Squared(q, row(i), dim) : DotProduct(q, row(i), dim);
}

}  // namespace

CTX_CLONES void DotProductBatch(const float* query, const float* base, size_t n, size_t dim, float* out) {
  Batch<false>(
      query, [base, dim](size_t i) { return base + i * dim; }, n, dim, out);
}

CTX_CLONES void L2SquaredBatch(const float* query, const float* base, size_t n, size_t dim, float* out) {
  Batch<true>(
      query, [base, dim](size_t i) { return base + i * dim; }, n, dim, out);
}

CTX_CLONES void DotProductGather(const float* query, const float* const* rows, size_t n, size_t dim, float* out) {
  Batch<false>(
      query, [rows](size_t i) { return rows[i]; }, n, dim, out);
}

CTX_CLONES void L2SquaredGather(const float* query, const float* const* rows, size_t n, size_t dim, float* out) {
  Batch<true>(
      query, [rows](size_t i) { return rows[i]; }, n, dim, out);
}

namespace {

void DotInt8BatchScalar(const int16_t* q, const int8_t* base, size_t n, size_t stride, int32_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const int8_t* v = base + i * stride;
    int32_t s = 0;
    for (size_t j = 0; j < stride; ++j) s += q[j] * v[j];
    out[i] = s;
  }
}

__attribute__((target("avx2"))) inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) inline __m256i WidenRow(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Widen 16 int8s to int16 and multiply-add pairs into int32 (vpmaddwd); four rows per pass
// share each query load.
__attribute__((target("avx2"))) void DotInt8BatchAvx2(const int16_t* q, const int8_t* base, size_t n, size_t stride,
                                                      int32_t* out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const int8_t* v = base + i * stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t j = 0; j < stride; j += 16) {
      __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, WidenRow(v + j)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, WidenRow(v + stride + j)));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, WidenRow(v + 2 * stride + j)));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x, WidenRow(v + 3 * stride + j)));
    }
    out[i] = HorizontalSum(a0);
    out[i + 1] = HorizontalSum(a1);
    out[i + 2] = HorizontalSum(a2);
    out[i + 3] = HorizontalSum(a3);
  }
  for (; i < n; ++i) {  // the rest one row at a time (graph traversal scores single rows)
    const int8_t* v = base + i * stride;
    __m256i a = _mm256_setzero_si256();
    for (size_t j = 0; j < stride; j += 16) {
      a = _mm256_add_epi32(
          a, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j)), WidenRow(v + j)));
    }
    out[i] = HorizontalSum(a);
  }
}

void DotInt8GatherScalar(const int16_t* q, const int8_t* const* rows, size_t n, size_t stride, int32_t* out) {
  for (size_t i = 0; i < n; ++i) DotInt8BatchScalar(q, rows[i], 1, stride, out + i);
}

__attribute__((target("avx2"))) void DotInt8GatherAvx2(const int16_t* q, const int8_t* const* rows, size_t n,
                                                       size_t stride, int32_t* out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t j = 0; j < stride; j += 16) {
      __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, WidenRow(rows[i] + j)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, WidenRow(rows[i + 1] + j)));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, WidenRow(rows[i + 2] + j)));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x, WidenRow(rows[i + 3] + j)));
    }
    out[i] = HorizontalSum(a0);
    out[i + 1] = HorizontalSum(a1);
    out[i + 2] = HorizontalSum(a2);
    out[i + 3] = HorizontalSum(a3);
  }
  for (; i < n; ++i) DotInt8BatchAvx2(q, rows[i], 1, stride, out + i);
}

using DotInt8GatherFn = void (*)(const int16_t*, const int8_t* const*, size_t, size_t, int32_t*);

using DotInt8Fn = void (*)(const int16_t*, const int8_t*, size_t, size_t, int32_t*);

}  // namespace

void DotInt8Gather(const int16_t* query, const int8_t* const* rows, size_t n, size_t stride, int32_t* out) {
  static const DotInt8GatherFn fn = KernelsMayUseAvx2() ? DotInt8GatherAvx2 : DotInt8GatherScalar;
  fn(query, rows, n, stride, out);
}

void DotInt8Batch(const int16_t* query, const int8_t* base, size_t n, size_t stride, int32_t* out) {
  static const DotInt8Fn fn = KernelsMayUseAvx2() ? DotInt8BatchAvx2 : DotInt8BatchScalar;
  fn(query, base, n, stride, out);
}

float QuantizeInt8(const float* v, size_t dim, size_t stride, int8_t* codes) {
  float max_abs = 0;
  for (size_t j = 0; j < dim; ++j) max_abs = std::max(max_abs, std::fabs(v[j]));
  std::fill(codes, codes + stride, 0);
  if (max_abs == 0) return 0;
  const float scale = max_abs / 127.0f;
  const float inv = 1.0f / scale;
  for (size_t j = 0; j < dim; ++j) codes[j] = static_cast<int8_t>(std::lrintf(std::clamp(v[j] * inv, -127.0f, 127.0f)));
  return scale;
}

void NormalizeInPlace(float* v, size_t dim) {
  double n = 0;
  for (size_t i = 0; i < dim; ++i) n += static_cast<double>(v[i]) * v[i];
  // A vector already of unit length (to float precision) is left exactly as it is, so
  // normalising is idempotent: a shard split re-adds vectors the graph normalised once,
  // and replicas that never split must still hold the same bits.
  if (n <= 0 || std::abs(n - 1.0) < 1e-6) return;
  float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (size_t i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace contextd
