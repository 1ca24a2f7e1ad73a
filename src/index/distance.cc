#include "index/distance.h"

#include <cmath>

namespace contextd {

bool ParseMetric(std::string_view name, Metric* out) {
  if (name == "cosine") *out = Metric::kCosine;
  else if (name == "dot") *out = Metric::kDot;
  else if (name == "l2") *out = Metric::kL2;
  else return false;
  return true;
}

std::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kCosine: return "cosine";
    case Metric::kDot: return "dot";
    case Metric::kL2: return "l2";
  }
  return "cosine";
}

__attribute__((target_clones("avx512f", "avx2,fma", "default")))
float DotProduct(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target_clones("avx512f", "avx2,fma", "default")))
float L2Squared(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

void NormalizeInPlace(float* v, size_t dim) {
  double n = 0;
  for (size_t i = 0; i < dim; ++i) n += static_cast<double>(v[i]) * v[i];
  if (n <= 0) return;
  float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (size_t i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace contextd
