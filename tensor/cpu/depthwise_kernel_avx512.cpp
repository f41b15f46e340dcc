// The AVX-512 depthwise loops (see depthwise_kernel.h). Compiled with -mavx512f (CMake: files named
// *_avx512.cpp) and called only when the processor has AVX-512F. No standard-library function is
// used here, so the linker cannot pick an AVX-512 copy of one for code that runs elsewhere.
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "tensor/cpu/depthwise_kernel.h"
#include "tensor/cpu/channels_last_avx.h"

namespace ember::cpu {

namespace {

constexpr int kLanes = 16;

// Lanes [0, r) of a vector, r in [1, 16].
__mmask16 first_lanes(int64_t r) { return r >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << r) - 1); }

// out[0, 16·V) (the last vector masked by `last`) over all taps: V accumulators in registers, one
// broadcast of w[t] and V loads per tap, each output stored once.
template <int V>
void sum_block(const float* in, const int64_t* off, const float* w, int taps, float init, float* out,
               __mmask16 last) {
  __m512 a[V];
#pragma GCC unroll 8
  for (int i = 0; i < V; ++i) a[i] = _mm512_set1_ps(init);
  for (int t = 0; t < taps; ++t) {
    const __m512 wv = _mm512_set1_ps(w[t]);
    const float* s = in + off[t];
#pragma GCC unroll 8
    for (int i = 0; i < V - 1; ++i) a[i] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(s + kLanes * i), a[i]);
    a[V - 1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(last, s + kLanes * (V - 1)), a[V - 1]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < V - 1; ++i) _mm512_storeu_ps(out + kLanes * i, a[i]);
  _mm512_mask_storeu_ps(out + kLanes * (V - 1), last, a[V - 1]);
}

// 8 vectors (8 independent FMA chains: enough to hide the FMA latency on both ports) per block.
constexpr int kSumVectors = 8;

void taps_sum_avx512(const float* in, const int64_t* off, const float* w, int taps, float init, float* out,
                     int64_t n) {
  int64_t q = 0;
  for (; q + kSumVectors * kLanes <= n; q += kSumVectors * kLanes)
    sum_block<kSumVectors>(in + q, off, w, taps, init, out + q, 0xFFFF);
  const int64_t rest = n - q;
  if (rest == 0) return;
  const __mmask16 last = first_lanes(rest - (rest - 1) / kLanes * kLanes);
  in += q, out += q;
  switch ((rest + kLanes - 1) / kLanes) {
    case 1: sum_block<1>(in, off, w, taps, init, out, last); break;
    case 2: sum_block<2>(in, off, w, taps, init, out, last); break;
    case 3: sum_block<3>(in, off, w, taps, init, out, last); break;
    case 4: sum_block<4>(in, off, w, taps, init, out, last); break;
    case 5: sum_block<5>(in, off, w, taps, init, out, last); break;
    case 6: sum_block<6>(in, off, w, taps, init, out, last); break;
    case 7: sum_block<7>(in, off, w, taps, init, out, last); break;
    default: sum_block<8>(in, off, w, taps, init, out, last); break;
  }
}

float sum_lanes(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  __m128 s = _mm512_castps512_ps128(v);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// G taps' dot products with g: G accumulators, one load of g and G loads of the plane per step.
template <int G>
void dot_group(const float* g, const float* in, const int64_t* off, float* acc, int64_t n) {
  __m512 s[G];
  const float* x[G];
#pragma GCC unroll 9
  for (int t = 0; t < G; ++t) s[t] = _mm512_setzero_ps(), x[t] = in + off[t];
  int64_t q = 0;
  for (; q + kLanes <= n; q += kLanes) {
    const __m512 gv = _mm512_loadu_ps(g + q);
#pragma GCC unroll 9
    for (int t = 0; t < G; ++t) s[t] = _mm512_fmadd_ps(gv, _mm512_loadu_ps(x[t] + q), s[t]);
  }
  if (q < n) {
    const __mmask16 m = first_lanes(n - q);
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + q);
#pragma GCC unroll 9
    for (int t = 0; t < G; ++t) s[t] = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(m, x[t] + q), s[t]);
  }
#pragma GCC unroll 9
  for (int t = 0; t < G; ++t) acc[t] += sum_lanes(s[t]);
}

constexpr int kDotGroup = 9;  // a 3×3 filter in one pass; 9 accumulators + g + a load fit in 32 zmm

void taps_dot_avx512(const float* g, const float* in, const int64_t* off, int taps, float* acc, int64_t n) {
  for (int t0 = 0; t0 < taps; t0 += kDotGroup) {
    const int G = taps - t0 < kDotGroup ? taps - t0 : kDotGroup;
    switch (G) {
      case 1: dot_group<1>(g, in, off + t0, acc + t0, n); break;
      case 2: dot_group<2>(g, in, off + t0, acc + t0, n); break;
      case 3: dot_group<3>(g, in, off + t0, acc + t0, n); break;
      case 4: dot_group<4>(g, in, off + t0, acc + t0, n); break;
      case 5: dot_group<5>(g, in, off + t0, acc + t0, n); break;
      case 6: dot_group<6>(g, in, off + t0, acc + t0, n); break;
      case 7: dot_group<7>(g, in, off + t0, acc + t0, n); break;
      case 8: dot_group<8>(g, in, off + t0, acc + t0, n); break;
      default: dot_group<9>(g, in, off + t0, acc + t0, n); break;
    }
  }
}

