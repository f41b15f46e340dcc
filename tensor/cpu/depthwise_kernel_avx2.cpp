// The AVX2+FMA depthwise loops (see depthwise_kernel.h), the AVX-512 file's loops at 8 lanes.
// Compiled with -mavx2 -mfma (CMake: files named *_avx2.cpp) and called only when the processor has
// both. No standard-library function is used here (see gemm_kernel_avx2.cpp).
#include <immintrin.h>

#include "tensor/cpu/depthwise_kernel.h"
#include "tensor/cpu/channels_last_avx.h"

namespace ember::cpu {

namespace {

constexpr int kLanes = 8;

// A mask of lanes [0, r), r in [1, 8], for maskload / maskstore (lanes whose top bit is set).
__m256i first_lanes(int64_t r) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), iota);
}

template <int V>
void sum_block(const float* in, const int64_t* off, const float* w, int taps, float init, float* out, __m256i last) {
  __m256 a[V];
#pragma GCC unroll 8
  for (int i = 0; i < V; ++i) a[i] = _mm256_set1_ps(init);
  for (int t = 0; t < taps; ++t) {
    const __m256 wv = _mm256_broadcast_ss(w + t);
    const float* s = in + off[t];
#pragma GCC unroll 8
    for (int i = 0; i < V - 1; ++i) a[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + kLanes * i), a[i]);
    a[V - 1] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(s + kLanes * (V - 1), last), a[V - 1]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < V - 1; ++i) _mm256_storeu_ps(out + kLanes * i, a[i]);
  _mm256_maskstore_ps(out + kLanes * (V - 1), last, a[V - 1]);
}

// 8 accumulators + the broadcast weight + a load: 10 of the 16 ymm registers.
constexpr int kSumVectors = 8;

void taps_sum_avx2(const float* in, const int64_t* off, const float* w, int taps, float init, float* out, int64_t n) {
  int64_t q = 0;
  const __m256i all = _mm256_set1_epi32(-1);
  for (; q + kSumVectors * kLanes <= n; q += kSumVectors * kLanes)
    sum_block<kSumVectors>(in + q, off, w, taps, init, out + q, all);
  const int64_t rest = n - q;
  if (rest == 0) return;
  const __m256i last = first_lanes(rest - (rest - 1) / kLanes * kLanes);
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

float sum_lanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int G>
void dot_group(const float* g, const float* in, const int64_t* off, float* acc, int64_t n) {
  __m256 s[G];
  const float* x[G];
#pragma GCC unroll 9
  for (int t = 0; t < G; ++t) s[t] = _mm256_setzero_ps(), x[t] = in + off[t];
  int64_t q = 0;
  for (; q + kLanes <= n; q += kLanes) {
    const __m256 gv = _mm256_loadu_ps(g + q);
#pragma GCC unroll 9
    for (int t = 0; t < G; ++t) s[t] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(x[t] + q), s[t]);
  }
  if (q < n) {
    const __m256i m = first_lanes(n - q);
    const __m256 gv = _mm256_maskload_ps(g + q, m);
#pragma GCC unroll 9
    for (int t = 0; t < G; ++t) s[t] = _mm256_fmadd_ps(gv, _mm256_maskload_ps(x[t] + q, m), s[t]);
  }
#pragma GCC unroll 9
  for (int t = 0; t < G; ++t) acc[t] += sum_lanes(s[t]);
}

// 9 accumulators + g + a load: 11 of the 16 ymm registers; a 3×3 filter in one pass.
constexpr int kDotGroup = 9;

