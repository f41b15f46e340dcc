// The portable GEMM micro-kernels (see gemm.h): plain C++ that any compiler vectorizes for
// whatever the build targets. They are the readable statement of what the AVX2 and AVX-512
// kernels do, and the ones that run on processors without them.
#include "tensor/cpu/gemm.h"

namespace ember::cpu {

namespace {

constexpr int kMR = 4, kNR = 16;

// a(i, p) at a[i·ars + p·aps]: packed (ars 1, aps kMR) or in place (ars lda, aps 1).
void tile_strided(int64_t k, const float* a, int64_t ars, int64_t aps, const float* b, float* c, int64_t ldc,
                  bool accumulate, const float* bias) {
  float acc[kMR][kNR];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNR; ++j) acc[i][j] = bias ? bias[j] : 0.0f;
  for (int64_t p = 0; p < k; ++p, a += aps, b += kNR)
    for (int i = 0; i < kMR; ++i)
      for (int j = 0; j < kNR; ++j) acc[i][j] += a[i * ars] * b[j];
  for (int i = 0; i < kMR; ++i, c += ldc)
    for (int j = 0; j < kNR; ++j) c[j] = accumulate ? c[j] + acc[i][j] : acc[i][j];
}

void tile_portable(int64_t k, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                   const float* bias) {
  tile_strided(k, a, 1, kMR, b, c, ldc, accumulate, bias);
}
void tile_rows_portable(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                        bool accumulate, const float* bias) {
  tile_strided(k, a, lda, 1, b, c, ldc, accumulate, bias);
}

constexpr int kDR = 4, kDC = 4;

void dot_portable(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
                  int cols, bool accumulate) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float v = 0;
      for (int64_t p = 0; p < k; ++p) v += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
    }
}

}  // namespace

GemmKernel gemm_kernel_portable() { return {CpuIsa::portable, kMR, kNR, tile_portable, tile_rows_portable, kDR, kDC, dot_portable}; }

}  // namespace ember::cpu
