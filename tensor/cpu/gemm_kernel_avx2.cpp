// The AVX2+FMA GEMM micro-kernels (see gemm.h). Compiled with -mavx2 -mfma (CMake: files named
// *_avx2.cpp) and called only when the processor has both. This file uses no standard-library
// function, so the linker cannot pick one of its AVX2 copies for code that runs on older
// processors.
#include <immintrin.h>

#include "tensor/cpu/gemm.h"

namespace ember::cpu {

namespace {

// tile: a 6×16 tile of c in 12 ymm registers (of 16), two loads of b and six broadcasts of a
// feeding 12 FMAs per step.
constexpr int kMR = 6, kNR = 16;

// kRows: a read in place (row i at a + i·lda, see gemm.h's tile_rows), else packed (k×kMR).
template <bool kRows>
inline void tile_body(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, bool accumulate,
                      const float* bias) {
  const __m256 init0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 init1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) acc[i][0] = init0, acc[i][1] = init1;
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p, b += kNR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(kRows ? a + i * lda + p : a + p * kMR + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i, c += ldc) {
    if (accumulate) {
      acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(c));
      acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, acc[i][0]);
    _mm256_storeu_ps(c + 8, acc[i][1]);
  }
}

void tile_avx2(int64_t k, const float* a, const float* b, float* c, int64_t ldc, bool accumulate, const float* bias) {
  tile_body<false>(k, a, 0, b, c, ldc, accumulate, bias);
}
void tile_rows_avx2(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, bool accumulate,
                    const float* bias) {
  tile_body<true>(k, a, lda, b, c, ldc, accumulate, bias);
}

// dot: a 3×4 tile of c, 12 accumulators of 8 lanes along k (3 rows of a in registers, one row
// of b at a time: 16 ymm); the last k mod 8 values are summed in scalar. Rows and columns past
// the tile's edge read row 0 again and are not stored.
constexpr int kDR = 3, kDC = 4;

float sum_lanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void dot_avx2(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
              int cols, bool accumulate) {
  const float* ar[kDR];
  const float* br[kDC];
  for (int i = 0; i < kDR; ++i) ar[i] = a + (i < rows ? i : 0) * lda;
  for (int j = 0; j < kDC; ++j) br[j] = b + (j < cols ? j : 0) * ldb;
  __m256 s[kDR][kDC];
#pragma GCC unroll 3
  for (int i = 0; i < kDR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) s[i][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 av[kDR];
#pragma GCC unroll 3
    for (int i = 0; i < kDR; ++i) av[i] = _mm256_loadu_ps(ar[i] + p);
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) {
      const __m256 bv = _mm256_loadu_ps(br[j] + p);
#pragma GCC unroll 3
      for (int i = 0; i < kDR; ++i) s[i][j] = _mm256_fmadd_ps(av[i], bv, s[i][j]);
    }
  }
  // Sum every accumulator first (constant indices keep them in registers through the loop).
  float sums[kDR][kDC];
#pragma GCC unroll 3
  for (int i = 0; i < kDR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) sums[i][j] = sum_lanes(s[i][j]);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float v = sums[i][j];
      for (int64_t q = p; q < k; ++q) v += ar[i][q] * br[j][q];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
    }
}

}  // namespace

GemmKernel gemm_kernel_avx2() { return {CpuIsa::avx2, kMR, kNR, tile_avx2, tile_rows_avx2, kDR, kDC, dot_avx2}; }

}  // namespace ember::cpu
