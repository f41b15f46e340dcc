// CPU GEMM: Eigen's blocked, vectorized product over Eigen::Map views of ember's buffers, so
// row-major and column-major (transposed) operands are read where they lie.
#include <Eigen/Core>
#include <algorithm>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/matmul.h"

namespace ember::cpu {

namespace {

template <class T, int Order>
using ConstMatrixMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, Eigen::Unaligned,
                                  Eigen::OuterStride<>>;
template <class T>
using RowMajorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <class T>
using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;

// Calls fn with an Eigen view of the (rows, cols) matrix at p laid out as `layout` says.
template <class T, class Fn>
void with_matrix(const T* p, int64_t rows, int64_t cols, const GemmOperand& layout, Fn&& fn) {
  if (layout.col_major) {
    fn(ConstMatrixMap<T, Eigen::ColMajor>(p, rows, cols, Eigen::OuterStride<>(layout.ld)));
  } else {
    fn(ConstMatrixMap<T, Eigen::RowMajor>(p, rows, cols, Eigen::OuterStride<>(layout.ld)));
  }
}

// c (m, n) = a (m, k) · b (k, n) (+ bias (n) on every row: preloaded, then the product is
// accumulated onto it, which is GEMM's beta = 1), for rows [r0, r1) and columns [c0, c1) of c.
template <class T>
void gemm_block(const GemmPlan& p, T* c, const T* a, const T* b, const T* bias, int64_t r0, int64_t r1, int64_t c0,
                int64_t c1) {
  RowMajorMap<T> full(c, p.m, p.n);
  auto out = full.block(r0, c0, r1 - r0, c1 - c0);
  with_matrix(a, p.m, p.k, p.a, [&](const auto& am) {
    with_matrix(b, p.k, p.n, p.b, [&](const auto& bm) {
      auto ab = am.middleRows(r0, r1 - r0);
      auto bb = bm.middleCols(c0, c1 - c0);
      if (bias) {
        out.rowwise() = ConstRowVectorMap<T>(bias + c0, c1 - c0);
        out.noalias() += ab * bb;
      } else {
        out.noalias() = ab * bb;
      }
    });
  });
}

template <class T>
void gemm_one(const GemmPlan& p, T* c, const T* a, const T* b, const T* bias) {
  gemm_block(p, c, a, b, bias, 0, p.m, 0, p.n);
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
    auto one = [&](int64_t index) {
      const int64_t o = index / p.inner, i = index % p.inner;
      gemm_one<T>(p, c + index * mn, a_base + p.a_outer[o] + i * p.a_inner_stride,
                  b_base + p.b_outer[o] + i * p.b_inner_stride, bias_p);
    };
    // Many products: one per thread at a time, no synchronization (Eigen sees it is inside a
    // parallel region and stays single-threaded). Few large ones: Eigen splits each product.
    const int threads = num_threads();
    const double flops = 2.0 * static_cast<double>(p.m) * p.n * p.k;
    const bool split_batch =
        batch > 1 && threads > 1 && (batch % threads == 0 || batch >= 4 * threads || flops < double(1 << 22));
    if (split_batch || threads == 1) {
      parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t index = begin; index < end; ++index) one(index);
      });
      return;
    }
    // Few large products: split each one's output into row (or column) panels, one per
    // thread, each a single-threaded Eigen GEMM. (Eigen's own threading synchronizes its
    // threads by spinning, which collapses when another process or the data loader's
    // workers take a core: a 2-thread step ran 9x slower than 1 thread under load.)
    const bool by_rows = p.m >= p.n;
    const int64_t extent = by_rows ? p.m : p.n;
    const int64_t panels = std::min<int64_t>(threads, std::max<int64_t>(1, extent / 16));
    for (int64_t index = 0; index < batch; ++index) {
      const int64_t o = index / p.inner, i = index % p.inner;
      T* cc = c + index * mn;
      const T* aa = a_base + p.a_outer[o] + i * p.a_inner_stride;
      const T* bb = b_base + p.b_outer[o] + i * p.b_inner_stride;
      parallel_for(panels, 1, [&](int64_t begin, int64_t end) {
        for (int64_t q = begin; q < end; ++q) {
          // panel edges on multiples of 16 rows/columns (whole vector registers)
          int64_t lo = extent * q / panels / 16 * 16, hi = q + 1 == panels ? extent : extent * (q + 1) / panels / 16 * 16;
          if (by_rows) gemm_block<T>(p, cc, aa, bb, bias_p, lo, hi, 0, p.n);
          else gemm_block<T>(p, cc, aa, bb, bias_p, 0, p.m, lo, hi);
        }
      });
    }
  });
}

}  // namespace ember::cpu
