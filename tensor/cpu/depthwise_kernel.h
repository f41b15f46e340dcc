// The inner loops of the depthwise convolution (tensor/ops/conv2d_cpu.cpp), over one plane, written
// per instruction set like the GEMM's micro-kernels (gemm.h): depthwise_kernel.cpp holds the
// portable C++ and the choice, depthwise_kernel_avx2.cpp and depthwise_kernel_avx512.cpp the
// vector versions, each compiled for its instruction set and used when the processor has it
// (cpu_isa(): EMBER_CPU_ISA or the best supported).
//
// Both loops read a plane laid out so that every tap of the filter is one shift of it (the
// polyphase layout of conv2d_cpu.cpp), `off[t]` elements apart:
//
//   taps_sum:  out[q] = init + Σ_t w[t] · in[q + off[t]]        q ∈ [0, n)
//   taps_dot:  acc[t] += Σ_q g[q] · in[q + off[t]]             t ∈ [0, taps)
//
//   deinterleave2:  even[k] = src[2k], odd[k] = src[2k + 1]   for the indices below n
//   interleave2:    dst[2k] = even[k], dst[2k + 1] = odd[k]   for the indices below n
//
// taps_sum is the forward pass (in = the input's phases, off = each tap's shift) and, read the
// other way round, the input gradient (in = the output gradient, off = minus the shifts): a gather,
// so each output element is written once, from accumulators kept in registers across all taps
// (a loop per tap instead would load and store the whole output once per tap). Each element's
// taps are summed in the order t = 0, 1, …, as the plain loop does. taps_dot is the weight
// gradient: the taps' dot products with one gradient plane, sharing each load of g. The
// (de)interleaves split a row into the two column phases of a stride-2 convolution and merge them
// back; written out as scalar loops they cost more than the taps themselves. Offsets may be
// negative; every in[q + off[t]] read must lie inside the caller's buffer.
//
// The channels-last loops serve the late, small planes (6×6, 3×3 with 480…1152 channels), where a
// loop per plane is all overhead: values (position, channel) at position·C + channel, positions in
// units of C values, one vector of channels at a time with the sums in registers:
//
//   cl_taps_sum:  out[p·C + c] = init[c] + Σ_t wt[t·C + c] · src[(origin[p] + off[t])·C + c]   p < P
//   cl_taps_dot:  acc[t·C + c] += Σ_p g[p·C + c] · src[(origin[p] + off[t])·C + c]          t < taps
//
// cl_taps_sum is the forward (src the padded input, origin[p] output p's first tap) and, read the
// other way round, the input gradient at unit stride (src the zero-margined output gradient, off
// minus the shifts); it keeps four positions' sums across the taps, sharing each weight load.
// init may be null (0). cl_taps_dot is the weight gradient; it keeps several taps' sums across
// the positions, sharing each load of g. Each element's taps (and each tap's positions) are
// summed in order, as the plain loops do. The layouts are changed by
//
//   to_channels_last:    dst[pos[q] + c] = src[c·plane + q]      c < C, q < plane
//   from_channels_last:  dst[c·plane + q] = src[pos[q] + c]
//
// with pos[q] where position q's C values start in the channels-last buffer (its row pitch and
// padding folded in); the vector versions move 8×8 blocks through registers
// (tensor/cpu/channels_last_avx.h). pos and every offset in either buffer must fit in int32.
#pragma once
#include <cstdint>

#include "tensor/cpu/gemm.h"

namespace ember::cpu {

struct DepthwiseKernel {
  CpuIsa isa;
  void (*taps_sum)(const float* in, const int64_t* off, const float* w, int taps, float init, float* out, int64_t n);
  void (*taps_dot)(const float* g, const float* in, const int64_t* off, int taps, float* acc, int64_t n);
  void (*deinterleave2)(const float* src, int64_t n, float* even, float* odd);
  void (*interleave2)(const float* even, const float* odd, int64_t n, float* dst);
  void (*cl_taps_sum)(const float* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
                      const float* wt, const float* init, float* out);
  void (*cl_taps_dot)(const float* g, const float* src, int64_t C, const int64_t* origin, int64_t P,
                      const int64_t* off, int taps, float* acc);
  void (*to_channels_last)(const float* src, int64_t C, int64_t plane, const int32_t* pos, float* dst);
  void (*from_channels_last)(const float* src, const int32_t* pos, int64_t C, int64_t plane, float* dst);
};

DepthwiseKernel depthwise_kernel();  // the one for cpu_isa()
DepthwiseKernel depthwise_kernel_portable();
DepthwiseKernel depthwise_kernel_avx2();    // defined only in x86-64 builds
DepthwiseKernel depthwise_kernel_avx512();  // defined only in x86-64 builds

// The plain loops, for any element type: the portable kernel's body, and what f64 runs.
template <class T>
void taps_sum_scalar(const T* in, const int64_t* off, const T* w, int taps, T init, T* out, int64_t n) {
  for (int64_t q = 0; q < n; ++q) {
    T s = init;
    for (int t = 0; t < taps; ++t) s += w[t] * in[q + off[t]];
    out[q] = s;
  }
}

template <class T>
void taps_dot_scalar(const T* g, const T* in, const int64_t* off, int taps, T* acc, int64_t n) {
  for (int t = 0; t < taps; ++t) {
    const T* __restrict x = in + off[t];
    T s = 0;
    for (int64_t q = 0; q < n; ++q) s += g[q] * x[q];
    acc[t] += s;
  }
}

template <class T>
void deinterleave2_scalar(const T* src, int64_t n, T* even, T* odd) {
  for (int64_t z = 0; z < n; ++z) (z % 2 ? odd : even)[z / 2] = src[z];
}

template <class T>
void interleave2_scalar(const T* even, const T* odd, int64_t n, T* dst) {
  for (int64_t z = 0; z < n; ++z) dst[z] = (z % 2 ? odd : even)[z / 2];
}

template <class T>
void cl_taps_sum_scalar(const T* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
                        const T* wt, const T* init, T* out) {
  for (int64_t p = 0; p < P; ++p)
    for (int64_t c = 0; c < C; ++c) {
      T s = init ? init[c] : T(0);
      for (int t = 0; t < taps; ++t) s += wt[t * C + c] * src[(origin[p] + off[t]) * C + c];
      out[p * C + c] = s;
    }
}

template <class T>
void cl_taps_dot_scalar(const T* g, const T* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off,
                        int taps, T* acc) {
  for (int t = 0; t < taps; ++t)
    for (int64_t c = 0; c < C; ++c) {
      T s = 0;
      for (int64_t p = 0; p < P; ++p) s += g[p * C + c] * src[(origin[p] + off[t]) * C + c];
      acc[t * C + c] += s;
    }
}

template <class T>
void to_channels_last_scalar(const T* src, int64_t C, int64_t plane, const int32_t* pos, T* dst) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t q = 0; q < plane; ++q) dst[pos[q] + c] = src[c * plane + q];
}

template <class T>
void from_channels_last_scalar(const T* src, const int32_t* pos, int64_t C, int64_t plane, T* dst) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t q = 0; q < plane; ++q) dst[c * plane + q] = src[pos[q] + c];
}

}  // namespace ember::cpu
