// Float64 references for the op harness (test_backend_ops.cpp), each written from the formula in
// its op's header as plain loops over RefTensors: no ember kernel is called.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tests/support/op_harness.h"
#include "tests/support/references.h"

namespace ember::testing::refs {

using testing::broadcast_index;  // tests/support/references.h

inline Shape broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

template <class F>
RefTensor map(const RefTensor& x, F f) {
  RefTensor r(x.shape);
  for (int64_t i = 0; i < x.numel(); ++i) r.v[i] = f(x.v[i]);
  return r;
}

template <class F>
RefTensor zip(const RefTensor& a, const RefTensor& b, F f) {
  RefTensor r(broadcast(a.shape, b.shape));
  for (int64_t i = 0; i < r.numel(); ++i)
    r.v[i] = f(a.v[broadcast_index(r.shape, a.shape, i)], b.v[broadcast_index(r.shape, b.shape, i)]);
  return r;
}

// The reduction of x over `dims` (all when empty): f(values of one output's group) per output.
template <class F>
RefTensor reduce(const RefTensor& x, std::vector<int64_t> dims, bool keepdim, F f) {
  const int64_t nd = static_cast<int64_t>(x.shape.size());
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (int64_t& d : dims) d = d < 0 ? d + nd : d;
  auto reduced = [&](int64_t d) { return std::find(dims.begin(), dims.end(), d) != dims.end(); };
  Shape out_shape, kept_full;
  for (int64_t d = 0; d < nd; ++d) {
    if (!reduced(d)) out_shape.push_back(x.shape[d]);
    else if (keepdim) out_shape.push_back(1);
    kept_full.push_back(reduced(d) ? 1 : x.shape[d]);
  }
  std::vector<std::vector<double>> groups(static_cast<size_t>(shape_numel(kept_full)));
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, o = 0, stride = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t c = rem % x.shape[d];
      rem /= x.shape[d];
      if (!reduced(d)) o += c * stride, stride *= x.shape[d];
    }
    groups[o].push_back(x.v[i]);
  }
  RefTensor r(out_shape);
  for (size_t o = 0; o < groups.size(); ++o) r.v[o] = f(groups[o]);
  return r;
}

inline double sum_of(const std::vector<double>& g) {
  double s = 0;
  for (double v : g) s += v;
  return s;
}

// softmax / log_softmax / logsumexp of the last dim of a (rows, n) view: x moved so `dim` is last.
inline RefTensor along_last(const RefTensor& x, int64_t dim, bool keep_dim_size,
                            void (*row_fn)(const std::vector<double>&, std::vector<double>&)) {
  const int64_t nd = static_cast<int64_t>(x.shape.size());
  dim = dim < 0 ? dim + nd : dim;
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < nd; ++d) inner *= x.shape[d];
  const int64_t n = x.shape[dim], outer = x.numel() / (n * inner);
  Shape out_shape = x.shape;
  if (!keep_dim_size) out_shape.erase(out_shape.begin() + dim);
  RefTensor r(out_shape);
  std::vector<double> row(n), res;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t j = 0; j < n; ++j) row[j] = x.v[(o * n + j) * inner + i];
      row_fn(row, res);
      if (keep_dim_size)
        for (int64_t j = 0; j < n; ++j) r.v[(o * n + j) * inner + i] = res[j];
      else
        r.v[o * inner + i] = res[0];
    }
  return r;
}
inline double lse_of(const std::vector<double>& row) {
  double m = *std::max_element(row.begin(), row.end()), s = 0;
  for (double v : row) s += std::exp(v - m);
  return m + std::log(s);
}
inline void softmax_row(const std::vector<double>& row, std::vector<double>& out) {
  double l = lse_of(row);
  out.resize(row.size());
  for (size_t j = 0; j < row.size(); ++j) out[j] = std::exp(row[j] - l);
}
inline void log_softmax_row(const std::vector<double>& row, std::vector<double>& out) {
  double l = lse_of(row);
  out.resize(row.size());
  for (size_t j = 0; j < row.size(); ++j) out[j] = row[j] - l;
}
inline void logsumexp_row(const std::vector<double>& row, std::vector<double>& out) { out.assign(1, lse_of(row)); }

