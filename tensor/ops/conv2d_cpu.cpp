// CPU conv2d: im2col + GEMM (cpu::gemm, tensor/cpu/gemm.h) for dense and grouped convs, direct
// kernels over polyphase planes for depthwise.
// The math and shapes are in conv2d.h. Every tensor here is contiguous.
#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "tensor/cpu/depthwise_kernel.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/scratch.h"
#include "tensor/ops/conv2d_kernels.h"

namespace ember::cpu {

namespace {

// A row-major (rows, cols) matrix at p, and its transpose, as cpu::gemm operands.
template <class T>
MatrixView<T> rm(const T* p, int64_t cols) {
  return {p, cols, 1};
}
template <class T>
MatrixView<T> rm_t(const T* p, int64_t cols) {
  return {p, 1, cols};
}

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

// Per kernel column j (row i): the output columns (rows) whose tap reads inside the input.
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
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.Hp() == g.H && g.Wp() == g.W;
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

// Splits the batch into chunks: one per thread when the batch fills the threads, each running
// its GEMMs single-threaded, else a single chunk.
int64_t batch_chunks(int64_t N) {
  const int64_t threads = num_threads();
  return N >= threads ? threads : 1;
}

// ---- dense and grouped ------------------------------------------------------------

// ---- 1×1 convs on small planes: one GEMM over the whole batch -----------------------
//
// Per sample a 1×1 conv is (O, C)·(C, P) with P = H·W; late in EfficientNet P is 16, 9, 4 or
// 1 (the SE convs), far too thin for a GEMM. Gathering the batch as X (C, N·P) makes it ONE
//   forward          Y (O, N·P) = w · X,        then scattered to out (N, O, P) plus bias
//   backward input   dX (C, N·P) = wᵀ · G,      G = gout gathered as (O, N·P)
//   backward weight  dw (O, C)   = G · Xᵀ
// each split across the threads (columns of the result, or rows of dw) as single-threaded
// GEMMs: one parallel region per call.
//
// The gathers and scatters are passes over memory of their own, so above 4×4 the per-sample
// GEMMs win. Measured 2026-11-29 (bench_conv2d, the 1×1 layers of cpu/{effnet_b0_cifar_b64,
// lite0_96_b64,lite0_112_b64}/layer, forward + both backward, summed; two alternating rounds;
// EMBER_CONV_1X1_BATCH sets the largest batched plane): planes 12×12…16×16 batched 69–84 ms,
// per sample 43–48; 6×6…8×8 batched 171–199, per sample 159–169; 2×2…4×4 batched 262–297, per
// sample 388–431.
constexpr int64_t kBatchedGemmMaxPlane = 16;

bool batched_1x1(const Conv2dGeometry& g) {
  static const int64_t max_plane = [] {
    const char* e = std::getenv("EMBER_CONV_1X1_BATCH");
    return e ? std::atoll(e) : kBatchedGemmMaxPlane;
  }();
  return needs_no_im2col(g) && g.groups == 1 && g.H * g.W <= max_plane;
}

// (N, C, P) -> (C, N·P) and back, a block of channels per thread.
template <class T>
void batch_to_columns(const T* src, int64_t N, int64_t C, int64_t P, T* dst) {
  parallel_for(C, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n = 0; n < N; ++n) std::copy_n(src + (n * C + c) * P, P, dst + (c * N + n) * P);
  });
}
template <class T>
void columns_to_batch(const T* src, int64_t N, int64_t C, int64_t P, T* dst) {
  parallel_for(C, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n = 0; n < N; ++n) std::copy_n(src + (c * N + n) * P, P, dst + (n * C + c) * P);
  });
}

template <class T>
void batched_1x1_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const int64_t P = g.H * g.W, NP = g.N * P;
  T* xcols = thread_scratch<T>(kConvColumns0, g.C * NP);  // (C, N·P)
  T* ycols = thread_scratch<T>(kConvColumns1, g.O * NP);  // (O, N·P)
  batch_to_columns(x, g.N, g.C, P, xcols);
  parallel_for(NP, 64, [&](int64_t b, int64_t e) {  // a block of columns per thread
    gemm<T>(g.O, e - b, g.C, rm(w, g.C), rm(xcols + b, NP), ycols + b, NP, false);
  });
  parallel_for(g.O, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t n = 0; n < g.N; ++n) {
        const T* src = ycols + (o * g.N + n) * P;
        T* dst = out + (n * g.O + o) * P;
        const T b = bias ? bias[o] : T(0);
        for (int64_t q = 0; q < P; ++q) dst[q] = src[q] + b;
      }
  });
}

