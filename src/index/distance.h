// Distance kernels over float vectors, dispatched at run time to AVX-512, AVX2 or plain
// x86-64 code, so one binary runs anywhere and is fast where the CPU allows.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace contextd {

enum class Metric { kCosine, kDot, kL2 };

bool ParseMetric(std::string_view name, Metric* out);
std::string_view MetricName(Metric m);

float DotProduct(const float* a, const float* b, size_t dim);
float L2Squared(const float* a, const float* b, size_t dim);
// Batch form, for scans: out[i] = DotProduct(query, base + i * dim) for i < n, or the L2
// squared distance. One dispatched call per block keeps the per-vector cost to the
// arithmetic. base: n * dim floats, out: n floats, caller-owned.
void DotProductBatch(const float* query, const float* base, size_t n, size_t dim, float* out);
void L2SquaredBatch(const float* query, const float* base, size_t n, size_t dim, float* out);
// The same over rows scattered in memory (graph neighbours): out[i] = query . rows[i], or
// the L2 squared distance.
void DotProductGather(const float* query, const float* const* rows, size_t n, size_t dim, float* out);
void L2SquaredGather(const float* query, const float* const* rows, size_t n, size_t dim, float* out);
// int8 dot products for quantized scans: out[i] = sum_j query[j] * base[i * stride + j].
// query: stride int16 (the int8 query widened once per search); base: n * stride int8.
// REQUIRES: stride % 16 == 0 (rows are zero-padded), so no kernel needs a scalar tail.
void DotInt8Batch(const int16_t* query, const int8_t* base, size_t n, size_t stride, int32_t* out);

// The same over rows scattered in memory (graph neighbours): out[i] = query . rows[i].
void DotInt8Gather(const int16_t* query, const int8_t* const* rows, size_t n, size_t stride, int32_t* out);

// Quantizes v (dim floats) into `stride` int8s (zero-padded) with one symmetric scale,
// v[j] ~= codes[j] * scale. Returns the scale (0 for a zero vector).
float QuantizeInt8(const float* v, size_t dim, size_t stride, int8_t* codes);

// Scales v to unit length in place; leaves a zero vector, and one already of unit length
// (|norm^2 - 1| < 1e-6), exactly alone, so normalising twice equals normalising once.
void NormalizeInPlace(float* v, size_t dim);

}  // namespace contextd
