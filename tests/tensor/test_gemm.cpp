// cpu::gemm, ember's packed f32 GEMM: every micro-kernel this processor runs (portable, AVX2,
// AVX-512), on random data against a float64 loop written out here, over shapes that cross
// every block edge (partial tiles, k past one kc block, n past one nc block, m past one mc
// block), transposed operands (packed, read in place, and the a·bᵀ dot kernels) and
// accumulation; and the run-time choice (EMBER_CPU_ISA).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "tensor/cpu/gemm.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::cpu;

namespace {

struct Case {
  int64_t m, n, k;
  bool ta, tb, accumulate;
  bool bias = false;  // + bias (n) on every row
};

// c (m, n) stored with row stride ldc > n so that writes past a row's end would be seen.
void check_case(const Case& s, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // A row-major a has rows lda = k + 5 apart (a view into a wider matrix: read in place).
  const int64_t lda = s.k + 5;
  std::vector<float> a(s.ta ? s.m * s.k : s.m * lda), b(s.k * s.n);
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  const int64_t ldc = s.n + 3;
  std::vector<float> c(s.m * ldc);
  for (float& v : c) v = u(rng);
  const std::vector<float> c0 = c;
  // a is (m, k): stored row-major, or as its transpose (k, m) row-major when ta.
  MatrixView<float> av = s.ta ? MatrixView<float>{a.data(), 1, s.m} : MatrixView<float>{a.data(), lda, 1};
  MatrixView<float> bv = s.tb ? MatrixView<float>{b.data(), 1, s.k} : MatrixView<float>{b.data(), s.n, 1};
  std::vector<float> bias(s.n);
  for (float& v : bias) v = u(rng);
  gemm<float>(s.m, s.n, s.k, av, bv, c.data(), ldc, s.accumulate, s.bias ? bias.data() : nullptr);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const int64_t at = i * ldc + j;
      if (j >= s.n) {  // the padding between rows is never touched
        ASSERT_EQ(c[at], c0[at]) << "wrote past row " << i << "'s end at column " << j;
        continue;
      }
      double ref = (s.accumulate ? c0[at] : 0.0) + (s.bias ? bias[j] : 0.0);
      for (int64_t p = 0; p < s.k; ++p)
        ref += double(av.data[i * av.rs + p * av.cs]) * double(bv.data[p * bv.rs + j * bv.cs]);
      // f32 products summed over k: error grows like sqrt(k) · eps · |terms|.
      const double bound = 1e-5 * (1.0 + std::sqrt(double(s.k))) * (1.0 + std::fabs(ref));
      ASSERT_NEAR(c[at], ref, bound) << "at (" << i << ", " << j << ")";
    }
  }
}

const std::vector<Case> kCases = {
    {1, 1, 1, false, false, false},     {5, 7, 3, false, false, false},    {12, 32, 8, false, false, false},
    {13, 33, 9, false, false, true},    {6, 16, 300, false, false, false}, {37, 1100, 20, false, false, true},
    {200, 50, 17, false, false, false}, {25, 29, 513, true, false, false}, {31, 19, 40, false, true, true},
    {40, 70, 33, true, true, false},    {3, 2000, 5, false, true, false},  {197, 45, 260, true, false, true},
    {24, 576, 144, false, false, false}, {144, 24, 576, true, false, false}, {24, 144, 576, false, true, true},
    // a·bᵀ with a long k: the dot kernels, with k's tail past the last full vector and k past
    // one block of the dot loop
    {9, 10, 301, false, true, false},   {5, 7, 4500, false, true, true},   {13, 6, 257, false, true, true},
    // a row-major a read in place (tile_rows) beside a packed last partial panel, across mc and kc
    // blocks; a long k with a large output (packed, not the dot kernel) with b transposed
    {205, 70, 530, false, false, true}, {400, 64, 300, false, true, false}, {61, 35, 700, false, true, true},
    // + bias: in the micro-kernel (whole and edge tiles, several k blocks, in place and packed a),
    // and on the dot kernel's and k = 0's paths
    {205, 70, 530, false, false, false, true}, {37, 1100, 20, true, true, true, true},
    {13, 33, 9, false, true, false, true},     {5, 7, 4500, false, true, true, true},
    {9, 10, 301, false, true, false, true},    {4, 6, 0, false, false, false, true},
};