template <class T>
void batched_1x1_backward_input(const T* gout, const T* w, T* dx, const Conv2dGeometry& g) {
  const int64_t P = g.H * g.W, NP = g.N * P;
  T* gcols = thread_scratch<T>(kConvColumns0, g.O * NP);   // (O, N·P)
  T* dxcols = thread_scratch<T>(kConvColumns1, g.C * NP);  // (C, N·P)
  batch_to_columns(gout, g.N, g.O, P, gcols);
  parallel_for(NP, 64, [&](int64_t b, int64_t e) {
    gemm<T>(g.C, e - b, g.O, rm_t(w, g.C), rm(gcols + b, NP), dxcols + b, NP, false);
  });
  columns_to_batch(dxcols, g.N, g.C, P, dx);
}

template <class T>
void batched_1x1_backward_weight(const T* gout, const T* x, T* dw, const Conv2dGeometry& g) {
  const int64_t P = g.H * g.W, NP = g.N * P;
  T* gcols = thread_scratch<T>(kConvColumns0, g.O * NP);  // (O, N·P)
  T* xcols = thread_scratch<T>(kConvColumns1, g.C * NP);  // (C, N·P)
  batch_to_columns(gout, g.N, g.O, P, gcols);
  batch_to_columns(x, g.N, g.C, P, xcols);
  parallel_for(g.O, 8, [&](int64_t b, int64_t e) {  // a block of rows of dw per thread
    gemm<T>(e - b, g.C, NP, rm(gcols + b * NP, NP), rm_t(xcols, NP), dw + b * g.C, g.C, false);
  });
}

