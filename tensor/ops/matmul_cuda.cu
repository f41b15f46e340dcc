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
// strides is 1 (a_col says which). The batch is two-level, (outer, inner): product
// z = z0 + blockIdx.z, that is (o, i) = (z / inner, z % inner), reads
// a + o · a_outer + i · a_batch (b likewise) and writes c + z · m · n. So a (B, H) batch whose
// strides do not chain, as attention's q (B, H, N, d) sliced from qkv, is still one launch.
struct GemmArgs {
  int m, n, k;
  bool a_col, b_col;
  int64_t a_rs, a_cs, b_rs, b_cs;
  int64_t a_batch, b_batch;  // inner strides
  int64_t a_outer, b_outer;  // outer strides
  int64_t inner;             // products per outer step (>= 1)
  int64_t z0;                // first product of this launch (grid z is at most 65535)
};

// Moves a, b, c to this block's product.
template <class T>
__device__ __forceinline__ void to_product(const GemmArgs& g, const T*& a, const T*& b, T*& c) {
  const int64_t z = g.z0 + blockIdx.z;
  const int64_t o = z / g.inner, i = z - o * g.inner;
  a += o * g.a_outer + i * g.a_batch;  // (m, k)
  b += o * g.b_outer + i * g.b_batch;  // (k, n)
  c += z * int64_t(g.m) * g.n;         // (m, n)
}

// ---- v1: one thread per output element ----------------------------------------------------
// Every multiply-add reads both operands from global memory (the caches catch some reuse).
constexpr int kV1Block = 16;

