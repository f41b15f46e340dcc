// Loops over strided tensors on the CPU.
//
// for_each_run walks N operands that share one shape (inputs already expanded, so a broadcast
// dim has stride 0) and calls body(ptrs, n, steps) for each run of n elements along the
// innermost dim, where ptrs[k] points at operand k's first element of the run and steps[k] is
// its stride (in elements) along the run. Outer runs are split across threads.
// map / map2 / map3 build elementwise kernels on it; when every operand is contiguous along
// the run the inner loop is a plain indexed loop the compiler vectorizes. Dims that all operands
// traverse contiguously are merged first (coalesce_dims), so runs are as long as they can be.
#pragma once
#include <array>
#include <cstdint>

#include "tensor/cpu/parallel.h"
#include "tensor/tensor.h"

namespace ember::cpu {

// Merges neighbouring dims that every operand steps through as one (stride[d] = stride[d+1] ·
// shape[d+1]) and drops dims of size 1, so a contiguous tensor is one long run however many
// dims it has: a (64, 96, 48, 48) activation is walked as one run of 14M elements, split
// across threads, instead of 295k runs of 48.
template <size_t N>
void coalesce_dims(Shape& shape, std::array<Shape, N>& strides) {
  Shape out_shape;
  std::array<Shape, N> out_strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out_shape.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = out_strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out_shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) out_strides[k].back() = strides[k][d];
    } else {
      out_shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out_strides[k].push_back(strides[k][d]);
    }
  }
  if (out_shape.empty()) {  // every dim had size 1: one element
    out_shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out_strides[k].push_back(1);
  }
  shape = std::move(out_shape);
  strides = std::move(out_strides);
}

template <size_t N, class Body>
void for_each_run(const Shape& shape_in, const std::array<Shape, N>& strides_in, const std::array<char*, N>& base,
                  const std::array<size_t, N>& itemsize, Body&& body) {
  if (shape_numel(shape_in) == 0) return;
  if (shape_in.empty()) {
    std::array<int64_t, N> steps{};
    body(base, int64_t{1}, steps);
    return;
  }
  Shape shape = shape_in;
  std::array<Shape, N> strides = strides_in;
  coalesce_dims(shape, strides);
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t inner = shape[nd - 1];
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = strides[k][nd - 1];
  if (nd == 1) {  // one run: split it across threads
    parallel_for(inner, 32768, [&](int64_t begin, int64_t end) {
      std::array<char*, N> ptrs;
      for (size_t k = 0; k < N; ++k) ptrs[k] = base[k] + begin * steps[k] * static_cast<int64_t>(itemsize[k]);
      body(ptrs, end - begin, steps);
    });
    return;
  }
  const int64_t outer = shape_numel(shape) / inner;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1));
  parallel_for(outer, grain, [&](int64_t begin, int64_t end) {
    // multi-index of run `begin` over dims [0, nd-1)
    std::array<int64_t, 16> idx{};
    int64_t rem = begin;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    for (int64_t r = begin; r < end; ++r) {
      std::array<char*, N> ptrs;
      for (size_t k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int64_t d = 0; d < nd - 1; ++d) off += idx[d] * strides[k][d];
        ptrs[k] = base[k] + off * static_cast<int64_t>(itemsize[k]);
      }
      body(ptrs, inner, steps);
      for (int64_t d = nd - 2; d >= 0; --d) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

// out[i] = f(a[i]) with a of out's shape (after expand).
template <class TO, class TA, class F>
void map(const Tensor& out, const Tensor& a, F f) {
  EMBER_CHECK(out.dim() <= 16, "cpu loops: at most 16 dims, got ", out.dim());
  for_each_run<2>(out.shape(), {out.strides(), a.strides()},
                  {static_cast<char*>(out.data_ptr()), static_cast<char*>(a.data_ptr())},
                  {sizeof(TO), sizeof(TA)}, [&](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& s) {
                    TO* o = reinterpret_cast<TO*>(p[0]);
                    const TA* x = reinterpret_cast<const TA*>(p[1]);
                    if (s[0] == 1 && s[1] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]]);
                    }
                  });
}

// out[i] = f(a[i], b[i]).
template <class TO, class TA, class TB, class F>
void map2(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  EMBER_CHECK(out.dim() <= 16, "cpu loops: at most 16 dims, got ", out.dim());
  for_each_run<3>(out.shape(), {out.strides(), a.strides(), b.strides()},
                  {static_cast<char*>(out.data_ptr()), static_cast<char*>(a.data_ptr()),
                   static_cast<char*>(b.data_ptr())},
                  {sizeof(TO), sizeof(TA), sizeof(TB)},
                  [&](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& s) {
                    TO* o = reinterpret_cast<TO*>(p[0]);
                    const TA* x = reinterpret_cast<const TA*>(p[1]);
                    const TB* y = reinterpret_cast<const TB*>(p[2]);
                    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
                    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
                      const TB yv = y[0];
                      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]]);
                    }
                  });
}

// out[i] = f(a[i], b[i], c[i]).
template <class TO, class TA, class TB, class TC, class F>
void map3(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  EMBER_CHECK(out.dim() <= 16, "cpu loops: at most 16 dims, got ", out.dim());
  for_each_run<4>(out.shape(), {out.strides(), a.strides(), b.strides(), c.strides()},
                  {static_cast<char*>(out.data_ptr()), static_cast<char*>(a.data_ptr()),
                   static_cast<char*>(b.data_ptr()), static_cast<char*>(c.data_ptr())},
                  {sizeof(TO), sizeof(TA), sizeof(TB), sizeof(TC)},
                  [&](const std::array<char*, 4>& p, int64_t n, const std::array<int64_t, 4>& s) {
                    TO* o = reinterpret_cast<TO*>(p[0]);
                    const TA* x = reinterpret_cast<const TA*>(p[1]);
                    const TB* y = reinterpret_cast<const TB*>(p[2]);
                    const TC* z = reinterpret_cast<const TC*>(p[3]);
                    for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]], z[i * s[3]]);
                  });
}

}  // namespace ember::cpu