template <class T>
void dense_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const int64_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW;
  const bool direct = needs_no_im2col(g);
  const auto rows = row_ranges(g), cols = column_ranges(g);
  const int64_t chunks = batch_chunks(g.N);
  const int64_t tile = std::max<int64_t>(256, (256 * 1024 / sizeof(T)) / g.Og / 64 * 64);  // ~256 KiB of output
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> col(direct ? 0 : K * P);  // (K, P)
    for (int64_t n = g.N * c0 / chunks; n < g.N * c1 / chunks; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;  // (Cg, H, W)
        if (!direct) im2col(xg, col.data(), g, rows, cols);
        const T* colm = direct ? xg : col.data();  // (K, P)
        const T* wg = w + grp * g.Og * K;           // (Og, K)
        // Start from the bias and accumulate the GEMM onto it, a tile of columns at a time so
        // that the tile stays in cache between the two: the output is then written to memory
        // once, which is what bounds the time when K is small (1×1 convs).
        T* og = out + (n * g.O + grp * g.Og) * P;  // (Og, P)
        for (int64_t p0 = 0; p0 < P; p0 += tile) {
          const int64_t cols = std::min(tile, P - p0);
          for (int64_t o = 0; o < g.Og; ++o)
            std::fill(og + o * P + p0, og + o * P + p0 + cols, bias ? bias[grp * g.Og + o] : T(0));
          gemm<T>(g.Og, cols, K, rm(wg, K), rm(colm + p0, P), og + p0, P, true);
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
        const T* gg = gout + (n * g.O + grp * g.Og) * P;  // (Og, P)
        const T* wg = w + grp * g.Og * K;                  // (Og, K)
        T* dxg = dx + (n * g.C + grp * g.Cg) * g.H * g.W;  // (Cg, H, W)
        if (direct) {
          gemm<T>(K, P, g.Og, rm_t(wg, K), rm(gg, P), dxg, P, false);
        } else {
          gemm<T>(K, P, g.Og, rm_t(wg, K), rm(gg, P), dcol.data(), P, false);
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
          const T* colm = direct ? xg : col.data();             // (K, P)
          const T* gg = gout + (n * g.O + grp * g.Og) * P;      // (Og, P)
          gemm<T>(g.Og, K, P, rm(gg, P), rm_t(colm, P), partial[chunk].data() + grp * g.Og * K, K, true);
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
//
// Polyphase planes. Element (r, c) of the zero-padded input plane (Hp, Wp) = (H + 2·ph + eh, W + 2·pw + ew)
// goes to phase (r mod sh, c mod sw) at (r div sh, c div sw); each phase plane is
// (Hq, Wq) = (⌈Hp/sh⌉, ⌈Wp/sw⌉). Tap (i, j) then reads ONE phase plane, shifted by
// (a, b) = ((i·dh) div sh, (j·dw) div sw):   out[oh, ow] += w[i, j] · phase[oh + a, ow + b].
// Laying the output out with the same row pitch Wq makes every tap one contiguous loop
//   acc[q] += w[i, j] · phase[q + a·Wq + b],   q ∈ [0, L),  L = (OH − 1)·Wq + OW,
// which vectorizes fully whatever the stride and however short the rows (14 wide late in
// EfficientNet). Columns [OW, Wq) of acc are junk, dropped when copying out. For unit stride
// there is one phase: the padded plane itself. The backward passes use the same layout:
//   dphase[q + shift] += w · gacc[q]      and      dw[i, j] = Σ_q gacc[q] · phase[q + shift],
// with gacc (gout at row pitch Wq) keeping its junk columns at zero.

struct PhaseLayout {
  int64_t Hq, Wq, plane, L;     // one phase plane is (Hq, Wq), plane = Hq·Wq elements
  int64_t size;                 // all sh·sw phase planes
  std::vector<int64_t> shift;   // per tap i·kw + j: where its loop starts in the phase buffer
};

PhaseLayout phase_layout(const Conv2dGeometry& g) {
  PhaseLayout p;
  p.Hq = (g.Hp() + g.sh - 1) / g.sh;
  p.Wq = (g.Wp() + g.sw - 1) / g.sw;
  p.plane = p.Hq * p.Wq;
  p.L = (g.OH - 1) * p.Wq + g.OW;
  p.size = g.sh * g.sw * p.plane;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t phase = (i * g.dh % g.sh) * g.sw + j * g.dw % g.sw;
      p.shift.push_back(phase * p.plane + (i * g.dh / g.sh) * p.Wq + j * g.dw / g.sw);
    }
  return p;
}

// The per-plane loops of depthwise_kernel.h: f32 runs the kernel of the processor's instruction
// set, f64 (the tests' reference dtype) the plain loops.
template <class T>
struct TapLoops {
  DepthwiseKernel k = depthwise_kernel();
  void sum(const T* in, const int64_t* off, const T* w, int taps, T init, T* out, int64_t n) const {
    if constexpr (std::is_same_v<T, float>) k.taps_sum(in, off, w, taps, init, out, n);
    else taps_sum_scalar(in, off, w, taps, init, out, n);
  }
  void dot(const T* g, const T* in, const int64_t* off, int taps, T* acc, int64_t n) const {
    if constexpr (std::is_same_v<T, float>) k.taps_dot(g, in, off, taps, acc, n);
    else taps_dot_scalar(g, in, off, taps, acc, n);
  }
  void deinterleave2(const T* src, int64_t n, T* even, T* odd) const {
    if constexpr (std::is_same_v<T, float>) k.deinterleave2(src, n, even, odd);
    else deinterleave2_scalar(src, n, even, odd);
  }
  void interleave2(const T* even, const T* odd, int64_t n, T* dst) const {
    if constexpr (std::is_same_v<T, float>) k.interleave2(even, odd, n, dst);
    else interleave2_scalar(even, odd, n, dst);
  }
  void cl_sum(const T* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps, const T* wt,
              const T* init, T* out) const {
    if constexpr (std::is_same_v<T, float>) k.cl_taps_sum(src, C, origin, P, off, taps, wt, init, out);
    else cl_taps_sum_scalar(src, C, origin, P, off, taps, wt, init, out);
  }
  void cl_dot(const T* g, const T* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
              T* acc) const {
    if constexpr (std::is_same_v<T, float>) k.cl_taps_dot(g, src, C, origin, P, off, taps, acc);
    else cl_taps_dot_scalar(g, src, C, origin, P, off, taps, acc);
  }
  void to_cl(const T* src, int64_t C, int64_t plane, const int32_t* pos, T* dst) const {
    if constexpr (std::is_same_v<T, float>) k.to_channels_last(src, C, plane, pos, dst);
    else to_channels_last_scalar(src, C, plane, pos, dst);
  }
  void from_cl(const T* src, const int32_t* pos, int64_t C, int64_t plane, T* dst) const {
    if constexpr (std::is_same_v<T, float>) k.from_channels_last(src, pos, C, plane, dst);
    else from_channels_last_scalar(src, pos, C, plane, dst);
  }
};



// Input plane x (H, W) -> its phases (positions of the padding are not written: they stay 0).
// Input column z goes to column phase (z + pw) mod sw at (z + pw) div sw: for stride 2 a row's
// even columns to one phase and its odd columns to the other, one deinterleave.
template <class T>
void to_phases(const T* x, const Conv2dGeometry& g, const PhaseLayout& p, const TapLoops<T>& loops, T* phases) {
  for (int64_t y = 0; y < g.H; ++y) {
    const int64_t r = y + g.ph;
    T* row = phases + (r % g.sh) * g.sw * p.plane + (r / g.sh) * p.Wq;  // phase (r mod sh, 0)
    const T* xrow = x + y * g.W;
    if (g.sw == 1) {
      std::copy(xrow, xrow + g.W, row + g.pw);
    } else if (g.sw == 2) {
      loops.deinterleave2(xrow, g.W, row + (g.pw % 2) * p.plane + g.pw / 2, row + ((g.pw + 1) % 2) * p.plane + (g.pw + 1) / 2);
    } else {
      for (int64_t pc = 0; pc < g.sw; ++pc) {  // input columns z with (z + pw) mod sw = pc
        const int64_t z0 = ((pc - g.pw) % g.sw + g.sw) % g.sw;
        T* dst = row + pc * p.plane + (z0 + g.pw) / g.sw;
        for (int64_t z = z0, k = 0; z < g.W; z += g.sw, ++k) dst[k] = xrow[z];
      }
    }
  }
}

// The inverse: phases -> plane dx (H, W), reading only the positions of real input.
template <class T>
void from_phases(const T* phases, const Conv2dGeometry& g, const PhaseLayout& p, const TapLoops<T>& loops, T* dx) {
  for (int64_t y = 0; y < g.H; ++y) {
    const int64_t r = y + g.ph;
    const T* row = phases + (r % g.sh) * g.sw * p.plane + (r / g.sh) * p.Wq;
    T* dxrow = dx + y * g.W;
    if (g.sw == 1) {
      std::copy(row + g.pw, row + g.pw + g.W, dxrow);
    } else if (g.sw == 2) {
      loops.interleave2(row + (g.pw % 2) * p.plane + g.pw / 2, row + ((g.pw + 1) % 2) * p.plane + (g.pw + 1) / 2, g.W, dxrow);
    } else {
      for (int64_t pc = 0; pc < g.sw; ++pc) {
        const int64_t z0 = ((pc - g.pw) % g.sw + g.sw) % g.sw;
        const T* src = row + pc * p.plane + (z0 + g.pw) / g.sw;
        for (int64_t z = z0, k = 0; z < g.W; z += g.sw, ++k) dxrow[z] = src[k];
      }
    }
  }
}

// Between a dense (rows, cols) plane and one with row pitch `pitch`.
template <class T>
void copy_to_pitch(const T* src, int64_t rows, int64_t cols, T* dst, int64_t pitch) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * cols, src + (r + 1) * cols, dst + r * pitch);
}
template <class T>
void copy_from_pitch(const T* src, int64_t pitch, int64_t rows, int64_t cols, T* dst) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * pitch, src + r * pitch + cols, dst + r * cols);
}

