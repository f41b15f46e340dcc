// CPU attention, flash-style: tiles of query rows × key rows, an online softmax in the
// forward, P recomputed from lse in the backward; the score tile is the only N×M-shaped
// buffer and it is at most kQueryBlock × kKeyBlock. Tile products are small Eigen GEMMs on views
// of q, k, v read in place (any strides with a contiguous last dim).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/attention_kernels.h"

namespace ember::cpu {

namespace {

// Target rows per query block and per key block. 128 keeps ViT's 65 tokens in one tile (blocks of
// 64 split them 33 + 32: four tile products and an online-softmax rescale per head instead of
// one): at 64×3×65×65×64 the forward took 3.7–3.8 ms instead of 4.7 and the backward 8.6
// instead of 9.5–11.7 (bench_attention, 2 threads, side by side).
constexpr int64_t kQueryBlock = 128;
constexpr int64_t kKeyBlock = 128;

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowsMap = Eigen::Map<Mat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Blocks of about `target` rows that split n evenly (65 rows: 33 + 32, not 64 + 1).
int64_t block_rows(int64_t n, int64_t target) {
  if (n <= 0) return 1;
  const int64_t blocks = (n + target - 1) / target;
  return (n + blocks - 1) / blocks;
}

// Its last dim contiguous, as the row views need.
Tensor rows_readable(const Tensor& t) { return t.stride(-1) == 1 || t.size(-1) <= 1 ? t : t.contiguous(); }

// Rows of a (B, H, rows, cols) tensor: rows [r0, r0 + n) of head bh (= b · H + h) as a matrix.
template <class T>
struct HeadRows {
  T* base;
  int64_t heads, s0, s1, s2, cols;
  explicit HeadRows(const Tensor& t)
      : base(static_cast<T*>(t.data_ptr())), heads(t.size(1)), s0(t.stride(0)), s1(t.stride(1)),
        s2(t.size(2) > 1 ? t.stride(2) : t.size(3)), cols(t.size(3)) {}
  T* row(int64_t bh, int64_t r) const { return base + (bh / heads) * s0 + (bh % heads) * s1 + r * s2; }
  RowsMap<T> rows(int64_t bh, int64_t r0, int64_t n) const {
    return RowsMap<T>(row(bh, r0), n, cols, Eigen::OuterStride<>(std::max<int64_t>(s2, 1)));
  }
};

// The mask expanded to (B, H, N, M): bool (true = attend) or additive values of type T.
template <class T>
struct MaskView {
  const void* base = nullptr;
  bool is_bool = false;
  int64_t heads = 1, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  explicit MaskView(const Tensor& m) {
    if (!m.defined()) return;
    base = m.data_ptr();
    is_bool = m.dtype() == DType::boolean;
    heads = m.size(1);
    s0 = m.stride(0);
    s1 = m.stride(1);
    s2 = m.stride(2);
    s3 = m.stride(3);
  }
  // s (rows i0.., cols j0..) of head bh: −∞ where a bool mask says no, + mask otherwise.
  void apply(Mat<T>& s, int64_t bh, int64_t i0, int64_t j0) const {
    if (!base) return;
    const T inf = std::numeric_limits<T>::infinity();
    for (int64_t r = 0; r < s.rows(); ++r) {
      const int64_t off = (bh / heads) * s0 + (bh % heads) * s1 + (i0 + r) * s2 + j0 * s3;
      if (is_bool) {
        const bool* p = static_cast<const bool*>(base) + off;
        for (int64_t c = 0; c < s.cols(); ++c)
          if (!p[c * s3]) s(r, c) = -inf;
      } else {
        const T* p = static_cast<const T*>(base) + off;
        for (int64_t c = 0; c < s.cols(); ++c) s(r, c) += p[c * s3];
      }
    }
  }
};

// exp(x − shift) per element, with Eigen's vectorized exp. It clamps its argument, so a
// masked score (−∞) comes out as about 4e-39 instead of 0: nothing next to the row's largest
// term, exp(0) = 1, but a row whose scores are all −∞ must be zeroed by the caller instead.
// (Selecting exact zeros with Eigen's select() would make the whole expression scalar, with
// a libm call per element: 30% of the forward time at N = M = 512.)
template <class Row, class T>
auto exp_shifted(const Row& x, T shift) {
  return (x.array() - shift).exp().matrix();
}

template <class T>
struct Problem {
  HeadRows<T> q, k, v;
  MaskView<T> mask;
  T scale;
  int64_t bh_count, n, m, d, dv, br, bc;
  Problem(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& mask_, double scale_)
      : q(q_), k(k_), v(v_), mask(mask_), scale(static_cast<T>(scale_)), bh_count(q_.size(0) * q_.size(1)),
        n(q_.size(2)), m(k_.size(2)), d(q_.size(3)), dv(v_.size(3)), br(block_rows(n, kQueryBlock)),
        bc(block_rows(m, kKeyBlock)) {}
};

// Query rows [i0, i0 + rows) of head bh: walk the key blocks, keeping per row the running
// max mx and sum l of exp(S − mx), and acc = Σ exp(S − mx) v, rescaled when mx grows.
template <class T>
void forward_block(const Problem<T>& p, int64_t bh, int64_t i0, int64_t rows, const HeadRows<T>& out, T* lse) {
  const T inf = std::numeric_limits<T>::infinity();
  auto q = p.q.rows(bh, i0, rows);                // (rows, d)
  Mat<T> acc = Mat<T>::Zero(rows, p.dv);          // (rows, dv)
  std::vector<T> mx(rows, -inf), l(rows, T(0));
  Mat<T> s;                                        // (rows, bc) scores, then probabilities
  for (int64_t j0 = 0; j0 < p.m; j0 += p.bc) {
    const int64_t cols = std::min(p.bc, p.m - j0);
    s.noalias() = q * p.k.rows(bh, j0, cols).transpose();
    s *= p.scale;
    p.mask.apply(s, bh, i0, j0);
    for (int64_t r = 0; r < rows; ++r) {
      const T m_new = std::max(mx[r], s.row(r).maxCoeff());
      if (m_new == -inf) {  // every key so far masked out: mx, l, acc stay −∞, 0, 0
        s.row(r).setZero();
        continue;
      }
      const T alpha = std::exp(mx[r] - m_new);  // 0 when mx = −∞ (std::exp is exact there)
      s.row(r) = exp_shifted(s.row(r), m_new);
      l[r] = l[r] * alpha + s.row(r).sum();
      acc.row(r) *= alpha;
      mx[r] = m_new;
    }
    acc.noalias() += s * p.v.rows(bh, j0, cols);
  }
  auto o = out.rows(bh, i0, rows);
  for (int64_t r = 0; r < rows; ++r) {
    if (l[r] > 0) {
      o.row(r) = acc.row(r) / l[r];
      lse[r] = mx[r] + std::log(l[r]);
    } else {  // every key masked out
      o.row(r).setZero();
      lse[r] = -inf;
    }
  }
}

template <class T>
struct BackwardProblem : Problem<T> {
  HeadRows<T> g, dq_rows, dk_rows, dv_rows;
  const T* lse;      // (B·H·N)
  std::vector<T> D;  // (B·H·N): Σ_c g · out per row
  BackwardProblem(const Tensor& g_, const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& mask_,
                  double scale_, const Tensor& lse_, const Tensor& dq_, const Tensor& dk_, const Tensor& dv_)
      : Problem<T>(q_, k_, v_, mask_, scale_), g(g_), dq_rows(dq_), dk_rows(dk_), dv_rows(dv_),
        lse(static_cast<const T*>(lse_.data_ptr())) {}
};

// The tiles of head bh with query rows [i_begin, i_end) and key rows [j_begin, j_end):
// dq rows accumulate (want_dq), dk and dv rows are written whole (want_dkv).
template <class T>
void backward_block(const BackwardProblem<T>& p, int64_t bh, int64_t i_begin, int64_t i_end, int64_t j_begin,
                    int64_t j_end, bool want_dq, bool want_dkv) {
  const T inf = std::numeric_limits<T>::infinity();
  Mat<T> s, dp, dk_acc, dv_acc;
  for (int64_t j0 = j_begin; j0 < j_end; j0 += p.bc) {
    const int64_t cols = std::min(p.bc, j_end - j0);
    auto k = p.k.rows(bh, j0, cols);  // (cols, d)
    auto v = p.v.rows(bh, j0, cols);  // (cols, dv)
    if (want_dkv) {
      dk_acc.setZero(cols, p.d);
      dv_acc.setZero(cols, p.dv);
    }
    for (int64_t i0 = i_begin; i0 < i_end; i0 += p.br) {
      const int64_t rows = std::min(p.br, i_end - i0);
      auto q = p.q.rows(bh, i0, rows);  // (rows, d)
      auto g = p.g.rows(bh, i0, rows);  // (rows, dv)
      const T* lse = p.lse + bh * p.n + i0;
      const T* D = p.D.data() + bh * p.n + i0;
      s.noalias() = q * k.transpose();
      s *= p.scale;
      p.mask.apply(s, bh, i0, j0);
      for (int64_t r = 0; r < rows; ++r) {  // P = exp(S − lse)
        if (lse[r] == -inf) s.row(r).setZero();
        else s.row(r) = exp_shifted(s.row(r), lse[r]);
      }
      if (want_dkv) dv_acc.noalias() += s.transpose() * g;  // Pᵀ·g
      dp.noalias() = g * v.transpose();                     // dP = g·vᵀ
      for (int64_t r = 0; r < rows; ++r)                    // dS = P ∘ (dP − D)
        dp.row(r) = (s.row(r).array() * (dp.row(r).array() - D[r])).matrix();
      if (want_dkv) dk_acc.noalias() += (dp.transpose() * q) * p.scale;
      if (want_dq) p.dq_rows.rows(bh, i0, rows).noalias() += (dp * k) * p.scale;
    }
    if (want_dkv) {
      p.dk_rows.rows(bh, j0, cols) = dk_acc;
      p.dv_rows.rows(bh, j0, cols) = dv_acc;
    }
  }
}

}  // namespace

AttentionForward attention_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& mask,
                                   double scale) {
  Tensor q = rows_readable(q_in), k = rows_readable(k_in), v = rows_readable(v_in);
  AttentionForward result;
  result.out = empty({q.size(0), q.size(1), q.size(2), v.size(3)}, q.dtype());  // (B, H, N, dv)
  result.lse = empty({q.size(0), q.size(1), q.size(2)}, q.dtype());             // (B, H, N)
  dispatch_float(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    const Problem<T> p(q, k, v, mask, scale);
    const HeadRows<T> out(result.out);
    T* lse = result.lse.data<T>();
    const int64_t query_blocks = (p.n + p.br - 1) / p.br;
    parallel_for(p.bh_count * query_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t bh = w / query_blocks, i0 = (w % query_blocks) * p.br;
        forward_block(p, bh, i0, std::min(p.br, p.n - i0), out, lse + bh * p.n + i0);
      }
    });
  });
  return result;
}

AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                  const Tensor& out_in, const Tensor& lse_in, const Tensor& mask, double scale) {
  Tensor q = rows_readable(q_in), k = rows_readable(k_in), v = rows_readable(v_in);
  Tensor g = rows_readable(grad_out), out = rows_readable(out_in), lse = lse_in.contiguous();
  AttentionGrads grads;
  grads.dq = zeros(q.shape(), q.dtype());                 // (B, H, N, d), accumulated
  grads.dk = empty(k.shape(), k.dtype());                 // (B, H, M, d)
  grads.dv = empty(v.shape(), v.dtype());                 // (B, H, M, dv)
  dispatch_float(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    BackwardProblem<T> p(g, q, k, v, mask, scale, lse, grads.dq, grads.dk, grads.dv);
    const HeadRows<T> o(out);
    p.D.resize(p.bh_count * p.n);
    parallel_for(p.bh_count * p.n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t bh = row / p.n, i = row % p.n;
        p.D[row] = p.g.rows(bh, i, 1).cwiseProduct(o.rows(bh, i, 1)).sum();
      }
    });
    if (p.bh_count >= num_threads()) {  // a head per task: dq, dk and dv all owned
      parallel_for(p.bh_count, 1, [&](int64_t begin, int64_t end) {
        for (int64_t bh = begin; bh < end; ++bh) backward_block(p, bh, 0, p.n, 0, p.m, true, true);
      });
      return;
    }
    // Few heads: key blocks own their dk, dv rows; then query blocks own their dq rows.
    const int64_t key_blocks = (p.m + p.bc - 1) / p.bc, query_blocks = (p.n + p.br - 1) / p.br;
    parallel_for(p.bh_count * key_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t bh = w / key_blocks, j0 = (w % key_blocks) * p.bc;
        backward_block(p, bh, 0, p.n, j0, std::min(p.m, j0 + p.bc), false, true);
      }
    });
    parallel_for(p.bh_count * query_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t bh = w / query_blocks, i0 = (w % query_blocks) * p.br;
        backward_block(p, bh, i0, std::min(p.n, i0 + p.br), 0, p.m, true, false);
      }
    });
  });
  return grads;
}

}  // namespace ember::cpu