void taps_dot_avx2(const float* g, const float* in, const int64_t* off, int taps, float* acc, int64_t n) {
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

// 16 values of src per step: two loads, two in-lane shuffles picking the even (odd) lanes of each
// 128-bit half, a permute of the 64-bit quarters to put them in order; the tail by scalar code.
void deinterleave2_avx2(const float* src, int64_t n, float* even, float* odd) {
  int64_t z = 0;
  for (; z + 2 * kLanes <= n; z += 2 * kLanes) {
    const __m256 a = _mm256_loadu_ps(src + z), b = _mm256_loadu_ps(src + z + kLanes);
    const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);  // a0 a2 b0 b2 | a4 a6 b4 b6
    _mm256_storeu_ps(even + z / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    _mm256_storeu_ps(odd + z / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
  }
  for (; z < n; ++z) (z % 2 ? odd : even)[z / 2] = src[z];
}

void interleave2_avx2(const float* even, const float* odd, int64_t n, float* dst) {
  int64_t z = 0;
  for (; z + 2 * kLanes <= n; z += 2 * kLanes) {
    const __m256 e = _mm256_loadu_ps(even + z / 2), o = _mm256_loadu_ps(odd + z / 2);
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);  // e0 o0 e1 o1 | e4 o4 e5 o5
    _mm256_storeu_ps(dst + z, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + z + kLanes, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; z < n; ++z) dst[z] = (z % 2 ? odd : even)[z / 2];
}

// ---- channels-last: one vector of channels (the last masked) per block -------------------

// NP positions' sums in registers across the taps: one load of the weights and NP of src per tap.
// src, wt, init and out start at the block's first channel.
template <int NP>
void cl_sum_block(const float* src, int64_t C, const int64_t* origin, const int64_t* off, int taps, const float* wt,
                  const float* init, float* out, __m256i m) {
  __m256 a[NP];
  const float* s[NP];
  const __m256 a0 = init ? _mm256_maskload_ps(init, m) : _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < NP; ++k) a[k] = a0, s[k] = src + origin[k] * C;
  for (int t = 0; t < taps; ++t) {
    const __m256 wv = _mm256_maskload_ps(wt + t * C, m);
    const int64_t o = off[t] * C;
#pragma GCC unroll 4
    for (int k = 0; k < NP; ++k) a[k] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(s[k] + o, m), a[k]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < NP; ++k) _mm256_maskstore_ps(out + k * C, m, a[k]);
}

void cl_taps_sum_avx2(const float* src, int64_t C, const int64_t* origin, int64_t P, const int64_t* off, int taps,
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
                  float* acc, __m256i m) {
  __m256 s[G];
  int64_t o[G];
#pragma GCC unroll 8
  for (int t = 0; t < G; ++t) s[t] = _mm256_setzero_ps(), o[t] = off[t] * C;
  for (int64_t p = 0; p < P; ++p) {
    const __m256 gv = _mm256_maskload_ps(g + p * C, m);
    const float* x = src + origin[p] * C;
#pragma GCC unroll 8
    for (int t = 0; t < G; ++t) s[t] = _mm256_fmadd_ps(gv, _mm256_maskload_ps(x + o[t], m), s[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < G; ++t) _mm256_maskstore_ps(acc + t * C, m, _mm256_add_ps(_mm256_maskload_ps(acc + t * C, m), s[t]));
}

void cl_taps_dot_avx2(const float* g, const float* src, int64_t C, const int64_t* origin, int64_t P,
                       const int64_t* off, int taps, float* acc) {
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const auto m = first_lanes(C - c0);
    for_tap_groups(taps, [&](auto G, int t0) {
      cl_dot_group<decltype(G)::value>(g + c0, src + c0, C, origin, P, off + t0, acc + t0 * C + c0, m);
    });
  }
}

void to_channels_last_avx2(const float* src, int64_t C, int64_t plane, const int32_t* pos, float* dst) {
  to_channels_last_avx(src, C, plane, pos, dst);
}

void from_channels_last_avx2(const float* src, const int32_t* pos, int64_t C, int64_t plane, float* dst) {
  from_channels_last_avx(src, pos, C, plane, dst);
}

}  // namespace

DepthwiseKernel depthwise_kernel_avx2() {
  return {CpuIsa::avx2, taps_sum_avx2, taps_dot_avx2, deinterleave2_avx2, interleave2_avx2,
          cl_taps_sum_avx2, cl_taps_dot_avx2, to_channels_last_avx2, from_channels_last_avx2};
}

}  // namespace ember::cpu