// out (N, O, OH, OW): one task per output plane,  acc[q] = bias + Σ_t w[t] · phases[q + shift[t]].
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), KK = g.kh * g.kw;
  const PhaseLayout p = phase_layout(g);
  const TapLoops<T> loops;
  parallel_for(g.N * g.O, std::max<int64_t>(1, 32768 / std::max<int64_t>(p.L * KK, 1)), [&](int64_t b, int64_t e) {
    std::vector<T> phases(p.size, T(0));  // the padding stays 0
    std::vector<T> acc(p.L);              // (OH, Wq), the last row cut at OW
    int64_t loaded = -1;                  // the input plane in `phases` (M outputs share one)
    for (int64_t plane = b; plane < e; ++plane) {
      const int64_t n = plane / g.O, o = plane % g.O, xplane = n * g.C + o / M;
      if (xplane != loaded) to_phases(x + xplane * g.H * g.W, g, p, loops, phases.data());
      loaded = xplane;
      loops.sum(phases.data(), p.shift.data(), w + o * KK, static_cast<int>(KK), bias ? bias[o] : T(0), acc.data(), p.L);
      copy_from_pitch(acc.data(), p.Wq, g.OH, g.OW, out + plane * g.OH * g.OW);
    }
  });
}

// dx (N, C, H, W): one task per input plane. The forward's scatter read backwards is a gather per
// phase plane φ: with d_t = tap t's shift within its phase plane,
//   dphase_φ[r] = Σ_{o reading c} Σ_{taps t of φ} w[o, t] · gacc_o[r − d_t],     r ∈ [0, Hq·Wq),
// where gacc_o is gout's plane o at row pitch Wq (junk columns 0), preceded by `front` = max d_t
// zeros and followed by zeros up to the plane's size, so that every read lands in the buffer. The
// M planes gacc_o lie `stride` apart, so each phase is one taps_sum over M·|taps of φ| taps, summed
// per element in the order o, then t (the order of the loop this replaces).
template <class T>
void depthwise_backward_input(const T* gout, const T* w, T* dx, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), KK = g.kh * g.kw, phases = g.sh * g.sw;
  const PhaseLayout p = phase_layout(g);
  const TapLoops<T> loops;
  int64_t front = 0;
  for (int64_t t = 0; t < KK; ++t) front = std::max(front, p.shift[t] % p.plane);
  const int64_t stride = front + p.plane;
  // Per phase: its taps (o - c·M, t) and their offsets into the gacc buffer.
  std::vector<std::vector<int64_t>> tap_of(phases), off_of(phases);
  for (int64_t j = 0; j < M; ++j)
    for (int64_t t = 0; t < KK; ++t) {
      const int64_t phase = p.shift[t] / p.plane;
      tap_of[phase].push_back(j * KK + t);
      off_of[phase].push_back(j * stride - p.shift[t] % p.plane);
    }
  parallel_for(g.N * g.C, std::max<int64_t>(1, 32768 / std::max<int64_t>(M * p.L * KK, 1)), [&](int64_t b, int64_t e) {
    std::vector<T> gacc(M * stride, T(0));  // the padding and junk columns stay 0
    std::vector<T> dphases(p.size), wt(M * KK);
    for (int64_t plane = b; plane < e; ++plane) {
      const int64_t n = plane / g.C, c = plane % g.C;
      for (int64_t j = 0; j < M; ++j)
        copy_to_pitch(gout + (n * g.O + c * M + j) * g.OH * g.OW, g.OH, g.OW, gacc.data() + j * stride + front, p.Wq);
      for (int64_t phase = 0; phase < phases; ++phase) {
        const auto& taps = tap_of[phase];
        for (size_t i = 0; i < taps.size(); ++i) wt[i] = w[c * M * KK + taps[i]];
        loops.sum(gacc.data() + front, off_of[phase].data(), wt.data(), static_cast<int>(taps.size()), T(0),
                  dphases.data() + phase * p.plane, p.plane);
      }
      from_phases(dphases.data(), g, p, loops, dx + plane * g.H * g.W);
    }
  });
}

