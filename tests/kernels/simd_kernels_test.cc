// The SIMD kernels (distance, BM25 scoring, the encoder's element-wise passes) against
// scalar references in double precision. tests/CMakeLists.txt builds this file once per
// path: linked with the shipped libraries (the path this CPU dispatches to), and with the
// kernel files compiled for one x86-64 level only (CONTEXTD_KERNEL_LEVEL 0, 3 or 4, see
// common/target_clones.h), so the AVX-512, AVX2 and baseline code are each checked on any
// machine that can run them. A level the CPU lacks is skipped, and says so.
//
// Sizes are chosen around the vector widths (7, 8, 9, 15, 16, 17, ...) so every loop's
// tail runs, and some are large enough for the encoder's passes to go parallel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "encoder/kernels.h"
#include "index/bm25_scoring.h"
#include "index/distance.h"

namespace contextd {
namespace {

// The levels' defining features, named one by one: clang 14 (the sanitizer build) knows no
// "x86-64-v3" here. Every CPU with these has the rest of its level (MOVBE, F16C, LZCNT).
bool CpuRunsThisPath() {
#if !defined(CONTEXTD_KERNEL_LEVEL) || CONTEXTD_KERNEL_LEVEL == 0
  return true;
#else
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
#if CONTEXTD_KERNEL_LEVEL == 3
  return v3;
#else
  return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
#endif
}

class SimdKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CpuRunsThisPath()) GTEST_SKIP() << "this CPU lacks the x86-64 level these kernels were built for";
  }
  std::mt19937 rng_{42};
  std::vector<float> Normal(size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> d(0.0f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng_);
    return v;
  }
};

using DistanceKernelTest = SimdKernelTest;
using Int8KernelTest = SimdKernelTest;
using Bm25ScoringTest = SimdKernelTest;
using EncoderKernelTest = SimdKernelTest;

const size_t kDims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 129, 384, 1001};

// A float sum of n products is within a few ulps of the sum of their magnitudes.
double Tolerance(const float* a, const float* b, size_t dim, bool l2) {
  double mag = 0;
  for (size_t i = 0; i < dim; ++i) mag += l2 ? (a[i] - b[i]) * double(a[i] - b[i]) : std::fabs(double(a[i]) * b[i]);
  return 1e-5 * mag + 1e-6;
}

double RefDot(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) s += double(a[i]) * b[i];
  return s;
}

double RefL2(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}

TEST_F(DistanceKernelTest, OneVectorMatchesDoublePrecision) {
  for (size_t dim : kDims) {
    auto a = Normal(dim), b = Normal(dim);
    EXPECT_NEAR(DotProduct(a.data(), b.data(), dim), RefDot(a.data(), b.data(), dim),
                Tolerance(a.data(), b.data(), dim, false))
        << dim;
    EXPECT_NEAR(L2Squared(a.data(), b.data(), dim), RefL2(a.data(), b.data(), dim),
                Tolerance(a.data(), b.data(), dim, true))
        << dim;
  }
}

TEST_F(DistanceKernelTest, BatchesAndGathersMatchDoublePrecision) {
  for (size_t dim : kDims) {
    for (size_t n : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 17u}) {
      auto q = Normal(dim), base = Normal(dim * n);
      std::vector<const float*> rows(n);
      for (size_t i = 0; i < n; ++i) rows[i] = &base[((i * 5) % n) * dim];  // scattered, some repeated
      std::vector<float> dot(n), l2(n), gdot(n), gl2(n);
      DotProductBatch(q.data(), base.data(), n, dim, dot.data());
      L2SquaredBatch(q.data(), base.data(), n, dim, l2.data());
      DotProductGather(q.data(), rows.data(), n, dim, gdot.data());
      L2SquaredGather(q.data(), rows.data(), n, dim, gl2.data());
      for (size_t i = 0; i < n; ++i) {
        const float* v = &base[i * dim];
        EXPECT_NEAR(dot[i], RefDot(q.data(), v, dim), Tolerance(q.data(), v, dim, false)) << dim << "x" << n;
        EXPECT_NEAR(l2[i], RefL2(q.data(), v, dim), Tolerance(q.data(), v, dim, true)) << dim << "x" << n;
        EXPECT_NEAR(gdot[i], RefDot(q.data(), rows[i], dim), Tolerance(q.data(), rows[i], dim, false));
        EXPECT_NEAR(gl2[i], RefL2(q.data(), rows[i], dim), Tolerance(q.data(), rows[i], dim, true));
      }
    }
  }
}