// a (..., n, k) · b (..., k, m), batch dims broadcast (b may be 2-D).
inline RefTensor matmul(const RefTensor& a, const RefTensor& b) {
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  Shape ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Shape batch = broadcast(ba, bb), out_shape = batch;
  out_shape.push_back(n);
  out_shape.push_back(m);
  RefTensor r(out_shape);
  for (int64_t p = 0; p < shape_numel(batch); ++p) {
    const double* pa = a.v.data() + broadcast_index(batch, ba, p) * n * k;
    const double* pb = b.v.data() + broadcast_index(batch, bb, p) * k * m;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double s = 0;
        for (int64_t t = 0; t < k; ++t) s += pa[i * k + t] * pb[t * m + j];
        r.v[(p * n + i) * m + j] = s;
      }
  }
  return r;
}

// x (N, C, H, W), w (O, C/groups, KH, KW), bias (O) or empty.
inline RefTensor conv2d(const RefTensor& x, const RefTensor& w, const RefTensor* bias, int64_t stride, int64_t pad,
                        int64_t dilation, int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), CG = w.size(1), KH = w.size(2), KW = w.size(3), OG = O / groups;
  const int64_t OH = (H + 2 * pad - dilation * (KH - 1) - 1) / stride + 1;
  const int64_t OW = (W + 2 * pad - dilation * (KW - 1) - 1) / stride + 1;
  RefTensor r({N, O, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = bias ? bias->v[o] : 0.0;
          for (int64_t c = 0; c < CG; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                int64_t y = oh * stride - pad + i * dilation, z = ow * stride - pad + j * dilation;
                if (y < 0 || y >= H || z < 0 || z >= W) continue;
                s += x.at({n, (o / OG) * CG + c, y, z}) * w.at({o, c, i, j});
              }
          r.at({n, o, oh, ow}) = s;
        }
  (void)C;
  return r;
}

// Windowed pools over (N, C, H, W), PyTorch's floor mode; `avg` divides by k·k (padding counts).
inline RefTensor pool2d(const RefTensor& x, int64_t k, int64_t stride, int64_t pad, bool avg) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
  RefTensor r({N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = avg ? 0.0 : -std::numeric_limits<double>::infinity();
          for (int64_t y = oh * stride - pad; y < oh * stride - pad + k; ++y)
            for (int64_t z = ow * stride - pad; z < ow * stride - pad + k; ++z) {
              if (y < 0 || y >= H || z < 0 || z >= W) continue;
              acc = avg ? acc + x.at({n, c, y, z}) : std::max(acc, x.at({n, c, y, z}));
            }
          r.at({n, c, oh, ow}) = avg ? acc / static_cast<double>(k * k) : acc;
        }
  return r;
}