// dw (O, 1, kh, kw): one task per output channel; per sample, the taps' dot products with gacc,
// summed in T per sample and in double across samples.
template <class T>
void depthwise_backward_weight(const T* gout, const T* x, T* dw, const Conv2dGeometry& g) {
  const int64_t M = g.multiplier(), KK = g.kh * g.kw;
  const PhaseLayout p = phase_layout(g);
  const TapLoops<T> loops;
  parallel_for(g.O, 1, [&](int64_t b, int64_t e) {
    std::vector<T> phases(p.size, T(0)), gacc(p.L, T(0)), part(KK);  // padding and junk columns stay 0
    std::vector<double> acc(KK);
    for (int64_t o = b; o < e; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < g.N; ++n) {
        to_phases(x + (n * g.C + o / M) * g.H * g.W, g, p, loops, phases.data());
        copy_to_pitch(gout + (n * g.O + o) * g.OH * g.OW, g.OH, g.OW, gacc.data(), p.Wq);
        std::fill(part.begin(), part.end(), T(0));
        loops.dot(gacc.data(), phases.data(), p.shift.data(), static_cast<int>(KK), part.data(), p.L);
        for (int64_t t = 0; t < KK; ++t) acc[t] += static_cast<double>(part[t]);
      }
      for (int64_t t = 0; t < KK; ++t) dw[o * KK + t] = static_cast<T>(acc[t]);
    }
  });
}