TEST_F(Int8KernelTest, DotProductsAreExact) {
  std::uniform_int_distribution<int> code(-127, 127);
  for (size_t stride : {16u, 32u, 48u, 400u}) {
    for (size_t n : {1u, 3u, 4u, 5u, 8u, 9u}) {
      std::vector<int16_t> q(stride);
      std::vector<int8_t> base(stride * n);
      for (auto& x : q) x = static_cast<int16_t>(code(rng_));
      for (auto& x : base) x = static_cast<int8_t>(code(rng_));
      // The extremes, where a 16-bit intermediate would overflow.
      q[0] = -127;
      base[0] = -127;
      std::vector<const int8_t*> rows(n);
      for (size_t i = 0; i < n; ++i) rows[i] = &base[(n - 1 - i) * stride];
      std::vector<int32_t> out(n), gathered(n);
      DotInt8Batch(q.data(), base.data(), n, stride, out.data());
      DotInt8Gather(q.data(), rows.data(), n, stride, gathered.data());
      for (size_t i = 0; i < n; ++i) {
        int64_t want = 0, want_g = 0;
        for (size_t j = 0; j < stride; ++j) {
          want += q[j] * base[i * stride + j];
          want_g += q[j] * rows[i][j];
        }
        EXPECT_EQ(out[i], want) << stride << "x" << n << " row " << i;
        EXPECT_EQ(gathered[i], want_g) << stride << "x" << n << " row " << i;
      }
    }
  }
}

TEST_F(Bm25ScoringTest, AccumulatesMarksAndRaisesTheBestAsScalarMath) {
  const Bm25TermScorer scorer{2.3f, 0.3f, 0.0125f};
  std::uniform_int_distribution<int> tf(1, 40), len(1, 2000);
  for (size_t n : {0u, 1u, 7u, 255u, 256u, 257u, 1000u}) {
    for (bool filtered : {false, true}) {
      const size_t universe = 3 * n + 70;
      std::vector<Bm25Posting> postings;
      for (uint32_t slot = 5; postings.size() < n; slot += 1 + static_cast<uint32_t>(rng_() % 3)) {
        postings.push_back({slot, static_cast<uint16_t>(tf(rng_)), static_cast<uint16_t>(len(rng_))});
      }
      SlotBitset allowed(universe);
      for (uint32_t s = 0; s < universe; s += 2) allowed.Set(s);
      std::vector<float> acc = Normal(universe);
      for (auto& a : acc) a = std::fabs(a);  // earlier terms' scores
      std::vector<uint8_t> marks((universe + 63) / 64, 0);
      std::vector<double> want(acc.begin(), acc.end());
      std::vector<uint8_t> want_marks = marks;
      const float start_best = 0.5f;
      double want_best = start_best;
      for (const auto& p : postings) {
        const double s =
            double(scorer.idf) * p.tf / (p.tf + double(scorer.norm_base) + double(scorer.norm_slope) * p.len);
        want[p.slot] += filtered && !allowed.Test(p.slot) ? 0.0 : s;
        want_marks[p.slot >> 6] = 1;
        want_best = std::max(want_best, want[p.slot]);
      }
      float best = start_best;
      Bm25ScorePostings(postings.data(), postings.size(), scorer, filtered ? &allowed : nullptr, acc.data(),
                        marks.data(), &best);
      for (size_t s = 0; s < universe; ++s) EXPECT_NEAR(acc[s], want[s], 1e-5 * (1 + want[s])) << n << " slot " << s;
      EXPECT_EQ(marks, want_marks) << n;
      EXPECT_NEAR(best, want_best, 1e-5 * (1 + want_best)) << n;
    }
  }
}

double RefGelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

TEST_F(EncoderKernelTest, ErfExpAndGeluMatchLibm) {
  for (float x = -6.0f; x <= 6.0f; x += 0.01f) {
    EXPECT_NEAR(kernels::Erf(x), std::erf(x), 5e-7) << x;
    EXPECT_NEAR(kernels::Exp(x) / std::exp(x), 1.0f, 1e-6) << x;
  }
  std::vector<float> v(1000), bias(1000, 0.25f);
  for (size_t i = 0; i < v.size(); ++i) v[i] = -5.0f + 0.01f * static_cast<float>(i);
  std::vector<float> want = v;
  kernels::BiasGelu(v.data(), 1, v.size(), bias.data());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], RefGelu(want[i] + 0.25), 1e-6);
}