class GemmIsa : public ::testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override { saved_ = cpu_isa(); }
  void TearDown() override { set_cpu_isa(saved_); }
  CpuIsa saved_{};
};

TEST_P(GemmIsa, MatchesTheFloat64ReferenceAcrossEveryBlockEdge) {
  const auto supported = supported_isas();
  if (std::find(supported.begin(), supported.end(), GetParam()) == supported.end())
    GTEST_SKIP() << "this processor has no " << isa_name(GetParam());
  set_cpu_isa(GetParam());
  ASSERT_EQ(cpu_isa(), GetParam());
  std::mt19937 rng(7);
  for (const Case& s : kCases) {
    SCOPED_TRACE(std::string(isa_name(GetParam())) + " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                 " k=" + std::to_string(s.k) + (s.ta ? " aT" : "") + (s.tb ? " bT" : "") +
                 (s.accumulate ? " +=" : "") + (s.bias ? " +bias" : ""));
    check_case(s, rng);
  }
}

TEST_P(GemmIsa, ZeroDepthWritesZerosOrLeavesTheOutput) {
  const auto supported = supported_isas();
  if (std::find(supported.begin(), supported.end(), GetParam()) == supported.end())
    GTEST_SKIP() << "this processor has no " << isa_name(GetParam());
  set_cpu_isa(GetParam());
  std::vector<float> c(6, 5.0f);
  gemm<float>(2, 3, 0, {nullptr, 0, 1}, {nullptr, 3, 1}, c.data(), 3, true);
  EXPECT_EQ(c, std::vector<float>(6, 5.0f));
  gemm<float>(2, 3, 0, {nullptr, 0, 1}, {nullptr, 3, 1}, c.data(), 3, false);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

INSTANTIATE_TEST_SUITE_P(Kernels, GemmIsa, ::testing::Values(CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(Gemm, Float64MatchesTheReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  const int64_t m = 9, n = 11, k = 13;
  std::vector<double> a(m * k), b(k * n), c(m * n, 0.0);
  for (double& v : a) v = u(rng);
  for (double& v : b) v = u(rng);
  gemm<double>(m, n, k, {a.data(), 1, m}, {b.data(), n, 1}, c.data(), n, false);  // a stored transposed
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < k; ++p) ref += a[p * m + i] * b[p * n + j];
      EXPECT_NEAR(c[i * n + j], ref, 1e-12);
    }
  // + bias on every row, accumulated: c += a·b + bias
  std::vector<double> bias(n), c1 = c;
  for (double& v : bias) v = u(rng);
  gemm<double>(m, n, k, {a.data(), 1, m}, {b.data(), n, 1}, c1.data(), n, true, bias.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(c1[i * n + j], 2 * c[i * n + j] + bias[j], 1e-12);
}

TEST(Gemm, ThePortableKernelIsAlwaysSupportedAndTheBestIsChosen) {
  const auto supported = supported_isas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), CpuIsa::portable);
  if (!std::getenv("EMBER_CPU_ISA")) {
    EXPECT_EQ(cpu_isa(), supported.back());
  }
}

TEST(Gemm, KernelNamesAreParsedAndUnknownOrUnsupportedOnesRefused) {
  EXPECT_EQ(isa_from_name("portable"), CpuIsa::portable);
  EXPECT_NE(ember::testing::error_of([] { isa_from_name("avx9"); }).find("expected avx512, avx2 or portable"),
            std::string::npos);
  const auto supported = supported_isas();
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    if (std::find(supported.begin(), supported.end(), isa) != supported.end()) {
      EXPECT_EQ(isa_from_name(isa_name(isa)), isa);
    } else {
      EXPECT_NE(ember::testing::error_of([&] { set_cpu_isa(isa); }).find("does not support"), std::string::npos);
    }
  }
}

}  // namespace