// ---- depthwise, channels-last (multiplier 1) ---------------------------------------
//
// Late in EfficientNet the planes are tiny (6×6, 3×3 at 96×96) and the channels many
// (480…1152): a loop per plane is all overhead there. Instead each sample is transposed to
// channels-last, into a zero-padded buffer xp (Hp, Wp, C), and every output position is a vector
// loop over channels:
//   out[p, c] = bias[c] + Σ_t wt[t, c] · xp[p's tap t, c],    wt (kh·kw, C) = w transposed,
// with the sums of four positions × one vector of channels in registers across the taps
// (cl_taps_sum of depthwise_kernel.h). The weight gradient dw[c, t] = Σ_{n,p} gt[p, c] ·
// xp[tap t of p, c] keeps several taps' sums in registers across the positions (cl_taps_dot).
// The input gradient at unit stride is the forward's loop over a zero-margined copy of the
// gradient (ChannelsLastGather); at larger strides it scatters, dxp[tap t of p, c] += wt[t, c] ·
// gt[p, c] by kChannelBlock channels, then is cropped and transposed back. One task per sample.

constexpr int64_t kChannelBlock = 64;

// A plane (C, rows, cols) and its channels-last copy (position (r, q) at (r·row_pitch + q)·C): the
// offsets pos of to_channels_last / from_channels_last (depthwise_kernel.h).
struct ChannelsLastRows {
  std::vector<int32_t> pos;
  int64_t plane;
  ChannelsLastRows(int64_t rows, int64_t cols, int64_t row_pitch, int64_t C) : plane(rows * cols) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t q = 0; q < cols; ++q) pos.push_back(static_cast<int32_t>((r * row_pitch + q) * C));
  }
  template <class T>
  void to(const TapLoops<T>& loops, const T* planes, int64_t C, T* cl) const {
    loops.to_cl(planes, C, plane, pos.data(), cl);
  }
  template <class T>
  void from(const TapLoops<T>& loops, const T* cl, int64_t C, T* planes) const {
    loops.from_cl(cl, pos.data(), C, plane, planes);
  }
};

struct ChannelsLast {
  int64_t Hp, Wp, P, KK;
  std::vector<int64_t> tap;     // per tap t = i·kw + j: its offset in xp, in positions
  std::vector<int64_t> origin;  // per output position p = oh·OW + ow: where its taps start in xp
  explicit ChannelsLast(const Conv2dGeometry& g)
      : Hp(g.Hp()), Wp(g.Wp()), P(g.OH * g.OW), KK(g.kh * g.kw) {
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) tap.push_back(i * g.dh * Wp + j * g.dw);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) origin.push_back(oh * g.sh * Wp + ow * g.sw);
  }
};

// The gather form of the input gradient at unit stride: input (y, x) takes tap (i, j) from output
// (y + ph − i·dh, x + pw − j·dw). The gradient is laid out channels-last in a zero-margined buffer
// gp (Hg, Wg, C), output (oh, ow) at (oh + mh, ow + mw) with mh = (kh − 1)·dh, mw = (kw − 1)·dw,
// large enough that every tap of every input position reads inside it (zeros where no output is).
struct ChannelsLastGather {
  int64_t mh, mw, Hg, Wg;
  std::vector<int64_t> tap;     // per tap: its offset from the origin, in positions (≤ 0)
  std::vector<int64_t> origin;  // per input position y·W + x
  explicit ChannelsLastGather(const Conv2dGeometry& g)
      : mh((g.kh - 1) * g.dh), mw((g.kw - 1) * g.dw),
        Hg(std::max(g.H + g.ph, g.OH) + mh), Wg(std::max(g.W + g.pw, g.OW) + mw) {
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) tap.push_back(-(i * g.dh * Wg + j * g.dw));
    for (int64_t y = 0; y < g.H; ++y)
      for (int64_t x = 0; x < g.W; ++x) origin.push_back((y + g.ph + mh) * Wg + x + g.pw + mw);
  }
};