// 32 values of src per step: two loads, two two-source permutes (even and odd lanes), two stores;
// the last step masked.
void deinterleave2_avx512(const float* src, int64_t n, float* even, float* odd) {
  const __m512i pick_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i pick_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t z = 0; z < n; z += 2 * kLanes, src += 2 * kLanes, even += kLanes, odd += kLanes) {
    const int64_t r = n - z;  // values left
    const __mmask16 m0 = first_lanes(r), m1 = r > kLanes ? first_lanes(r - kLanes) : __mmask16(0);
    const __m512 a = _mm512_maskz_loadu_ps(m0, src), b = _mm512_maskz_loadu_ps(m1, src + kLanes);
    _mm512_mask_storeu_ps(even, first_lanes((r + 1) / 2), _mm512_permutex2var_ps(a, pick_even, b));
    if (r > 1) _mm512_mask_storeu_ps(odd, first_lanes(r / 2), _mm512_permutex2var_ps(a, pick_odd, b));
  }
}

void interleave2_avx512(const float* even, const float* odd, int64_t n, float* dst) {
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t z = 0; z < n; z += 2 * kLanes, dst += 2 * kLanes, even += kLanes, odd += kLanes) {
    const int64_t r = n - z;
    const __m512 e = _mm512_maskz_loadu_ps(first_lanes((r + 1) / 2), even);
    const __m512 o = r > 1 ? _mm512_maskz_loadu_ps(first_lanes(r / 2), odd) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst, first_lanes(r), _mm512_permutex2var_ps(e, low, o));
    if (r > kLanes) _mm512_mask_storeu_ps(dst + kLanes, first_lanes(r - kLanes), _mm512_permutex2var_ps(e, high, o));
  }
}

// ---- channels-last: one vector of channels (the last masked) per block -------------------

// NP positions' sums in registers across the taps: one load of the weights and NP of src per tap.
// src, wt, init and out start at the block's first channel.
template <int NP>
void cl_sum_block(const float* src, int64_t C, const int64_t* origin, const int64_t* off, int taps, const float* wt,
                  const float* init, float* out, __mmask16 m) {
  __m512 a[NP];
  const float* s[NP];
  const __m512 a0 = init ? _mm512_maskz_loadu_ps(m, init) : _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < NP; ++k) a[k] = a0, s[k] = src + origin[k] * C;
  for (int t = 0; t < taps; ++t) {
    const __m512 wv = _mm512_maskz_loadu_ps(m, wt + t * C);
    const int64_t o = off[t] * C;
#pragma GCC unroll 4
    for (int k = 0; k < NP; ++k) a[k] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, s[k] + o), a[k]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < NP; ++k) _mm512_mask_storeu_ps(out + k * C, m, a[k]);
}

void cl_taps_sum_avx512(const float* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
                       const float* wt, const float* init, float* out) {
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const auto m = first_lanes(C - c0);
    const float* ini = init ? init + c0 : nullptr;
    int64_t p = 0;
    for (; p + 4 <= P; p += 4) cl_sum_block<4>(src + c0, C, origin + p, off, taps, wt + c0, ini, out + p * C + c0, m);
    for (; p < P; ++p) cl_sum_block<1>(src + c0, C, origin + p, off, taps, wt + c0, ini, out + p * C + c0, m);
  }
}

// G taps' sums in registers across the positions: one load of g and G of src per position.
// g, src and acc start at the block's first channel.
template <int G>
void cl_dot_group(const float* g, const float* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off,
                  float* acc, __mmask16 m) {
  __m512 s[G];
  int64_t o[G];
#pragma GCC unroll 8
  for (int t = 0; t < G; ++t) s[t] = _mm512_setzero_ps(), o[t] = off[t] * C;
  for (int64_t p = 0; p < P; ++p) {
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + p * C);
    const float* x = src + origin[p] * C;
#pragma GCC unroll 8
    for (int t = 0; t < G; ++t) s[t] = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(m, x + o[t]), s[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < G; ++t) _mm512_mask_storeu_ps(acc + t * C, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, acc + t * C), s[t]));
}

void cl_taps_dot_avx512(const float* g, const float* src, int64_t C, const int64_t* origin, int64_t P,
                       const int64_t* off, int taps, float* acc) {
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const auto m = first_lanes(C - c0);
    for_tap_groups(taps, [&](auto G, int t0) {
      cl_dot_group<decltype(G)::value>(g + c0, src + c0, C, origin, P, off + t0, acc + t0 * C + c0, m);
    });
  }
}

void to_channels_last_avx512(const float* src, int64_t C, int64_t plane, const int32_t* pos, float* dst) {
  to_channels_last_avx(src, C, plane, pos, dst);
}

void from_channels_last_avx512(const float* src, const int32_t* pos, int64_t C, int64_t plane, float* dst) {
  from_channels_last_avx(src, pos, C, plane, dst);
}

}  // namespace

DepthwiseKernel depthwise_kernel_avx512() {
  return {CpuIsa::avx512, taps_sum_avx512, taps_dot_avx512, deinterleave2_avx512, interleave2_avx512,
          cl_taps_sum_avx512, cl_taps_dot_avx512, to_channels_last_avx512, from_channels_last_avx512};
}

}  // namespace ember::cpu
