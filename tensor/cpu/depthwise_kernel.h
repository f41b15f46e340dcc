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

}  // namespace ember::cpu
