// CPU pooling kernels: one task per (n, c) plane; backward passes scatter within their plane,
// so planes never collide. The math and shapes are in pool.h. Every tensor here is contiguous.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/pool_kernels.h"

namespace ember::cpu {

namespace {

int64_t plane_grain(int64_t work_per_plane) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_plane, 1)); }

// The max of one window of plane x (rows [h0, h1), cols [w0, w1)) and its index y·W + z: the
// first on ties; a NaN wins at once (max of anything with NaN is NaN, as in PyTorch).
template <class T>
void window_max(const T* x, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1, T& best, int64_t& arg) {
  best = -std::numeric_limits<T>::infinity();
  arg = h0 * W + w0;
  for (int64_t y = h0; y < h1; ++y) {
    for (int64_t z = w0; z < w1; ++z) {
      const T v = x[y * W + z];
      if (std::isnan(v)) {
        best = v;
        arg = y * W + z;
        return;
      }
      if (v > best) {
        best = v;
        arg = y * W + z;
      }
    }
  }
}

// x, out, indices: planes (H, W) and (OH, OW) of one (n, c).
template <class T>
void max_pool_plane(const T* x, T* out, int64_t* indices, const Pool2dGeometry& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * g.sh - g.ph, 0), h1 = std::min(oh * g.sh - g.ph + g.kh, g.H);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t w0 = std::max<int64_t>(ow * g.sw - g.pw, 0), w1 = std::min(ow * g.sw - g.pw + g.kw, g.W);
      window_max(x, g.W, h0, h1, w0, w1, out[oh * g.OW + ow], indices[oh * g.OW + ow]);
    }
  }
}

template <class T>
void max_pool2d_forward_impl(const T* x, T* out, int64_t* indices, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  parallel_for(g.N * g.C, plane_grain(out_plane * g.kh * g.kw), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) max_pool_plane(x + p * in_plane, out + p * out_plane, indices + p * out_plane, g);
  });
}

template <class T>
void max_pool2d_backward_impl(const T* gout, const int64_t* indices, T* dx, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  std::atomic<bool> bad_index{false};
  parallel_for(g.N * g.C, plane_grain(in_plane + out_plane), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      T* d = dx + p * in_plane;
      std::fill(d, d + in_plane, T(0));
      const T* gp = gout + p * out_plane;
      const int64_t* ip = indices + p * out_plane;
      for (int64_t k = 0; k < out_plane; ++k) {
        if (ip[k] >= 0 && ip[k] < in_plane) d[ip[k]] += gp[k];
        else bad_index = true;
      }
    }
  });
  // Thrown here, not inside the parallel region (an exception may not leave an OpenMP region).
  EMBER_CHECK(!bad_index, "max_pool2d_backward: indices hold a position outside the ", g.H, "x", g.W,
              " input plane (were they made for this input shape?)");
}

template <class T>
void avg_pool2d_forward_impl(const T* x, T* out, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  parallel_for(g.N * g.C, plane_grain(out_plane * g.kh * g.kw), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T* xp = x + p * in_plane;
      T* op = out + p * out_plane;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t hs = oh * g.sh - g.ph, he = std::min(hs + g.kh, g.H + g.ph);
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(he, g.H);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t ws = ow * g.sw - g.pw, we = std::min(ws + g.kw, g.W + g.pw);
          const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(we, g.W);
          T s = 0;
          for (int64_t y = h0; y < h1; ++y)
            for (int64_t z = w0; z < w1; ++z) s += xp[y * g.W + z];
          op[oh * g.OW + ow] = s / static_cast<T>((he - hs) * (we - ws));  // padding counts
        }
      }
    }
  });
}

template <class T>
void avg_pool2d_backward_impl(const T* gout, T* dx, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  parallel_for(g.N * g.C, plane_grain(out_plane * g.kh * g.kw), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      T* d = dx + p * in_plane;
      std::fill(d, d + in_plane, T(0));
      const T* gp = gout + p * out_plane;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t hs = oh * g.sh - g.ph, he = std::min(hs + g.kh, g.H + g.ph);
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(he, g.H);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t ws = ow * g.sw - g.pw, we = std::min(ws + g.kw, g.W + g.pw);
          const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(we, g.W);
          const T v = gp[oh * g.OW + ow] / static_cast<T>((he - hs) * (we - ws));
          for (int64_t y = h0; y < h1; ++y)
            for (int64_t z = w0; z < w1; ++z) d[y * g.W + z] += v;
        }
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_forward_impl(const T* x, T* out, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  parallel_for(g.N * g.C, plane_grain(in_plane), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T* xp = x + p * in_plane;
      T* op = out + p * out_plane;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
          T s = 0;
          for (int64_t y = h0; y < h1; ++y)
            for (int64_t z = w0; z < w1; ++z) s += xp[y * g.W + z];
          op[oh * g.OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward_impl(const T* gout, T* dx, const Pool2dGeometry& g) {
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  parallel_for(g.N * g.C, plane_grain(in_plane), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      T* d = dx + p * in_plane;
      std::fill(d, d + in_plane, T(0));
      const T* gp = gout + p * out_plane;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
          const T v = gp[oh * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
          for (int64_t y = h0; y < h1; ++y)
            for (int64_t z = w0; z < w1; ++z) d[y * g.W + z] += v;
        }
      }
    }
  });
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dGeometry& g) {
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_pool2d_forward_impl<T>(x.data<T>(), out.data<T>(), indices.data<int64_t>(), g);
  });
}

void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_float(grad_out.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    max_pool2d_backward_impl<T>(grad_out.data<T>(), indices.data<int64_t>(), grad_x.data<T>(), g);
  });
}

void avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g) {
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    avg_pool2d_forward_impl<T>(x.data<T>(), out.data<T>(), g);
  });
}

void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_float(grad_out.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    avg_pool2d_backward_impl<T>(grad_out.data<T>(), grad_x.data<T>(), g);
  });
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g) {
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    adaptive_avg_pool2d_forward_impl<T>(x.data<T>(), out.data<T>(), g);
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_float(grad_out.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    adaptive_avg_pool2d_backward_impl<T>(grad_out.data<T>(), grad_x.data<T>(), g);
  });
}

}  // namespace ember::cpu
