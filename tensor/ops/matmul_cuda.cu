// CUDA GEMM: three hand-written kernels, naive to fast, each kept and selectable, and cuBLAS
// as the baseline. All compute c (m, n) = a (m, k) · b (k, n) (+ bias (n)) for a strided
// batch of products in grid z; operands are row- or column-major (GemmOperand), the output
// row-major contiguous. bf16/f16 accumulate in f32, f64 in f64.
//
// Napkin math for one m×n×k product: 2mnk FLOPs; the naive kernel reads 2k values from
// global memory per output (2mnk loads), the tiled one 2mnk/32, the register-blocked one
// 2mnk/128 from global and 2mnk/8 from shared memory.
#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <vector>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/copy.h"
#include "tensor/ops/matmul_kernels.h"

#define EMBER_CUBLAS_CHECK(call)                                                                       \
  do {                                                                                                 \
    cublasStatus_t st_ = (call);                                                                       \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                  \
      throw ::ember::make_error("cuBLAS error in ", #call, " at ", __FILE__, ":", __LINE__, ": ",    \
                                cublasGetStatusString(st_));                                           \
  } while (0)

namespace ember::cuda {

namespace {

// What every kernel receives. Element (i, j) of a is a[i · a_rs + j · a_cs]; one of the two
// strides is 1 (a_col says which). Batch z reads a + z · a_batch, b + z · b_batch and
// writes c + z · m · n.
struct GemmArgs {
  int m, n, k;
  bool a_col, b_col;
  int64_t a_rs, a_cs, b_rs, b_cs;
  int64_t a_batch, b_batch;
};

// ---- v1: one thread per output element ----------------------------------------------------
// Every multiply-add reads both operands from global memory (the caches catch some reuse).
constexpr int kV1Block = 16;

template <class T>
__global__ void matmul_v1_naive(const T* a, const T* b, T* c, const T* bias, GemmArgs g) {
  using Acc = acc_t<T>;
  const int row = blockIdx.x * kV1Block + threadIdx.y;
  const int col = blockIdx.y * kV1Block + threadIdx.x;  // consecutive threads: consecutive columns
  if (row >= g.m || col >= g.n) return;
  a += blockIdx.z * g.a_batch;  // (m, k)
  b += blockIdx.z * g.b_batch;  // (k, n)
  c += blockIdx.z * int64_t(g.m) * g.n;  // (m, n)
  Acc acc = 0;
  for (int kk = 0; kk < g.k; ++kk)
    acc += static_cast<Acc>(a[row * g.a_rs + kk * g.a_cs]) * static_cast<Acc>(b[kk * g.b_rs + col * g.b_cs]);
  if (bias) acc += static_cast<Acc>(bias[col]);
  c[int64_t(row) * g.n + col] = convert<T>(acc);
}

// ---- v2: 32×32 tiles of a and b staged in shared memory ---------------------------------
// Each value loaded from global memory is used 32 times. Threads load along each operand's
// contiguous dim, so loads coalesce for both layouts; the +1 column avoids bank conflicts.
constexpr int kV2Tile = 32;

template <class T>
__global__ void matmul_v2_smem_tiled(const T* a, const T* b, T* c, const T* bias, GemmArgs g) {
  using Acc = acc_t<T>;
  __shared__ Acc as[kV2Tile][kV2Tile + 1];  // as[i][kk] = a(m0 + i, k0 + kk)
  __shared__ Acc bs[kV2Tile][kV2Tile + 1];  // bs[kk][j] = b(k0 + kk, n0 + j)
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int m0 = blockIdx.x * kV2Tile, n0 = blockIdx.y * kV2Tile;
  a += blockIdx.z * g.a_batch;
  b += blockIdx.z * g.b_batch;
  c += blockIdx.z * int64_t(g.m) * g.n;
  // This thread's element of each tile (row-major: x runs along the row; column-major: down it).
  const int ai = g.a_col ? tx : ty, ak = g.a_col ? ty : tx;
  const int bk = g.b_col ? tx : ty, bj = g.b_col ? ty : tx;
  Acc acc = 0;
  for (int k0 = 0; k0 < g.k; k0 += kV2Tile) {
    const int ar = m0 + ai, ac = k0 + ak, br = k0 + bk, bc = n0 + bj;
    as[ai][ak] = (ar < g.m && ac < g.k) ? static_cast<Acc>(a[ar * g.a_rs + ac * g.a_cs]) : Acc(0);
    bs[bk][bj] = (br < g.k && bc < g.n) ? static_cast<Acc>(b[br * g.b_rs + bc * g.b_cs]) : Acc(0);
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kV2Tile; ++kk) acc += as[ty][kk] * bs[kk][tx];
    __syncthreads();
  }
  const int row = m0 + ty, col = n0 + tx;
  if (row < g.m && col < g.n) {
    if (bias) acc += static_cast<Acc>(bias[col]);
    c[int64_t(row) * g.n + col] = convert<T>(acc);
  }
}

// ---- v3: 128×128 block tile, 8×8 outputs per thread ---------------------------------------
// 256 threads; each step stages a 128×8 slice of a and an 8×128 slice of b in shared memory
// (a transposed, so both are read along rows), then every thread does 8·8 multiply-adds per
// 8 + 8 shared loads, from registers. f32 operands whose contiguous dim and leading dim are
// multiples of 4 (and 16-byte aligned) are loaded with float4.
constexpr int kBM = 128, kBN = 128, kBK = 8, kTM = 8, kTN = 8;
constexpr int kV3Threads = (kBM / kTM) * (kBN / kTN);  // 256
constexpr int kV3Loads = kBM * kBK / kV3Threads;        // 4 elements per thread per operand
static_assert(kBM * kBK == kBN * kBK && kV3Loads == 4, "one float4 per thread per operand tile");

struct V3Vec {
  bool a, b, c;  // float4 loads of a, of b, float4 stores of c
};

// as[kk][i] = a(m0 + i, k0 + kk) for the (kBM × kBK) tile; zeros outside the matrix.
template <class T, class Acc>
__device__ __forceinline__ void v3_load_a(const T* a, const GemmArgs& g, bool vec, int m0, int k0,
                                          Acc (*as)[kBM]) {
  const int t = threadIdx.x;
  if constexpr (std::is_same_v<T, float>) {
    if (vec && !g.a_col) {  // row-major, k % 4 == 0: two threads per row, 4 consecutive k each
      const int i = t / 2, kk = (t % 2) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (m0 + i < g.m && k0 + kk < g.k) v = *reinterpret_cast<const float4*>(a + (m0 + i) * g.a_rs + k0 + kk);
      as[kk][i] = v.x;
      as[kk + 1][i] = v.y;
      as[kk + 2][i] = v.z;
      as[kk + 3][i] = v.w;
      return;
    }
    if (vec && g.a_col) {  // column-major, m % 4 == 0: 32 threads per tile column, 4 consecutive m each
      const int kk = t / 32, i = (t % 32) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (m0 + i < g.m && k0 + kk < g.k) v = *reinterpret_cast<const float4*>(a + m0 + i + (k0 + kk) * g.a_cs);
      as[kk][i] = v.x;
      as[kk][i + 1] = v.y;
      as[kk][i + 2] = v.z;
      as[kk][i + 3] = v.w;
      return;
    }
  }
#pragma unroll
  for (int r = 0; r < kV3Loads; ++r) {  // consecutive threads walk the contiguous dim
    const int e = t + r * kV3Threads;
    const int i = g.a_col ? e % kBM : e / kBK, kk = g.a_col ? e / kBM : e % kBK;
    const int row = m0 + i, col = k0 + kk;
    as[kk][i] = (row < g.m && col < g.k) ? static_cast<Acc>(a[row * g.a_rs + col * g.a_cs]) : Acc(0);
  }
}

// bs[kk][j] = b(k0 + kk, n0 + j) for the (kBK × kBN) tile; zeros outside the matrix.
template <class T, class Acc>
__device__ __forceinline__ void v3_load_b(const T* b, const GemmArgs& g, bool vec, int k0, int n0,
                                          Acc (*bs)[kBN]) {
  const int t = threadIdx.x;
  if constexpr (std::is_same_v<T, float>) {
    if (vec && !g.b_col) {  // row-major, n % 4 == 0: 32 threads per tile row, 4 consecutive n each
      const int kk = t / 32, j = (t % 32) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k0 + kk < g.k && n0 + j < g.n) v = *reinterpret_cast<const float4*>(b + (k0 + kk) * g.b_rs + n0 + j);
      bs[kk][j] = v.x;
      bs[kk][j + 1] = v.y;
      bs[kk][j + 2] = v.z;
      bs[kk][j + 3] = v.w;
      return;
    }
    if (vec && g.b_col) {  // column-major, k % 4 == 0: two threads per column, 4 consecutive k each
      const int j = t / 2, kk = (t % 2) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k0 + kk < g.k && n0 + j < g.n) v = *reinterpret_cast<const float4*>(b + k0 + kk + (n0 + j) * g.b_cs);
      bs[kk][j] = v.x;
      bs[kk + 1][j] = v.y;
      bs[kk + 2][j] = v.z;
      bs[kk + 3][j] = v.w;
      return;
    }
  }
