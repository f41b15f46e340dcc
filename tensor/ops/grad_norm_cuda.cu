// CUDA sum_of_squares and clip_by_norm_: a table of chunks (pointer, length, dtype) passed in the
// launch's arguments, one block per chunk, so many small gradients cost one launch and nothing is
// uploaded. Sums are per chunk in double (a tree over the block), written to a partials buffer,
// then added in order by one block: deterministic, and no atomics.
#include <cmath>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/grad_norm_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int kChunksPerLaunch = 120;  // 120 · 24 bytes of table: within the 4 KB of launch arguments

struct Chunk {
  void* ptr;
  int64_t n;
  int dtype;  // DType
};
struct ChunkTable {
  Chunk c[kChunksPerLaunch];
  int count;
};

std::vector<Chunk> chunks_of(const std::vector<Tensor>& tensors) {
  std::vector<Chunk> out;
  for (const Tensor& t : tensors) {
    char* base = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kNormChunk)
      out.push_back({base + off * static_cast<int64_t>(t.itemsize()), std::min(kNormChunk, t.numel() - off),
                     static_cast<int>(t.dtype())});
  }
  return out;
}

__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warps[kBlock / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warps[warp] = v;
  __syncthreads();
  v = threadIdx.x < kBlock / 32 ? warps[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // in thread 0
}

template <class T>
__device__ double chunk_sum_of_squares(const void* p, int64_t n) {
  const T* x = static_cast<const T*>(p);
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = convert<double>(x[i]);
    s += v * v;
  }
  return s;
}

// partials[first + k] = Σ x² over chunk k of the table.
__global__ void sum_of_squares_kernel(ChunkTable table, double* partials, int64_t first) {
  const Chunk c = table.c[blockIdx.x];
  double s = 0;
  switch (static_cast<DType>(c.dtype)) {
    case DType::f32: s = chunk_sum_of_squares<float>(c.ptr, c.n); break;
    case DType::f64: s = chunk_sum_of_squares<double>(c.ptr, c.n); break;
    case DType::bf16: s = chunk_sum_of_squares<ember::bf16>(c.ptr, c.n); break;
    case DType::f16: s = chunk_sum_of_squares<ember::f16>(c.ptr, c.n); break;
    default: break;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partials[first + blockIdx.x] = s;
}

// out[0] = Σ partials, each thread over a fixed stride, then the block's tree: the same order
// every run.
__global__ void sum_partials_kernel(const double* partials, int64_t n, double* out) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partials[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = s;
}

template <class T>
__device__ void chunk_scale(void* p, int64_t n, double coef) {
  using A = acc_t<T>;
  T* x = static_cast<T*>(p);
  const A c = convert<A>(convert<T>(coef));  // the factor in the tensor's dtype, as mul_ would use it
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[i] = convert<T>(convert<A>(x[i]) * c);
}

__global__ void clip_by_norm_kernel(ChunkTable table, const double* sum_sq, double max_norm) {
  const double ss = *sum_sq;
  if (!isfinite(ss)) return;
  const double coef = max_norm / (sqrt(ss) + 1e-6);
  if (!(coef < 1.0)) return;
  const Chunk c = table.c[blockIdx.x];
  switch (static_cast<DType>(c.dtype)) {
    case DType::f32: chunk_scale<float>(c.ptr, c.n, coef); break;
    case DType::f64: chunk_scale<double>(c.ptr, c.n, coef); break;
    case DType::bf16: chunk_scale<ember::bf16>(c.ptr, c.n, coef); break;
    case DType::f16: chunk_scale<ember::f16>(c.ptr, c.n, coef); break;
    default: break;
  }
}

// Calls launch(table, first) for each run of up to kChunksPerLaunch chunks.
template <class Launch>
void for_each_table(const std::vector<Chunk>& chunks, Launch&& launch) {
  for (size_t first = 0; first < chunks.size(); first += kChunksPerLaunch) {
    ChunkTable table{};
    table.count = static_cast<int>(std::min<size_t>(kChunksPerLaunch, chunks.size() - first));
    for (int k = 0; k < table.count; ++k) table.c[k] = chunks[first + k];
    launch(table, static_cast<int64_t>(first));
  }
}

}  // namespace

void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out) {
  const std::vector<Chunk> chunks = chunks_of(tensors);
  const auto n = static_cast<int64_t>(chunks.size());
  Tensor partials = empty({n}, DType::f64, out.device());
  cudaStream_t stream = stream_of(current_stream());
  double* pp = partials.data<double>();
  for_each_table(chunks, [&](const ChunkTable& table, int64_t first) {
    sum_of_squares_kernel<<<static_cast<unsigned>(table.count), kBlock, 0, stream>>>(table, pp, first);
    EMBER_CUDA_CHECK_LAUNCH("sum_of_squares_kernel");
  });
  sum_partials_kernel<<<1, kBlock, 0, stream>>>(pp, n, out.data<double>());
  EMBER_CUDA_CHECK_LAUNCH("sum_partials_kernel");
}

void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm) {
  const std::vector<Chunk> chunks = chunks_of(tensors);
  cudaStream_t stream = stream_of(current_stream());
  const double* ss = sum_sq.data<double>();
  for_each_table(chunks, [&](const ChunkTable& table, int64_t) {
    clip_by_norm_kernel<<<static_cast<unsigned>(table.count), kBlock, 0, stream>>>(table, ss, max_norm);
    EMBER_CUDA_CHECK_LAUNCH("clip_by_norm_kernel");
  });
}

}  // namespace ember::cuda
