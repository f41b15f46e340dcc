// CPU matmul: every product goes through cpu::gemm (tensor/cpu/gemm.h: ember's packed GEMM for
// f32), which reads row-major and column-major (transposed) operands where they lie. Threads
// split a batch of products, or one product into panels.
#include <algorithm>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops/matmul_kernels.h"

namespace ember::cpu {

namespace {

template <class T>
MatrixView<T> view(const T* p, const GemmOperand& layout) {
  return {p, layout.row_stride(), layout.col_stride()};
}

// c (m, n), rows ldc apart, = a (m, k) · b (k, n) (+ bias (n) on every row, added by the GEMM's
// micro-kernel: gemm.h).
template <class T>
void gemm_block(int64_t m, int64_t n, int64_t k, T* c, int64_t ldc, const T* a, const GemmOperand& la, const T* b,
                const GemmOperand& lb, const T* bias) {
  gemm<T>(m, n, k, view(a, la), view(b, lb), c, ldc, false, bias);
}

// One product on `threads` threads, split into output panels: bands of rows when m >= n,
// else of columns, each a single-threaded product. Panels never wait on each other (a shared
// packed block would make every thread wait for the slowest at each block step, and a thread
// that loses its core on a busy machine then stalls them all).
template <class T>
void gemm_threaded(const GemmPlan& p, T* c, const T* a, const T* b, const T* bias, int threads) {
  const bool by_rows = p.m >= p.n;
  const int64_t extent = by_rows ? p.m : p.n;
  const double flops = 2.0 * static_cast<double>(p.m) * p.n * p.k;
  // Below 2^17 FLOPs a thread is not worth waking; with fewer than 16 rows per panel the
  // panels get too thin.
  const int64_t parts = flops < double(1 << 17) ? 1 : std::min<int64_t>(threads, extent / 16);
  if (parts <= 1) {
    gemm_block(p.m, p.n, p.k, c, p.n, a, p.a, b, p.b, bias);
    return;
  }
  auto edge = [&](int64_t part) { return part == parts ? extent : (extent * part / parts) / 8 * 8; };
  parallel_for(parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t part = begin; part < end; ++part) {
      const int64_t lo = edge(part), len = edge(part + 1) - lo;
      if (by_rows) {
        gemm_block(len, p.n, p.k, c + lo * p.n, p.n, a + lo * p.a.row_stride(), p.a, b, p.b, bias);
      } else {
        gemm_block(p.m, len, p.k, c + lo, p.n, a, p.a, b + lo * p.b.col_stride(), p.b, bias ? bias + lo : nullptr);
      }
    }
  });
}

}  // namespace

void gemm(const GemmPlan& p, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    T* c = out.data<T>();             // (batch, m, n)
    const T* a_base = a.data<T>();    // matrices at a_outer[o] + i · a_inner_stride
    const T* b_base = b.data<T>();
    const T* bias_p = bias.defined() ? bias.data<T>() : nullptr;  // (n)
    const int64_t batch = p.batch(), mn = p.m * p.n;
    auto a_of = [&](int64_t index) {
      return a_base + p.a_outer[index / p.inner] + (index % p.inner) * p.a_inner_stride;
    };
    auto b_of = [&](int64_t index) {
      return b_base + p.b_outer[index / p.inner] + (index % p.inner) * p.b_inner_stride;
    };
    // Many products: whole products per thread. Few large ones: each split across the threads.
    const int threads = num_threads();
    const double flops = 2.0 * static_cast<double>(p.m) * p.n * p.k;
    const bool split_batch =
        batch > 1 && threads > 1 && (batch % threads == 0 || batch >= 4 * threads || flops < double(1 << 22));
    if (split_batch) {
      parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          gemm_block(p.m, p.n, p.k, c + i * mn, p.n, a_of(i), p.a, b_of(i), p.b, bias_p);
      });
    } else {
      for (int64_t i = 0; i < batch; ++i) gemm_threaded(p, c + i * mn, a_of(i), b_of(i), bias_p, threads);
    }
  });
}

}  // namespace ember::cpu
