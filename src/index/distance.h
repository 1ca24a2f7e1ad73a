// Distance kernels over float vectors, dispatched at run time to AVX-512, AVX2 or plain
// x86-64 code, so one binary runs anywhere and is fast where the CPU allows.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
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
// Scales v to unit length in place; leaves a zero vector alone.
void NormalizeInPlace(float* v, size_t dim);

}  // namespace contextd
