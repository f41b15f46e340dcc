// CPU conv2d: im2col + Eigen GEMM for dense and grouped convs, direct kernels for depthwise.
// The math and shapes are in conv2d.h. Every tensor here is contiguous.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/conv2d.h"

namespace ember::cpu {

namespace {

template <class T>
using MatrixRM = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapRM = Eigen::Map<MatrixRM<T>>;
template <class T>
using ConstMapRM = Eigen::Map<const MatrixRM<T>>;

// The output positions [lo, hi) along one axis whose input index  pos·stride + off  lies in [0, in).
struct Range {
  int64_t lo, hi;
};
Range valid_range(int64_t off, int64_t stride, int64_t in, int64_t out) {
  int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// Per kernel column j: the output columns that read inside the input, and their input offset.
std::vector<Range> column_ranges(const Conv2dGeometry& g) {
  std::vector<Range> r(g.kw);
  for (int64_t j = 0; j < g.kw; ++j) r[j] = valid_range(j * g.dw - g.pw, g.sw, g.W, g.OW);
  return r;
}
std::vector<Range> row_ranges(const Conv2dGeometry& g) {
  std::vector<Range> r(g.kh);
  for (int64_t i = 0; i < g.kh; ++i) r[i] = valid_range(i * g.dh - g.ph, g.sh, g.H, g.OH);
  return r;
}

// A 1×1 conv with unit stride and no padding reads x_g (Cg, H·W) as its column matrix.
bool needs_no_im2col(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// col[(c·kh + i)·kw + j, oh·OW + ow] = x[c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] (0 outside).
// x: (Cg, H, W) of one sample and group; col: (Cg·kh·kw, OH·OW).
template <class T>
void im2col(const T* x, T* col, const Conv2dGeometry& g, const std::vector<Range>& rows,
            const std::vector<Range>& cols) {
  const int64_t P = g.OH * g.OW;
  for (int64_t c = 0; c < g.Cg; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * P;
        const int64_t off = j * g.dw - g.pw;
        const Range rw = cols[j];
        std::fill(row, row + rows[i].lo * g.OW, T(0));
        for (int64_t oh = rows[i].lo; oh < rows[i].hi; ++oh) {
          T* r = row + oh * g.OW;
          const T* xrow = xc + (oh * g.sh - g.ph + i * g.dh) * g.W;
          std::fill(r, r + rw.lo, T(0));
          if (g.sw == 1) {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = xrow[ow + off];
          } else {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = xrow[ow * g.sw + off];
          }
          std::fill(r + rw.hi, r + g.OW, T(0));
        }
        std::fill(row + rows[i].hi * g.OW, row + P, T(0));
      }
    }
  }
}

// The adjoint of im2col: dx[c, y, z] += every col entry that im2col copied from (c, y, z).
// dx (Cg, H, W) must be zeroed first.
template <class T>
void col2im(const T* col, T* dx, const Conv2dGeometry& g, const std::vector<Range>& rows,
            const std::vector<Range>& cols) {
  const int64_t P = g.OH * g.OW;
  for (int64_t c = 0; c < g.Cg; ++c) {
    T* dxc = dx + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * P;
        const int64_t off = j * g.dw - g.pw;
        const Range rw = cols[j];
        for (int64_t oh = rows[i].lo; oh < rows[i].hi; ++oh) {
          const T* r = row + oh * g.OW;
          T* dxrow = dxc + (oh * g.sh - g.ph + i * g.dh) * g.W;
          if (g.sw == 1) {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) dxrow[ow + off] += r[ow];
          } else {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) dxrow[ow * g.sw + off] += r[ow];
          }
        }
      }
    }
  }
}

// Splits the batch into chunks: one per thread when the batch fills the threads (each GEMM
// then runs single-threaded; Eigen sees it is inside a parallel region), else a single chunk
// so that Eigen parallelizes every GEMM.
int64_t batch_chunks(int64_t N) {
  const int64_t threads = num_threads();
  return N >= threads ? threads : 1;
}

// ---- dense and grouped ------------------------------------------------------------

