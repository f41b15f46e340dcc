// The AVX-512 GEMM micro-kernels (see gemm.h). Compiled with -mavx512f (CMake: files named
// *_avx512.cpp) and called only when the processor has AVX-512F. This file uses no standard-
// library function, so the linker cannot pick one of its AVX-512 copies for code that runs on
// older processors.
#include <immintrin.h>

// GCC 12's AVX-512 headers leave lanes "undefined" on purpose in some intrinsics and then warn
// about them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "tensor/cpu/gemm.h"

namespace ember::cpu {

namespace {

// tile: a 12×32 tile of c in 24 zmm registers. Each step p loads the 32 values of b's row p (two
// zmm), broadcasts each of a's 12 values in turn and issues 24 FMAs; 24 independent accumulators
// hide the FMA latency (4 cycles) on both FMA ports.
constexpr int kMR = 12, kNR = 32;

// kRows: a read in place (row i at a + i·lda, see gemm.h's tile_rows), else packed (k×kMR).
template <bool kRows>
inline void tile_body(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, bool accumulate,
                      const float* bias) {
  const __m512 init0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 init1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int i = 0; i < kMR; ++i) acc[i][0] = init0, acc[i][1] = init1;
  // In place, rows 0–5 and 6–11 of a from two base pointers at offsets 0, lda, …, 5·lda.
  const float* a6 = a + 6 * lda;
  for (int64_t p = 0; p < k; ++p, b += kNR) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(kRows ? (i < 6 ? a[i * lda + p] : a6[(i - 6) * lda + p]) : a[p * kMR + i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < kMR; ++i, c += ldc) {
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(c));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(c + 16));
    }
    _mm512_storeu_ps(c, acc[i][0]);
    _mm512_storeu_ps(c + 16, acc[i][1]);
  }
}

void tile_avx512(int64_t k, const float* a, const float* b, float* c, int64_t ldc, bool accumulate, const float* bias) {
  tile_body<false>(k, a, 0, b, c, ldc, accumulate, bias);
}
void tile_rows_avx512(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, bool accumulate,
                      const float* bias) {
  tile_body<true>(k, a, lda, b, c, ldc, accumulate, bias);
}

// dot: a 4×4 tile of c, 16 accumulators of 16 lanes along k. Each step loads 16 values from each
// of the 4 rows of a and 4 of b (8 loads for 16 FMAs: the two load ports keep both FMA ports
// busy); the last k mod 16 values go through masked loads. Rows and columns past the tile's
// edge read row 0 again and are not stored.
constexpr int kDR = 4, kDC = 4;

// The sum of v's 16 lanes: fold the 128-bit quarters onto each other, then the 4 lanes left.
// (_mm512_reduce_add_ps does the same; GCC 12's version of it warns about its own temporaries.)
float sum_lanes(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // quarters (2, 3, 0, 1)
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));  // quarters (1, 0, 3, 2)
  __m128 s = _mm512_castps512_ps128(v);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void dot_avx512(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
                int cols, bool accumulate) {
  const float* ar[kDR];
  const float* br[kDC];
  for (int i = 0; i < kDR; ++i) ar[i] = a + (i < rows ? i : 0) * lda;
  for (int j = 0; j < kDC; ++j) br[j] = b + (j < cols ? j : 0) * ldb;
  __m512 s[kDR][kDC];
#pragma GCC unroll 4
  for (int i = 0; i < kDR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) s[i][j] = _mm512_setzero_ps();
  auto step = [&](int64_t p, __mmask16 mask) {
    __m512 av[kDR];
#pragma GCC unroll 4
    for (int i = 0; i < kDR; ++i) av[i] = _mm512_maskz_loadu_ps(mask, ar[i] + p);
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) {
      const __m512 bv = _mm512_maskz_loadu_ps(mask, br[j] + p);
#pragma GCC unroll 4
      for (int i = 0; i < kDR; ++i) s[i][j] = _mm512_fmadd_ps(av[i], bv, s[i][j]);
    }
  };
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) step(p, 0xFFFF);
  if (p < k) step(p, static_cast<__mmask16>((1u << (k - p)) - 1));
  // Sum every accumulator first (constant indices keep them in registers through the loop).
  float sums[kDR][kDC];
#pragma GCC unroll 4
  for (int i = 0; i < kDR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kDC; ++j) sums[i][j] = sum_lanes(s[i][j]);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + sums[i][j] : sums[i][j];
}

}  // namespace

GemmKernel gemm_kernel_avx512() { return {CpuIsa::avx512, kMR, kNR, tile_avx512, tile_rows_avx512, kDR, kDC, dot_avx512}; }

}  // namespace ember::cpu