#pragma unroll
  for (int r = 0; r < kV3Loads; ++r) {
    const int e = t + r * kV3Threads;
    const int kk = g.b_col ? e % kBK : e / kBN, j = g.b_col ? e / kBK : e % kBN;
    const int row = k0 + kk, col = n0 + j;
    bs[kk][j] = (row < g.k && col < g.n) ? static_cast<Acc>(b[row * g.b_rs + col * g.b_cs]) : Acc(0);
  }
}

template <class T>
__global__ void __launch_bounds__(kV3Threads)
    matmul_v3_register_blocked(const T* a, const T* b, T* c, const T* bias, GemmArgs g, V3Vec vec) {
  using Acc = acc_t<T>;
  __shared__ Acc as[kBK][kBM];  // a tile, transposed: as[kk][i]
  __shared__ Acc bs[kBK][kBN];  // b tile: bs[kk][j]
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
  const int ty = threadIdx.x / (kBN / kTN), tx = threadIdx.x % (kBN / kTN);  // 16 × 16 threads
  a += blockIdx.z * g.a_batch;
  b += blockIdx.z * g.b_batch;
  c += blockIdx.z * int64_t(g.m) * g.n;
  Acc acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0;

  for (int k0 = 0; k0 < g.k; k0 += kBK) {
    v3_load_a<T, Acc>(a, g, vec.a, m0, k0, as);
    v3_load_b<T, Acc>(b, g, vec.b, k0, n0, bs);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      Acc ra[kTM], rb[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) ra[i] = as[kk][ty * kTM + i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) rb[j] = bs[kk][tx * kTN + j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] += ra[i] * rb[j];
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int row = m0 + ty * kTM + i;
    if (row >= g.m) break;
#pragma unroll
    for (int j = 0; j < kTN; j += 4) {
      const int col = n0 + tx * kTN + j;
      Acc v[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) v[q] = acc[i][j + q] + (bias && col + q < g.n ? static_cast<Acc>(bias[col + q]) : Acc(0));
      T* dst = c + int64_t(row) * g.n + col;
      if constexpr (std::is_same_v<T, float>) {
        if (vec.c && col < g.n) {  // n % 4 == 0, so all four are inside
          *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
          continue;
        }
      }
#pragma unroll
      for (int q = 0; q < 4; ++q)
        if (col + q < g.n) dst[q] = convert<T>(v[q]);
    }
  }
}

