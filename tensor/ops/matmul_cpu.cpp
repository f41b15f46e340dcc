// CPU GEMM: Eigen's blocked, vectorized product over Eigen::Map views of ember's buffers, so
// row-major and column-major (transposed) operands are read where they lie.
#include <Eigen/Core>

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
// accumulated onto it, which is GEMM's beta = 1).
template <class T>
void gemm_one(const GemmPlan& p, T* c, const T* a, const T* b, const T* bias) {
  RowMajorMap<T> out(c, p.m, p.n);
  with_matrix(a, p.m, p.k, p.a, [&](const auto& am) {
    with_matrix(b, p.k, p.n, p.b, [&](const auto& bm) {
      if (bias) {
        out.rowwise() = ConstRowVectorMap<T>(bias, p.n);
        out.noalias() += am * bm;
      } else {
        out.noalias() = am * bm;
      }
    });
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
    if (split_batch) {
      parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t index = begin; index < end; ++index) one(index);
      });
    } else {
      if (Eigen::nbThreads() != threads) Eigen::setNbThreads(threads);
      for (int64_t index = 0; index < batch; ++index) one(index);
    }
  });
}

}  // namespace ember::cpu