inline RefTensor adaptive_avg_pool2d(const RefTensor& x, int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  RefTensor r({N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t y0 = oh * H / OH, y1 = ((oh + 1) * H + OH - 1) / OH;
          int64_t z0 = ow * W / OW, z1 = ((ow + 1) * W + OW - 1) / OW;
          double s = 0;
          for (int64_t y = y0; y < y1; ++y)
            for (int64_t z = z0; z < z1; ++z) s += x.at({n, c, y, z});
          r.at({n, c, oh, ow}) = s / static_cast<double>((y1 - y0) * (z1 - z0));
        }
  return r;
}

inline RefTensor bilinear(const RefTensor& x, int64_t OH, int64_t OW, bool align_corners) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto src = [&](int64_t o, int64_t in, int64_t out) {
    if (align_corners) return out == 1 ? 0.0 : static_cast<double>(o) * (in - 1) / (out - 1);
    return std::max((o + 0.5) * in / out - 0.5, 0.0);
  };
  RefTensor r({N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double sh = src(oh, H, OH), sw = src(ow, W, OW);
          int64_t h0 = std::min<int64_t>(static_cast<int64_t>(sh), H - 1), h1 = std::min(h0 + 1, H - 1);
          int64_t w0 = std::min<int64_t>(static_cast<int64_t>(sw), W - 1), w1 = std::min(w0 + 1, W - 1);
          double lh = sh - h0, lw = sw - w0;
          r.at({n, c, oh, ow}) = (1 - lh) * (1 - lw) * x.at({n, c, h0, w0}) + (1 - lh) * lw * x.at({n, c, h0, w1}) +
                                 lh * (1 - lw) * x.at({n, c, h1, w0}) + lh * lw * x.at({n, c, h1, w1});
        }
  return r;
}

// Mean over rows of -Σ_c q_c log_softmax(x)_c with q = (1-ε)·onehot(t) + ε/C.
inline RefTensor cross_entropy(const RefTensor& logits, const RefTensor& target, double smoothing) {
  const int64_t N = logits.size(0), C = logits.size(1);
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> row(logits.v.begin() + n * C, logits.v.begin() + (n + 1) * C), ls;
    log_softmax_row(row, ls);
    for (int64_t c = 0; c < C; ++c)
      total -= ((1 - smoothing) * (c == static_cast<int64_t>(target.v[n]) ? 1.0 : 0.0) + smoothing / C) * ls[c];
  }
  RefTensor r(Shape{});
  r.v[0] = total / static_cast<double>(N);
  return r;
}

// softmax(q·kᵀ/√d)·v over (B, H, N, d).
inline RefTensor attention(const RefTensor& q, const RefTensor& k, const RefTensor& v) {
  const int64_t BH = q.size(0) * q.size(1), N = q.size(2), d = q.size(3), M = k.size(2), dv = v.size(3);
  Shape out_shape = q.shape;
  out_shape[3] = dv;
  RefTensor r(out_shape);
  const double s = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> scores(M), p;
  for (int64_t b = 0; b < BH; ++b)
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t j = 0; j < M; ++j) {
        double dot = 0;
        for (int64_t t = 0; t < d; ++t) dot += q.v[(b * N + i) * d + t] * k.v[(b * M + j) * d + t];
        scores[j] = s * dot;
      }
      softmax_row(scores, p);
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < M; ++j) acc += p[j] * v.v[(b * M + j) * dv + c];
        r.v[(b * N + i) * dv + c] = acc;
      }
    }
  return r;
}

// Part `which` (0 q, 1 k, 2 v) of a packed qkv (B, N, 3, H, d), as (B, H, N, d).
inline RefTensor qkv_part(const RefTensor& qkv, int64_t which) {
  const int64_t B = qkv.size(0), N = qkv.size(1), H = qkv.size(3), d = qkv.size(4);
  RefTensor r({B, H, N, d});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < d; ++t) r.at({b, h, n, t}) = qkv.at({b, n, which, h, t});
  return r;
}

// Over the last dim: (x - μ)/√(σ² + eps)·γ + β.
inline RefTensor layer_norm(const RefTensor& x, const RefTensor& g, const RefTensor& b, double eps) {
  const int64_t D = x.size(-1), rows = x.numel() / D;
  RefTensor r(x.shape);
  for (int64_t row = 0; row < rows; ++row) {
    const double* p = x.v.data() + row * D;
    double mu = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mu += p[j] / D;
    for (int64_t j = 0; j < D; ++j) var += (p[j] - mu) * (p[j] - mu) / D;
    for (int64_t j = 0; j < D; ++j) r.v[row * D + j] = (p[j] - mu) / std::sqrt(var + eps) * g.v[j] + b.v[j];
  }
  return r;
}

}  // namespace ember::testing::refs
