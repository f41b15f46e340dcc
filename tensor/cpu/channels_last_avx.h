// What the channels-last depthwise loops of depthwise_kernel_avx2.cpp and
// depthwise_kernel_avx512.cpp share (depthwise_kernel.h): the 8×8 float transposes of the layout
// changes (to_channels_last / from_channels_last; both files have AVX), and the split of the
// taps into register-sized groups of the weight gradient's loop. Everything here has
// internal linkage, so each of those files keeps its own copy, compiled with its own flags: the
// linker cannot hand the AVX-512 copy to code that runs on a processor without it.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace ember::cpu {
namespace {

// fn(std::integral_constant<int, G>{}, t0) for the taps [t0, t0 + G) in groups of at most 8
// (8 accumulators, g and a load fit in AVX2's 16 registers), G a compile-time constant.
constexpr int kClDotGroup = 8;
template <class Fn>
void for_tap_groups(int taps, Fn&& fn) {
  for (int t0 = 0; t0 < taps; t0 += kClDotGroup) {
    switch (taps - t0 < kClDotGroup ? taps - t0 : kClDotGroup) {
      case 1: fn(std::integral_constant<int, 1>{}, t0); break;
      case 2: fn(std::integral_constant<int, 2>{}, t0); break;
      case 3: fn(std::integral_constant<int, 3>{}, t0); break;
      case 4: fn(std::integral_constant<int, 4>{}, t0); break;
      case 5: fn(std::integral_constant<int, 5>{}, t0); break;
      case 6: fn(std::integral_constant<int, 6>{}, t0); break;
      case 7: fn(std::integral_constant<int, 7>{}, t0); break;
      default: fn(std::integral_constant<int, 8>{}, t0); break;
    }
  }
}

// r[i] (row i of an 8×8 block) becomes column i.
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// dst[pos[q] + c] = src[c·plane + q]: 8 channels × 8 positions per block, the rest one by one.
inline void to_channels_last_avx(const float* src, int64_t C, int64_t plane, const int32_t* pos, float* dst) {
  int64_t c0 = 0;
  for (; c0 + 8 <= C; c0 += 8) {
    int64_t q0 = 0;
    for (; q0 + 8 <= plane; q0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (c0 + i) * plane + q0);
      transpose8x8(r);
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + pos[q0 + j] + c0, r[j]);
    }
    for (; q0 < plane; ++q0)
      for (int i = 0; i < 8; ++i) dst[pos[q0] + c0 + i] = src[(c0 + i) * plane + q0];
  }
  for (; c0 < C; ++c0)
    for (int64_t q = 0; q < plane; ++q) dst[pos[q] + c0] = src[c0 * plane + q];
}

// dst[c·plane + q] = src[pos[q] + c], the same blocks the other way round.
inline void from_channels_last_avx(const float* src, const int32_t* pos, int64_t C, int64_t plane, float* dst) {
  int64_t c0 = 0;
  for (; c0 + 8 <= C; c0 += 8) {
    int64_t q0 = 0;
    for (; q0 + 8 <= plane; q0 += 8) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + pos[q0 + j] + c0);
      transpose8x8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (c0 + i) * plane + q0, r[i]);
    }
    for (; q0 < plane; ++q0)
      for (int i = 0; i < 8; ++i) dst[(c0 + i) * plane + q0] = src[pos[q0] + c0 + i];
  }
  for (; c0 < C; ++c0)
    for (int64_t q = 0; q < plane; ++q) dst[c0 * plane + q] = src[pos[q] + c0];
}

}  // namespace
}  // namespace ember::cpu