// Row counts and widths: tails of every vector width, and 100 x 384 (past the size at
// which the passes split rows over threads).
const std::pair<size_t, size_t> kShapes[] = {{1, 1}, {3, 7}, {2, 16}, {5, 17}, {4, 33}, {3, 384}, {100, 384}};

TEST_F(EncoderKernelTest, BiasAndGeluMatchDoublePrecision) {
  for (auto [rows, cols] : kShapes) {
    auto x = Normal(rows * cols, 2.0f), bias = Normal(cols);
    auto added = x, gelu = x;
    kernels::AddBias(added.data(), rows, cols, bias.data());
    kernels::BiasGelu(gelu.data(), rows, cols, bias.data());
    for (size_t i = 0; i < rows * cols; ++i) {
      const double v = double(x[i]) + bias[i % cols];
      ASSERT_NEAR(added[i], v, 1e-6 * (1 + std::fabs(v))) << rows << "x" << cols;
      ASSERT_NEAR(gelu[i], RefGelu(v), 2e-6 * (1 + std::fabs(v))) << rows << "x" << cols;
    }
  }
}

// LayerNorm(row) * gamma + beta with the kernels' eps (1e-12).
std::vector<double> RefLayerNorm(const std::vector<double>& row, const std::vector<float>& gamma,
                                 const std::vector<float>& beta) {
  const double n = double(row.size());
  double mean = 0, var = 0;
  for (double v : row) mean += v;
  mean /= n;
  for (double v : row) var += (v - mean) * (v - mean);
  const double inv = 1 / std::sqrt(var / n + 1e-12);
  std::vector<double> out(row.size());
  for (size_t c = 0; c < row.size(); ++c) out[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
  return out;
}

TEST_F(EncoderKernelTest, ResidualLayerNormMatchesDoublePrecision) {
  for (auto [rows, cols] : kShapes) {
    if (cols == 1) continue;  // a one-wide row normalises to beta alone
    auto x = Normal(rows * cols, 3.0f), y = Normal(rows * cols), bias = Normal(cols);
    auto gamma = Normal(cols), beta = Normal(cols);
    for (int form = 0; form < 3; ++form) {  // x + y + bias, x + y, x alone
      const float* yp = form < 2 ? y.data() : nullptr;
      const float* bp = form == 0 ? bias.data() : nullptr;
      auto out = x;
      kernels::ResidualLayerNorm(out.data(), yp, bp, gamma.data(), beta.data(), rows, cols, 1e-12f);
      for (size_t r = 0; r < rows; ++r) {
        std::vector<double> row(cols);
        for (size_t c = 0; c < cols; ++c)
          row[c] = double(x[r * cols + c]) + (yp ? yp[r * cols + c] : 0.0) + (bp ? bp[c] : 0.0);
        const auto want = RefLayerNorm(row, gamma, beta);
        for (size_t c = 0; c < cols; ++c) {
          ASSERT_NEAR(out[r * cols + c], want[c], 2e-5 * (1 + std::fabs(want[c])))
              << rows << "x" << cols << " form " << form;
        }
      }
    }
  }
}

TEST_F(EncoderKernelTest, ExpRowsMatchesDoublePrecisionAndLeavesThePaddingAlone) {
  for (auto [rows, cols] : kShapes) {
    const size_t ld = cols + 5;
    auto x = Normal(rows * ld, 4.0f);
    auto out = x;
    std::vector<float> inv_sum(rows);
    kernels::ExpRows(out.data(), rows, cols, ld, inv_sum.data());
    for (size_t r = 0; r < rows; ++r) {
      const float* in = &x[r * ld];
      const double mx = *std::max_element(in, in + cols);
      double sum = 0;
      for (size_t c = 0; c < cols; ++c) {
        const double want = std::exp(in[c] - mx);
        sum += want;
        // x - max is rounded to float first: half an ulp of up to ~40, 1e-6 relative in exp.
        ASSERT_NEAR(out[r * ld + c], want, 3e-6 * want + 1e-30) << rows << "x" << cols;
      }
      EXPECT_NEAR(inv_sum[r], 1 / sum, 3e-6 / sum);
      for (size_t c = cols; c < ld; ++c) ASSERT_EQ(out[r * ld + c], in[c]);  // past cols: untouched
    }
  }
}

TEST_F(EncoderKernelTest, QuantizeRowsIsWithinHalfAStep) {
  for (auto [rows, cols] : kShapes) {
    auto x = Normal(rows * cols, 2.0f);
    if (rows > 1) std::fill(x.begin(), x.begin() + cols, 0.0f);  // an all-zero row
    std::vector<uint8_t> q(rows * cols);
    std::vector<float> scales(rows);
    kernels::QuantizeRows(x.data(), rows, cols, q.data(), scales.data());
    for (size_t r = 0; r < rows; ++r) {
      float mx = 0;
      for (size_t c = 0; c < cols; ++c) mx = std::max(mx, std::fabs(x[r * cols + c]));
      EXPECT_FLOAT_EQ(scales[r], mx > 0 ? mx / 127 : 1.0f);
      for (size_t c = 0; c < cols; ++c) {
        const size_t i = r * cols + c;
        ASSERT_NEAR((int(q[i]) - 128) * double(scales[r]), x[i], scales[r] * 0.5001) << rows << "x" << cols;
      }
    }
  }
}

// The int8 GEMM's epilogues, from accumulators a GEMM of u8 (offset 128) by s8 would give.
TEST_F(EncoderKernelTest, DequantEpiloguesMatchDoublePrecision) {
  std::uniform_int_distribution<int32_t> acc_d(-400000, 400000);
  for (const auto& shape : kShapes) {
    const size_t rows = shape.first, cols = shape.second;  // not a structured binding: v captures it
    std::vector<int32_t> acc(rows * cols), offset(cols);
    for (auto& a : acc) a = acc_d(rng_);
    for (auto& o : offset) o = acc_d(rng_) / 4;
    auto row_scale = Normal(rows), col_scale = Normal(cols), bias = Normal(cols);
    for (auto& s : row_scale) s = 1e-3f * (1 + std::fabs(s));
    for (auto& s : col_scale) s = 1e-3f * (1 + std::fabs(s));
    const kernels::Int8Product p{acc.data(), row_scale.data(), col_scale.data(), offset.data()};
    auto v = [&](size_t r, size_t c) {
      return double(acc[r * cols + c] - offset[c]) * row_scale[r] * col_scale[c] + bias[c];
    };
    std::vector<float> plain(rows * cols), gelu(rows * cols), scales(rows);
    std::vector<uint8_t> q(rows * cols);
    kernels::DequantBias(p, rows, cols, bias.data(), plain.data());
    kernels::DequantBiasGelu(p, rows, cols, bias.data(), gelu.data());
    kernels::DequantBiasGeluQuantize(p, rows, cols, bias.data(), q.data(), scales.data());
    for (size_t r = 0; r < rows; ++r) {
      double mx = 0;
      for (size_t c = 0; c < cols; ++c) mx = std::max(mx, std::fabs(RefGelu(v(r, c))));
      EXPECT_NEAR(scales[r], mx > 0 ? mx / 127 : 1.0, 1e-5 * mx + 1e-12);
      for (size_t c = 0; c < cols; ++c) {
        const size_t i = r * cols + c;
        ASSERT_NEAR(plain[i], v(r, c), 1e-5 * (1 + std::fabs(v(r, c)))) << rows << "x" << cols;
        ASSERT_NEAR(gelu[i], RefGelu(v(r, c)), 1e-5 * (1 + std::fabs(v(r, c)))) << rows << "x" << cols;
        ASSERT_NEAR((int(q[i]) - 128) * double(scales[r]), RefGelu(v(r, c)), scales[r] * 0.51) << rows << "x" << cols;
      }
    }
    // The residual form: LayerNorm(x + v) * gamma + beta.
    if (cols == 1) continue;
    auto x = Normal(rows * cols), gamma = Normal(cols), beta = Normal(cols);
    auto out = x;
    kernels::DequantResidualLayerNorm(out.data(), p, bias.data(), gamma.data(), beta.data(), rows, cols, 1e-12f);
    for (size_t r = 0; r < rows; ++r) {
      std::vector<double> row(cols);
      for (size_t c = 0; c < cols; ++c) row[c] = x[r * cols + c] + v(r, c);
      const auto want = RefLayerNorm(row, gamma, beta);
      for (size_t c = 0; c < cols; ++c) {
        ASSERT_NEAR(out[r * cols + c], want[c], 2e-5 * (1 + std::fabs(want[c]))) << rows << "x" << cols;
      }
    }
  }
}

}  // namespace
}  // namespace contextd
