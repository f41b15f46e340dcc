// CPU GEMM, the one place every CPU matrix product goes through (matmul, linear, the dense and
// 1×1 convolutions): c (m, n) = a (m, k) · b (k, n), or c += a · b.
//
// f32 runs ember's own packed GEMM (gemm.cpp): the operands are copied into cache-sized blocks
// laid out the way the register-blocked micro-kernel reads them (BLIS's loop order: a kc×NR panel
// of b stays in L1, an mc×kc block of a in L2), and the micro-kernel keeps an MR×NR tile of c in
// vector registers for the whole k loop — MR broadcasts of a and NR/W loads of b feed MR·NR/W
// FMAs per step. The micro-kernel is written three times (gemm_kernel_*.cpp: AVX-512, AVX2+FMA
// and portable C++), each file compiled for its instruction set, and chosen at run time by the
// processor's features: one build uses AVX-512 where the processor has it. (The rest of the
// library is compiled for AVX2 by default, EMBER_AVX2; built with EMBER_AVX2=OFF it runs on any
// x86-64, the portable kernel with it.) EMBER_CPU_ISA=avx512|avx2|portable forces one (for tests
// and benchmarks; asking for one the processor lacks is an error). f64 (the reference dtype of
// the tests) runs Eigen's product.
//
// Single-threaded: callers split the work (whole products per thread, or panels of one).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::cpu {

// A strided matrix: element (i, j) at data[i·rs + j·cs]. Row-major (m, k) is {p, k, 1}; its
// transpose is {p, 1, k}.
template <class T>
struct MatrixView {
  const T* data;
  int64_t rs, cs;
};

// With bias (n values, or null) it is added to every row: c = a·b + bias, or c += a·b + bias. The
// f32 kernels start their accumulators from it, so it costs no pass over c (preloading c with the
// bias and accumulating onto it wrote and read the whole output once more: 9.6 MB per ViT qkv).
template <class T>
void gemm(int64_t m, int64_t n, int64_t k, MatrixView<T> a, MatrixView<T> b, T* c, int64_t ldc, bool accumulate,
          const T* bias = nullptr);

// The micro-kernel variants, in order of preference, and the one in use.
enum class CpuIsa { portable, avx2, avx512 };
const char* isa_name(CpuIsa isa);
std::vector<CpuIsa> supported_isas();  // those this processor runs, portable first
CpuIsa isa_from_name(const std::string& name);  // throws for an unknown name or one this processor lacks
// The one in use by every per-ISA kernel (the GEMM's, depthwise_kernel.h's): EMBER_CPU_ISA or the
// best supported.
CpuIsa cpu_isa();
void set_cpu_isa(CpuIsa isa);  // for tests and benchmarks; throws when the processor lacks it

// The micro-kernels of one instruction set.
//  tile: c (mr×nr, rows ldc apart) = or += a·b (+ bias, nr values added to every row, when not
//        null) over k steps, where a is packed k×mr (the mr values of column p of the tile's rows
//        at a + p·mr) and b packed k×nr, both 64-byte aligned.
//  dot:  c (rows×cols ≤ dr×dc) = or += a·bᵀ for a (rows, k) and b (cols, k) whose k runs
//        contiguous in both (rows lda and ldb apart): vector accumulators along k, summed
//        across lanes at the end. This is the form of a weight gradient (dw = g·xᵀ summed over
//        thousands of positions into a small matrix), where packing would copy far more than the
//        GEMM reuses.
//  tile_rows: the same tile with a read in place, not packed: row i of the tile's a at a + i·lda,
//        its k values contiguous (a row-major a: the activations of a linear layer). Packing such
//        an a is a transpose of every panel, a scalar gather that took a third of the GEMM's time
//        at ViT's shapes (k = 192, n = 192: each panel is reused for only a few panels of b).
struct GemmKernel {
  CpuIsa isa;
  int mr, nr;
  void (*tile)(int64_t k, const float* a, const float* b, float* c, int64_t ldc, bool accumulate, const float* bias);
  void (*tile_rows)(int64_t k, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, bool accumulate,
                    const float* bias);
  int dr, dc;
  void (*dot)(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
              int cols, bool accumulate);
};
GemmKernel gemm_kernel_portable();
GemmKernel gemm_kernel_avx2();    // defined only in x86-64 builds
GemmKernel gemm_kernel_avx512();  // defined only in x86-64 builds
// The kernels of `isa` (of the portable set where the build has no x86-64 kernels); for
// benchmarks of one kernel, and what set_cpu_isa installs.
GemmKernel gemm_kernel(CpuIsa isa);

}  // namespace ember::cpu