template <class T>
std::vector<T> weights_channels_last(const T* w, const Conv2dGeometry& g) {  // (kh·kw, C)
  const int64_t KK = g.kh * g.kw;
  std::vector<T> wt(KK * g.C);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < KK; ++t) wt[t * g.C + c] = w[c * KK + t];
  return wt;
}

template <class T>
void depthwise_cl_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dGeometry& g) {
  const ChannelsLast L(g);
  const int64_t C = g.C;
  const std::vector<T> wt = weights_channels_last(w, g);
  const TapLoops<T> loops;
  const ChannelsLastRows in_rows(g.H, g.W, L.Wp, C), out_rows(g.OH, g.OW, g.OW, C);
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    std::vector<T> xp(L.Hp * L.Wp * C, T(0));  // (Hp, Wp, C), the padding stays 0
    std::vector<T> ot(L.P * C);                // (OH·OW, C)
    for (int64_t n = b; n < e; ++n) {
      in_rows.to(loops, x + n * C * g.H * g.W, C, xp.data() + (g.ph * L.Wp + g.pw) * C);
      loops.cl_sum(xp.data(), C, L.origin.data(), L.P, L.tap.data(), static_cast<int>(L.KK), wt.data(), bias, ot.data());
      out_rows.from(loops, ot.data(), C, out + n * C * L.P);
    }
  });
}

// Unit stride: the gather form (each input position's sum in registers, written once); larger
// strides: the scatter of every output position's taps into dxp.
template <class T>
void depthwise_cl_backward_input(const T* gout, const T* w, T* dx, const Conv2dGeometry& g) {
  const int64_t C = g.C;
  const std::vector<T> wt = weights_channels_last(w, g);
  const TapLoops<T> loops;
  if (g.sh == 1 && g.sw == 1) {
    const ChannelsLastGather G(g);
    const int64_t HW = g.H * g.W;
    const ChannelsLastRows g_rows(g.OH, g.OW, G.Wg, C), dx_rows(g.H, g.W, g.W, C);
    parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
      std::vector<T> gp(G.Hg * G.Wg * C, T(0));  // (Hg, Wg, C), the margins stay 0
      std::vector<T> dt(HW * C);                 // (H·W, C)
      for (int64_t n = b; n < e; ++n) {
        g_rows.to(loops, gout + n * C * g.OH * g.OW, C, gp.data() + (G.mh * G.Wg + G.mw) * C);
        loops.cl_sum(gp.data(), C, G.origin.data(), HW, G.tap.data(), static_cast<int>(g.kh * g.kw), wt.data(), nullptr,
                     dt.data());
        dx_rows.from(loops, dt.data(), C, dx + n * C * HW);
      }
    });
    return;
  }
  const ChannelsLast L(g);
  const ChannelsLastRows g_rows(g.OH, g.OW, g.OW, C), dx_rows(g.H, g.W, L.Wp, C);
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    std::vector<T> dxp(L.Hp * L.Wp * C);  // (Hp, Wp, C)
    std::vector<T> gt(L.P * C);           // (OH·OW, C)
    for (int64_t n = b; n < e; ++n) {
      g_rows.to(loops, gout + n * C * L.P, C, gt.data());
      std::fill(dxp.begin(), dxp.end(), T(0));
      for (int64_t c0 = 0; c0 < C; c0 += kChannelBlock) {
        const int64_t cb = std::min(kChannelBlock, C - c0);
        for (int64_t p = 0; p < L.P; ++p) {
          const T* __restrict gv = gt.data() + p * C + c0;
          T* dxo = dxp.data() + L.origin[p] * C + c0;
          for (int64_t t = 0; t < L.KK; ++t) {
            T* __restrict d = dxo + L.tap[t] * C;
            const T* __restrict wv = wt.data() + t * C + c0;
            for (int64_t c = 0; c < cb; ++c) d[c] += wv[c] * gv[c];
          }
        }
      }
      dx_rows.from(loops, dxp.data() + (g.ph * L.Wp + g.pw) * C, C, dx + n * C * g.H * g.W);
    }
  });
}

