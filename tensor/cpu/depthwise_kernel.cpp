// The portable depthwise loops (depthwise_kernel.h) and the choice of the kernel set by cpu_isa().
#include "tensor/cpu/depthwise_kernel.h"

namespace ember::cpu {

namespace {

void taps_sum_portable(const float* in, const int64_t* off, const float* w, int taps, float init, float* out,
                       int64_t n) {
  taps_sum_scalar(in, off, w, taps, init, out, n);
}

void taps_dot_portable(const float* g, const float* in, const int64_t* off, int taps, float* acc, int64_t n) {
  taps_dot_scalar(g, in, off, taps, acc, n);
}

void deinterleave2_portable(const float* src, int64_t n, float* even, float* odd) {
  deinterleave2_scalar(src, n, even, odd);
}

void interleave2_portable(const float* even, const float* odd, int64_t n, float* dst) {
  interleave2_scalar(even, odd, n, dst);
}

void cl_taps_sum_portable(const float* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
                          const float* wt, const float* init, float* out) {
  cl_taps_sum_scalar(src, C, origin, P, off, taps, wt, init, out);
}

void cl_taps_dot_portable(const float* g, const float* src, int64_t C, const int64_t* origin, int64_t P,
                          const int64_t* off, int taps, float* acc) {
  cl_taps_dot_scalar(g, src, C, origin, P, off, taps, acc);
}

void to_channels_last_portable(const float* src, int64_t C, int64_t plane, const int32_t* pos, float* dst) {
  to_channels_last_scalar(src, C, plane, pos, dst);
}

void from_channels_last_portable(const float* src, const int32_t* pos, int64_t C, int64_t plane, float* dst) {
  from_channels_last_scalar(src, pos, C, plane, dst);
}

}  // namespace

DepthwiseKernel depthwise_kernel_portable() {
  return {CpuIsa::portable,     taps_sum_portable,   taps_dot_portable, deinterleave2_portable, interleave2_portable,
          cl_taps_sum_portable, cl_taps_dot_portable, to_channels_last_portable, from_channels_last_portable};
}

DepthwiseKernel depthwise_kernel() {
#if defined(__x86_64__)
  switch (cpu_isa()) {
    case CpuIsa::avx512: return depthwise_kernel_avx512();
    case CpuIsa::avx2: return depthwise_kernel_avx2();
    case CpuIsa::portable: break;
  }
#endif
  return depthwise_kernel_portable();
}

}  // namespace ember::cpu
