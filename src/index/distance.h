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
// Scales v to unit length in place; leaves a zero vector alone.
void NormalizeInPlace(float* v, size_t dim);

}  // namespace contextd