// ---- launchers ------------------------------------------------------------------------------

constexpr int64_t kMaxGridZ = 65535;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Can operand x (rows × cols, layout l) be read with float4 along its contiguous dim?
bool float4_ok(const void* base, const GemmOperand& l, int64_t rows, int64_t cols, int64_t batch_stride) {
  const int64_t contiguous_len = l.col_major ? rows : cols;
  return aligned16(base) && l.ld % 4 == 0 && contiguous_len % 4 == 0 && batch_stride % 4 == 0;
}

template <class T>
void launch_native(int version, const GemmPlan& p, T* c, const T* a, const T* b, const T* bias, cudaStream_t stream) {
  GemmArgs g;
  g.m = static_cast<int>(p.m);
  g.n = static_cast<int>(p.n);
  g.k = static_cast<int>(p.k);
  g.a_col = p.a.col_major;
  g.b_col = p.b.col_major;
  g.a_rs = p.a.row_stride();
  g.a_cs = p.a.col_stride();
  g.b_rs = p.b.row_stride();
  g.b_cs = p.b.col_stride();
  g.a_batch = p.a_inner_stride;
  g.b_batch = p.b_inner_stride;
  const int64_t mn = p.m * p.n;
  for (size_t o = 0; o < p.a_outer.size(); ++o) {
    for (int64_t z0 = 0; z0 < p.inner; z0 += kMaxGridZ) {
      const unsigned zs = static_cast<unsigned>(std::min(kMaxGridZ, p.inner - z0));
      const T* ao = a + p.a_outer[o] + z0 * p.a_inner_stride;  // (zs, m, k) strided
      const T* bo = b + p.b_outer[o] + z0 * p.b_inner_stride;  // (zs, k, n) strided
      T* co = c + (static_cast<int64_t>(o) * p.inner + z0) * mn;  // (zs, m, n)
      if (version == 1) {
        dim3 grid(ceil_div(p.m, kV1Block), ceil_div(p.n, kV1Block), zs), block(kV1Block, kV1Block);
        EMBER_CHECK(grid.y <= 65535, "matmul v1: n = ", p.n, " too large for the grid");
        matmul_v1_naive<T><<<grid, block, 0, stream>>>(ao, bo, co, bias, g);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v1_naive");
      } else if (version == 2) {
        dim3 grid(ceil_div(p.m, kV2Tile), ceil_div(p.n, kV2Tile), zs), block(kV2Tile, kV2Tile);
        EMBER_CHECK(grid.y <= 65535, "matmul v2: n = ", p.n, " too large for the grid");
        matmul_v2_smem_tiled<T><<<grid, block, 0, stream>>>(ao, bo, co, bias, g);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v2_smem_tiled");
      } else {
        dim3 grid(ceil_div(p.m, kBM), ceil_div(p.n, kBN), zs), block(kV3Threads);
        EMBER_CHECK(grid.y <= 65535, "matmul v3: n = ", p.n, " too large for the grid");
        V3Vec vec{false, false, false};
        if (std::is_same_v<T, float>) {
          vec.a = float4_ok(ao, p.a, p.m, p.k, p.a_inner_stride);
          vec.b = float4_ok(bo, p.b, p.k, p.n, p.b_inner_stride);
          vec.c = aligned16(co) && p.n % 4 == 0;
        }
        matmul_v3_register_blocked<T><<<grid, block, 0, stream>>>(ao, bo, co, bias, g, vec);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v3_register_blocked");
      }
    }
  }
}