template <class T>
__global__ void matmul_v1_naive(const T* a, const T* b, T* c, const T* bias, GemmArgs g) {
  using Acc = acc_t<T>;
  const int row = blockIdx.x * kV1Block + threadIdx.y;
  const int col = blockIdx.y * kV1Block + threadIdx.x;  // consecutive threads: consecutive columns
  if (row >= g.m || col >= g.n) return;
  to_product(g, a, b, c);
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
  to_product(g, a, b, c);
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
  to_product(g, a, b, c);
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

// The plan's products as runs of (outer × inner) with constant strides: one run when the
// groups' offsets step evenly (every batch of at most two non-chaining dims, e.g. (B, H)),
// else one run per group.
struct BatchRun {
  int64_t a_base, b_base;  // element offsets of the run's first product
  int64_t first;           // its index among all products (c is written at first · m · n)
  int64_t outer;           // groups in the run
  int64_t a_outer, b_outer;  // strides between groups
};

std::vector<BatchRun> batch_runs(const GemmPlan& p) {
  const size_t groups = p.a_outer.size();
  bool even = groups >= 2;
  const int64_t da = groups >= 2 ? p.a_outer[1] - p.a_outer[0] : 0;
  const int64_t db = groups >= 2 ? p.b_outer[1] - p.b_outer[0] : 0;
  for (size_t o = 1; even && o < groups; ++o)
    even = p.a_outer[o] - p.a_outer[o - 1] == da && p.b_outer[o] - p.b_outer[o - 1] == db;
  if (groups <= 1 || even)
    return {BatchRun{p.a_outer[0], p.b_outer[0], 0, static_cast<int64_t>(groups), da, db}};
  std::vector<BatchRun> runs;
  for (size_t o = 0; o < groups; ++o)
    runs.push_back({p.a_outer[o], p.b_outer[o], static_cast<int64_t>(o) * p.inner, 1, 0, 0});
  return runs;
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
  g.inner = p.inner;
  const int64_t mn = p.m * p.n;
  for (const BatchRun& run : batch_runs(p)) {
    g.a_outer = run.a_outer;
    g.b_outer = run.b_outer;
    const T* ar = a + run.a_base;      // (outer, inner, m, k) strided
    const T* br = b + run.b_base;      // (outer, inner, k, n) strided
    T* cr = c + run.first * mn;        // (outer · inner, m, n)
    const int64_t products = run.outer * p.inner;
    for (int64_t z0 = 0; z0 < products; z0 += kMaxGridZ) {  // grid z holds at most 65535
      const unsigned zs = static_cast<unsigned>(std::min(kMaxGridZ, products - z0));
      g.z0 = z0;
      if (version == 1) {
        dim3 grid(ceil_div(p.m, kV1Block), ceil_div(p.n, kV1Block), zs), block(kV1Block, kV1Block);
        EMBER_CHECK(grid.y <= 65535, "matmul v1: n = ", p.n, " too large for the grid");
        matmul_v1_naive<T><<<grid, block, 0, stream>>>(ar, br, cr, bias, g);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v1_naive");
      } else if (version == 2) {
        dim3 grid(ceil_div(p.m, kV2Tile), ceil_div(p.n, kV2Tile), zs), block(kV2Tile, kV2Tile);
        EMBER_CHECK(grid.y <= 65535, "matmul v2: n = ", p.n, " too large for the grid");
        matmul_v2_smem_tiled<T><<<grid, block, 0, stream>>>(ar, br, cr, bias, g);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v2_smem_tiled");
      } else {
        dim3 grid(ceil_div(p.m, kBM), ceil_div(p.n, kBN), zs), block(kV3Threads);
        EMBER_CHECK(grid.y <= 65535, "matmul v3: n = ", p.n, " too large for the grid");
        V3Vec vec{false, false, false};
        if (std::is_same_v<T, float>) {  // every product's base must be 16-byte aligned
          vec.a = float4_ok(ar, p.a, p.m, p.k, p.a_inner_stride) && run.a_outer % 4 == 0;
          vec.b = float4_ok(br, p.b, p.k, p.n, p.b_inner_stride) && run.b_outer % 4 == 0;
          vec.c = aligned16(cr) && p.n % 4 == 0;
        }
        matmul_v3_register_blocked<T><<<grid, block, 0, stream>>>(ar, br, cr, bias, g, vec);
        EMBER_CUDA_CHECK_LAUNCH("matmul_v3_register_blocked");
      }
    }
  }
}

// Fills the pointer tables of cublasGemmBatchedEx for a two-level run, on the device (no
// host-to-device copy): product z = (o, i) reads a + o·a_outer + i·a_inner, likewise b, and
// writes c + z·mn.
template <class T>
__global__ void gemm_pointer_table_kernel(const T* a, const T* b, T* c, const void** pa, const void** pb, void** pc,
                                          int64_t count, int64_t inner, int64_t a_outer, int64_t a_inner,
                                          int64_t b_outer, int64_t b_inner, int64_t mn) {
  for (int64_t z = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; z < count; z += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = z / inner, i = z - o * inner;
    pa[z] = a + o * a_outer + i * a_inner;
    pb[z] = b + o * b_outer + i * b_inner;
    pc[z] = c + z * mn;
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
// column-major one needs CUBLAS_OP_T. c holds the bias already when beta = 1. A run of one
// group is one cublasGemmStridedBatchedEx; a run of several groups (a (B, H) batch whose
// strides do not chain) is one cublasGemmBatchedEx over pointer tables built on the device.
// tf32: f32 products on the tensor cores with TF32 inputs (10-bit mantissa), f32 accumulation.
template <class T>
void launch_cublas(const GemmPlan& p, T* c, const T* a, const T* b, bool beta_one, bool tf32, cudaStream_t stream) {
  using Types = CublasTypes<T>;
  const typename Types::Scalar alpha = 1, beta = beta_one ? 1 : 0;
  const cublasComputeType_t compute =
      std::is_same_v<T, float> && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : Types::compute;
  const cublasOperation_t op_b = p.b.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = p.a.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  const int lda = static_cast<int>(p.a.ld), ldb = static_cast<int>(p.b.ld);
  const int64_t mn = p.m * p.n;
  const std::vector<BatchRun> runs = batch_runs(p);
  auto& h = cublas_handles();
  std::lock_guard<std::mutex> lock(h.mu);
  const int device = current_device();
  if (h.handles.size() <= static_cast<size_t>(device)) h.handles.resize(device + 1, nullptr);
  if (!h.handles[device]) EMBER_CUBLAS_CHECK(cublasCreate(&h.handles[device]));
  cublasHandle_t handle = h.handles[device];
  EMBER_CUBLAS_CHECK(cublasSetStream(handle, stream));
  for (const BatchRun& run : runs) {
    const T* ar = a + run.a_base;
    const T* br = b + run.b_base;
    T* cr = c + run.first * mn;
    if (run.outer == 1) {
      for (int64_t z0 = 0; z0 < p.inner; z0 += kMaxGridZ) {
        const int zs = static_cast<int>(std::min(kMaxGridZ, p.inner - z0));
        EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            handle, op_b, op_a, n, m, k, &alpha,                                       //
            br + z0 * p.b_inner_stride, Types::data, ldb, p.b_inner_stride,             //
            ar + z0 * p.a_inner_stride, Types::data, lda, p.a_inner_stride,             //
            &beta, cr + z0 * mn, Types::data, n, mn, zs, compute, CUBLAS_GEMM_DEFAULT));
      }
      continue;
    }
    const int64_t count = run.outer * p.inner;
    EMBER_CHECK(count <= INT_MAX, "matmul: ", count, " products exceed cuBLAS's batch count range");
    Tensor table = empty({3 * count}, DType::i64, Device::cuda(device));  // (3, count) pointers: a, b, c
    auto** pa = static_cast<const void**>(table.data_ptr());
    const void** pb = pa + count;
    void** pc = const_cast<void**>(pb + count);
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<int64_t>((count + threads - 1) / threads, 4096));
    gemm_pointer_table_kernel<T><<<blocks, threads, 0, stream>>>(ar, br, cr, pa, pb, pc, count, p.inner, run.a_outer,
                                                                p.a_inner_stride, run.b_outer, p.b_inner_stride, mn);
    EMBER_CUDA_CHECK_LAUNCH("gemm_pointer_table_kernel");
    // The table returns to the caching allocator when `table` goes out of scope; a later
    // allocation on this stream is ordered after the GEMM that reads it.
    EMBER_CUBLAS_CHECK(cublasGemmBatchedEx(handle, op_b, op_a, n, m, k, &alpha,  //
                                           pb, Types::data, ldb,                 //
                                           pa, Types::data, lda,                 //
                                           &beta, pc, Types::data, n, static_cast<int>(count), compute,
                                           CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace

void gemm(const GemmPlan& p, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  for (int64_t v : {p.m, p.n, p.k, p.a.ld, p.b.ld})
    EMBER_CHECK(v <= INT_MAX, "matmul: size ", v, " exceeds the CUDA kernels' 32-bit index range");
  cudaStream_t stream = stream_of(current_stream());
  // auto: cuBLAS, with TF32 for f32 unless EMBER_TF32=0 (no native kernel beats cuBLAS yet);
  // cublas: cuBLAS with full f32 products, the baseline the native kernels are measured against.
  const MatmulBackend backend = matmul_backend();
  const bool use_cublas = backend != MatmulBackend::native;
  const bool tf32 = backend == MatmulBackend::automatic && allow_tf32();
  const int version = matmul_kernel();
  dispatch_all_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    T* c = static_cast<T*>(out.data_ptr());              // (batch, m, n)
    const T* pa = static_cast<const T*>(a.data_ptr());   // strided, see GemmPlan
    const T* pb = static_cast<const T*>(b.data_ptr());
    const T* pbias = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;  // (n)
    if (use_cublas) {
      if (pbias) copy_into(out, bias);  // every row starts as the bias; cuBLAS adds the product (beta = 1)
      launch_cublas<T>(p, c, pa, pb, pbias != nullptr, tf32, stream);
    } else {
      launch_native<T>(version, p, c, pa, pb, pbias, stream);
    }
  });
}

}  // namespace ember::cuda
