// Matrix products with NumPy semantics, and the fully connected layer on top of them.
//
//   matmul(a, b):  a (..., M, K) · b (..., K, N) -> (..., M, N)
//     out[β, i, j] = Σ_k a[β, i, k] · b[β, k, j]
//     Batch dims (the "..." β) broadcast like elementwise ops: (2, 1, 3, 4) · (5, 4, 6) -> (2, 5, 3, 6).
//     A 1-D a (K) is read as (1, K) and the 1 dropped from the result; a 1-D b (K) as (K, 1), likewise.
//     Gradients (g = dL/dout, shape (..., M, N)):
//       dL/da = g · bᵀ   (..., M, K)   summed over the batch dims a was broadcast along
//       dL/db = aᵀ · g   (..., K, N)   likewise
//
//   linear(x, w, bias):  x (..., in), w (out, in), bias (out) or undefined -> (..., out)
//     y = x · wᵀ + bias
//     dL/dx = g · w  (..., in),   dL/dw = gᵀ · x summed over all rows (out, in),
//     dL/dbias = g summed over all rows (out)
//
// Dtypes: f32 and f64 on the CPU; f32, f64, bf16 and f16 on CUDA (bf16/f16 accumulate in f32).
// Both operands share one dtype and device.
//
// CPU: Eigen's GEMM over Eigen::Map views. A matrix whose last two strides are (ld, 1)
// (row-major) or (1, ld) (column-major, e.g. x.t() or weight.t()) is read in place; any other
// layout is copied to contiguous first. A batch of products is split across threads with
// parallel_for, whole products per thread; one large product is split into bands of output
// rows (or columns), one single-threaded Eigen product per thread. (Eigen's own threading
// makes its threads wait on each other at every block step: as fast on an idle machine, but
// several times slower than the bands when other processes compete for the cores;
// docs/perf/matmul.md.)
// CUDA: hand-written kernels, numbered from naive to fast and each kept (see matmul_cuda.cu):
//   1  matmul_v1_naive            one thread per output element, operands from global memory
//   2  matmul_v2_smem_tiled       32×32 tiles staged in shared memory
//   3  matmul_v3_register_blocked 128×128 block tile, 8×8 outputs per thread, float4 loads
// picked by EMBER_MATMUL_KERNEL=1|2|3 or set_matmul_kernel (default 3), or cuBLAS, picked by
// EMBER_MATMUL=auto|native|cublas or set_matmul_backend:
//   auto (default)  cuBLAS with TF32 tensor-core math for f32 (inputs rounded to a 10-bit
//                   mantissa, f32 accumulation: relative error ~1e-3, as PyTorch with
//                   allow_tf32; EMBER_TF32=0 turns it off) and tensor cores for bf16/f16;
//                   chosen until a native kernel beats cuBLAS in bench_matmul
//   native          ember's kernels above, the readable references
//   cublas          cuBLAS with full f32 products (CUBLAS_COMPUTE_32F): the baseline
// A batch (..., M, K) is one launch or one cuBLAS call, also when its two batch dims do not
// chain (attention's (B, H) slices of qkv): cublasGemmStridedBatchedEx for one evenly strided
// run, cublasGemmBatchedEx over device-built pointer tables for a (outer, inner) batch.
// The bias of linear is added in the kernel's epilogue (native), preloaded into the output with
// beta = 1 (cuBLAS), or on the CPU by the micro-kernel, whose accumulators start from it
// (tensor/cpu/gemm.h).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ember {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

// ---- CUDA implementation choice (process-wide; read from the environment on first use) ----
enum class MatmulBackend { automatic, native, cublas };  // named "auto", "native", "cublas"
const char* matmul_backend_name(MatmulBackend backend);
MatmulBackend parse_matmul_backend(const char* value);  // nullptr or "" -> automatic; else throws naming EMBER_MATMUL
MatmulBackend matmul_backend();               // EMBER_MATMUL=auto|native|cublas, default auto
void set_matmul_backend(MatmulBackend backend);
// Whether EMBER_MATMUL=auto and EMBER_CONV=auto may run f32 products as TF32 on the tensor
// cores: EMBER_TF32=1 (default) or 0, or set_allow_tf32. The explicit cublas / cudnn choices
// never do. The test programs turn it off (tests/support/test_util.cpp) so that f32 results are
// compared at f32 precision; the TF32 paths have their own tests with TF32 bounds.
bool allow_tf32();
void set_allow_tf32(bool on);
int matmul_kernel();                          // EMBER_MATMUL_KERNEL=1|2|3, default 3
void set_matmul_kernel(int version);          // 1, 2 or 3; anything else throws
constexpr int kMatmulKernelCount = 3;

// What the CPU and CUDA kernels receive from matmul.cpp: a batch of products
//   out[β] (m, n) = a[β] (m, k) · b[β] (k, n) (+ bias (n) on every row)
// out is contiguous (batch, m, n). Matrix element (i, j) of an operand lives at
//   base + batch_offset + i · row_stride + j · col_stride,
// where one of row_stride / col_stride is 1 (row-major or column-major; `ld` is the other).
// Batches come in `outer.size()` groups of `inner` matrices with constant strides: batch
// (o, i), numbered o · inner + i, reads a at a_outer[o] + i · a_inner_stride (b likewise).
// cuBLAS takes one strided-batched call per group.
struct GemmOperand {
  bool col_major = false;  // false: (i, j) at i·ld + j; true: at i + j·ld
  int64_t ld = 0;
  int64_t row_stride() const { return col_major ? 1 : ld; }
  int64_t col_stride() const { return col_major ? ld : 1; }
};

struct GemmPlan {
  int64_t m = 0, n = 0, k = 0;
  GemmOperand a, b;
  std::vector<int64_t> a_outer, b_outer;  // element offsets, one per group
  int64_t inner = 1, a_inner_stride = 0, b_inner_stride = 0;
  int64_t batch() const { return static_cast<int64_t>(a_outer.size()) * inner; }
};

}  // namespace ember