template <class T>
void dense_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const int64_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW;
  const bool direct = needs_no_im2col(g);
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t chunks = batch_chunks(g.N);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> col(direct ? 0 : K * P);  // (K, P)
    for (int64_t n = g.N * c0 / chunks; n < g.N * c1 / chunks; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;  // (Cg, H, W)
        if (!direct) im2col(xg, col.data(), g, rows, cols);
        ConstMapRM<T> colm(direct ? xg : col.data(), K, P);
        ConstMapRM<T> wg(w + grp * g.Og * K, g.Og, K);
        T* og = out + (n * g.O + grp * g.Og) * P;  // (Og, P)
        MapRM<T>(og, g.Og, P).noalias() = wg * colm;
        if (bias) {
          for (int64_t o = 0; o < g.Og; ++o) {
            const T b = bias[grp * g.Og + o];
            T* row = og + o * P;
            for (int64_t p = 0; p < P; ++p) row[p] += b;
          }
        }
      }
    }
  });
}

template <class T>
void dense_backward_input(const T* gout, const T* w, T* dx, const Conv2dGeometry& g) {
  const int64_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW;
  const bool direct = needs_no_im2col(g);
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t chunks = batch_chunks(g.N);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> dcol(direct ? 0 : K * P);  // (K, P)
    for (int64_t n = g.N * c0 / chunks; n < g.N * c1 / chunks; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        ConstMapRM<T> gg(gout + (n * g.O + grp * g.Og) * P, g.Og, P);
        ConstMapRM<T> wg(w + grp * g.Og * K, g.Og, K);
        T* dxg = dx + (n * g.C + grp * g.Cg) * g.H * g.W;  // (Cg, H, W)
        if (direct) {
          MapRM<T>(dxg, K, P).noalias() = wg.transpose() * gg;
        } else {
          MapRM<T>(dcol.data(), K, P).noalias() = wg.transpose() * gg;
          std::fill(dxg, dxg + g.Cg * g.H * g.W, T(0));
          col2im(dcol.data(), dxg, g, rows, cols);
        }
      }
    }
  });
}

template <class T>
void dense_backward_weight(const T* gout, const T* x, T* dw, const Conv2dGeometry& g) {
  const int64_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW;
  const bool direct = needs_no_im2col(g);
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t chunks = batch_chunks(g.N);
  // Each chunk sums its samples into its own (O, K) partial; the partials are added at the end.
  std::vector<std::vector<T>> partial(chunks, std::vector<T>(g.O * K, T(0)));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> col(direct ? 0 : K * P);  // (K, P)
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      for (int64_t n = g.N * chunk / chunks; n < g.N * (chunk + 1) / chunks; ++n) {
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
          if (!direct) im2col(xg, col.data(), g, rows, cols);
          ConstMapRM<T> colm(direct ? xg : col.data(), K, P);
          ConstMapRM<T> gg(gout + (n * g.O + grp * g.Og) * P, g.Og, P);
          MapRM<T>(partial[chunk].data() + grp * g.Og * K, g.Og, K).noalias() += gg * colm.transpose();
        }
      }
    }
  });
  for (int64_t e = 0; e < g.O * K; ++e) {
    T s = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) s += partial[chunk][e];
    dw[e] = s;
  }
}

// ---- depthwise: output channel o reads input channel o / M ---------------------------

// out (N, O, OH, OW): one task per output plane; each (i, j) tap adds w·x along a row.
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), P = g.OH * g.OW, KK = g.kh * g.kw;
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(P * KK, 1));
  parallel_for(g.N * g.O, grain, [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      const int64_t n = plane / g.O, o = plane % g.O, c = o / M;
      const T* xp = x + (n * g.C + c) * g.H * g.W;  // (H, W)
      const T* wp = w + o * KK;                      // (kh, kw)
      T* op = out + plane * P;                       // (OH, OW)
      std::fill(op, op + P, bias ? bias[o] : T(0));
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t oh = rows[i].lo; oh < rows[i].hi; ++oh) {
          const T* __restrict xrow = xp + (oh * g.sh - g.ph + i * g.dh) * g.W;
          T* __restrict orow = op + oh * g.OW;
          for (int64_t j = 0; j < g.kw; ++j) {
            const T wv = wp[i * g.kw + j];
            const int64_t off = j * g.dw - g.pw;
            if (g.sw == 1) {
              for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) orow[ow] += wv * xrow[ow + off];
            } else {
              for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) orow[ow] += wv * xrow[ow * g.sw + off];
            }
          }
        }
      }
    }
  });
}