template <class T>
void depthwise_cl_backward_weight(const T* gout, const T* x, T* dw, const Conv2dGeometry& g) {
  const ChannelsLast L(g);
  const int64_t C = g.C, chunks = batch_chunks(g.N);
  const TapLoops<T> loops;
  const ChannelsLastRows x_rows(g.H, g.W, L.Wp, C), g_rows(g.OH, g.OW, g.OW, C);
  // Each chunk sums its samples into its own (kh·kw, C) partial, in T per sample and in
  // double across samples; the partials are added at the end.
  std::vector<std::vector<double>> partial(chunks, std::vector<double>(L.KK * C, 0.0));
  parallel_for(chunks, 1, [&](int64_t c0_, int64_t c1_) {
    std::vector<T> xp(L.Hp * L.Wp * C, T(0));  // (Hp, Wp, C), the padding stays 0
    std::vector<T> gt(L.P * C);                // (OH·OW, C)
    std::vector<T> acc(L.KK * C);              // (kh·kw, C) of one sample
    for (int64_t chunk = c0_; chunk < c1_; ++chunk) {
      for (int64_t n = g.N * chunk / chunks; n < g.N * (chunk + 1) / chunks; ++n) {
        x_rows.to(loops, x + n * C * g.H * g.W, C, xp.data() + (g.ph * L.Wp + g.pw) * C);
        g_rows.to(loops, gout + n * C * L.P, C, gt.data());
        std::fill(acc.begin(), acc.end(), T(0));
        loops.cl_dot(gt.data(), xp.data(), C, L.origin.data(), L.P, L.tap.data(), static_cast<int>(L.KK), acc.data());
        double* part = partial[chunk].data();
        for (int64_t k = 0; k < L.KK * C; ++k) part[k] += static_cast<double>(acc[k]);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < L.KK; ++t) {
      double s = 0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) s += partial[chunk][t * C + c];
      dw[c * L.KK + t] = static_cast<T>(s);
    }
}

// Channels-last for multiplier 1 and planes up to 8×8, or up to 32×32 at stride 2 (whose
// polyphase split is a scalar scatter); other planes run faster through the polyphase kernels
// (one long vector loop per tap, no transposes). Measured 2026-11-29 (2 threads, the profile of
// ember-bench-train, depthwise ms forward + backward over 5 steps, this rule vs channels-last up
// to 32×32): effnet_b0 at 32×32 455–470 vs 497–504, tf_efficientnet_lite0 at 96×96 995–1080 vs
// 1128–1134. EMBER_CONV_DW=1 forces polyphase, =2 channels-last (for measuring).
constexpr int64_t kChannelsLastMaxPlane = 8 * 8;
constexpr int64_t kChannelsLastMaxStridedPlane = 32 * 32;
bool use_channels_last(const Conv2dGeometry& g) {
  static const int mode = [] {
    const char* e = std::getenv("EMBER_CONV_DW");
    return e ? std::atoi(e) : 0;
  }();
  // The channels-last buffers are indexed in int32 (depthwise_kernel.h).
  const int64_t largest = std::max((g.Hp() + 1) * (g.Wp() + 1), (g.OH + 2 * g.kh * g.dh) * (g.OW + 2 * g.kw * g.dw)) * g.C;
  if (g.multiplier() != 1 || mode == 1 || largest >= (int64_t{1} << 31)) return false;
  return mode == 2 || g.H * g.W <= kChannelsLastMaxPlane || (g.sh > 1 && g.H * g.W <= kChannelsLastMaxStridedPlane);
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g) {
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    if (g.depthwise() && use_channels_last(g)) depthwise_cl_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
    else if (batched_1x1(g)) batched_1x1_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
    else if (g.depthwise()) depthwise_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
    else dense_forward<T>(x.data<T>(), w.data<T>(), b, out.data<T>(), g);
  });
}

void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g) {
  dispatch_float(w.dtype(), "conv2d_backward_input", [&](auto tag) {
    using T = decltype(tag);
    if (g.depthwise() && use_channels_last(g))
      depthwise_cl_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
    else if (batched_1x1(g)) batched_1x1_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
    else if (g.depthwise()) depthwise_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
    else dense_backward_input<T>(grad_out.data<T>(), w.data<T>(), grad_x.data<T>(), g);
  });
}

void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g) {
  dispatch_float(x.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    if (g.depthwise() && use_channels_last(g))
      depthwise_cl_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
    else if (batched_1x1(g)) batched_1x1_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
    else if (g.depthwise()) depthwise_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
    else dense_backward_weight<T>(grad_out.data<T>(), x.data<T>(), grad_w.data<T>(), g);
  });
}

}  // namespace ember::cpu