// One cuBLAS handle per device, created on first use and kept for the life of the process
// (destroying it at exit would race the CUDA runtime's own teardown). Calls hold the lock
// while they bind the handle to the current stream and enqueue.
struct CublasHandles {
  std::mutex mu;
  std::vector<cublasHandle_t> handles;
};
CublasHandles& cublas_handles() {
  static CublasHandles h;
  return h;
}

template <class T>
struct CublasTypes;
template <>
struct CublasTypes<float> {
  static constexpr cudaDataType_t data = CUDA_R_32F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  using Scalar = float;
};
template <>
struct CublasTypes<double> {
  static constexpr cudaDataType_t data = CUDA_R_64F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
  using Scalar = double;
};
template <>
struct CublasTypes<ember::bf16> {
  static constexpr cudaDataType_t data = CUDA_R_16BF;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  using Scalar = float;
};
template <>
struct CublasTypes<ember::f16> {
  static constexpr cudaDataType_t data = CUDA_R_16F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  using Scalar = float;
};

// cuBLAS is column-major: the row-major c (m, n) is the column-major cᵀ (n, m) = bᵀ · aᵀ.
// A row-major operand read column-major is already its transpose (CUBLAS_OP_N); a
// column-major one needs CUBLAS_OP_T. c holds the bias already when beta = 1.
template <class T>
void launch_cublas(const GemmPlan& p, T* c, const T* a, const T* b, bool beta_one, cudaStream_t stream) {
  using Types = CublasTypes<T>;
  const typename Types::Scalar alpha = 1, beta = beta_one ? 1 : 0;
  const cublasOperation_t op_b = p.b.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = p.a.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  auto& h = cublas_handles();
  std::lock_guard<std::mutex> lock(h.mu);
  const int device = current_device();
  if (h.handles.size() <= static_cast<size_t>(device)) h.handles.resize(device + 1, nullptr);
  if (!h.handles[device]) EMBER_CUBLAS_CHECK(cublasCreate(&h.handles[device]));
  cublasHandle_t handle = h.handles[device];
  EMBER_CUBLAS_CHECK(cublasSetStream(handle, stream));
  const int64_t mn = p.m * p.n;
  for (size_t o = 0; o < p.a_outer.size(); ++o) {
    for (int64_t z0 = 0; z0 < p.inner; z0 += kMaxGridZ) {
      const int zs = static_cast<int>(std::min(kMaxGridZ, p.inner - z0));
      const T* ao = a + p.a_outer[o] + z0 * p.a_inner_stride;
      const T* bo = b + p.b_outer[o] + z0 * p.b_inner_stride;
      T* co = c + (static_cast<int64_t>(o) * p.inner + z0) * mn;
      EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          handle, op_b, op_a, static_cast<int>(p.n), static_cast<int>(p.m), static_cast<int>(p.k), &alpha,
          bo, Types::data, static_cast<int>(p.b.ld), p.b_inner_stride,  //
          ao, Types::data, static_cast<int>(p.a.ld), p.a_inner_stride,  //
          &beta, co, Types::data, static_cast<int>(p.n), mn, zs, Types::compute, CUBLAS_GEMM_DEFAULT));
    }
  }
}

}  // namespace

void gemm(const GemmPlan& p, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  for (int64_t v : {p.m, p.n, p.k, p.a.ld, p.b.ld})
    EMBER_CHECK(v <= INT_MAX, "matmul: size ", v, " exceeds the CUDA kernels' 32-bit index range");
  cudaStream_t stream = stream_of(current_stream());
  const MatmulBackend backend = matmul_backend();
  const int version = matmul_kernel();
  dispatch_all_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    T* c = static_cast<T*>(out.data_ptr());              // (batch, m, n)
    const T* pa = static_cast<const T*>(a.data_ptr());   // strided, see GemmPlan
    const T* pb = static_cast<const T*>(b.data_ptr());
    const T* pbias = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;  // (n)
    if (backend == MatmulBackend::cublas) {
      if (pbias) copy_into(out, bias);  // every row starts as the bias; cuBLAS adds the product (beta = 1)
      launch_cublas<T>(p, c, pa, pb, pbias != nullptr, stream);
    } else {
      launch_native<T>(version, p, c, pa, pb, pbias, stream);
    }
  });
}

}  // namespace ember::cuda