// dx (N, C, H, W): one task per input plane, scattering the M output planes that read it.
template <class T>
void depthwise_backward_input(const T* gout, const T* w, T* dx, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), P = g.OH * g.OW, KK = g.kh * g.kw;
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M * P * KK, 1));
  parallel_for(g.N * g.C, grain, [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      const int64_t n = plane / g.C, c = plane % g.C;
      T* dxp = dx + plane * g.H * g.W;  // (H, W)
      std::fill(dxp, dxp + g.H * g.W, T(0));
      for (int64_t m = 0; m < M; ++m) {
        const int64_t o = c * M + m;
        const T* gp = gout + (n * g.O + o) * P;  // (OH, OW)
        const T* wp = w + o * KK;
        for (int64_t i = 0; i < g.kh; ++i) {
          for (int64_t oh = rows[i].lo; oh < rows[i].hi; ++oh) {
            T* __restrict dxrow = dxp + (oh * g.sh - g.ph + i * g.dh) * g.W;
            const T* __restrict grow = gp + oh * g.OW;
            for (int64_t j = 0; j < g.kw; ++j) {
              const T wv = wp[i * g.kw + j];
              const int64_t off = j * g.dw - g.pw;
              if (g.sw == 1) {
                for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) dxrow[ow + off] += wv * grow[ow];
              } else {
                for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) dxrow[ow * g.sw + off] += wv * grow[ow];
              }
            }
          }
        }
      }
    }
  });
}

// dw (O, 1, kh, kw): one task per output channel. Each tap keeps a row of per-column partial
// sums (so the inner loop has no reduction and vectorizes), summed once at the end.
template <class T>
void depthwise_backward_weight(const T* gout, const T* x, T* dw, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), P = g.OH * g.OW, KK = g.kh * g.kw;
  const auto rows = row_ranges(g), cols = column_ranges(g);
  parallel_for(g.O, 1, [&](int64_t b, int64_t e) {
    std::vector<T> acc(KK * g.OW);  // (kh·kw, OW)
    for (int64_t o = b; o < e; ++o) {
      const int64_t c = o / M;
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < g.N; ++n) {
        const T* xp = x + (n * g.C + c) * g.H * g.W;
        const T* gp = gout + (n * g.O + o) * P;
        for (int64_t i = 0; i < g.kh; ++i) {
          for (int64_t oh = rows[i].lo; oh < rows[i].hi; ++oh) {
            const T* __restrict xrow = xp + (oh * g.sh - g.ph + i * g.dh) * g.W;
            const T* __restrict grow = gp + oh * g.OW;
            for (int64_t j = 0; j < g.kw; ++j) {
              T* __restrict a = acc.data() + (i * g.kw + j) * g.OW;
              const int64_t off = j * g.dw - g.pw;
              if (g.sw == 1) {
                for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) a[ow] += grow[ow] * xrow[ow + off];
              } else {
                for (int64_t ow = cols[j].lo; ow < cols[j].hi; ++ow) a[ow] += grow[ow] * xrow[ow * g.sw + off];
              }
            }
          }
        }
      }
      for (int64_t k = 0; k < KK; ++k) {
        double s = 0;
        for (int64_t ow = 0; ow < g.OW; ++ow) s += static_cast<double>(acc[k * g.OW + ow]);
        dw[o * KK + k] = static_cast<T>(s);
      }
    }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g) {
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    if (g.depthwise()) depthwise_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
    else dense_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
  });
}

void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g) {
  dispatch_float(w.dtype(), "conv2d_backward_input", [&](auto tag) {
    using T = decltype(tag);
    if (g.depthwise()) depthwise_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
    else dense_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
  });
}

void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g) {
  dispatch_float(x.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    if (g.depthwise()) depthwise_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
    else dense_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
  });
}

}  // namespace ember::cpu
