// bf16 and f16 storage types with float conversion, usable on host and device.
// Layout matches __nv_bfloat16 / __half, so CUDA kernels may reinterpret pointers.
//   bf16: 1 sign, 8 exponent, 7 mantissa bits: the top half of an IEEE float.
//   f16:  1 sign, 5 exponent, 10 mantissa bits.
// Conversions round to nearest even.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#else
#define EMBER_HD inline
#endif

namespace ember {

EMBER_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
EMBER_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  EMBER_HD bf16(float f) {  // NOLINT: implicit like a builtin float type
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it quiet
      bits = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  EMBER_HD operator float() const { return bits_float(static_cast<uint32_t>(bits) << 16); }
};

struct f16 {
  uint16_t bits = 0;
  f16() = default;
  EMBER_HD f16(float f) {  // NOLINT
    uint32_t x = float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag > 0x7f800000u) {
      bits = static_cast<uint16_t>(sign | 0x7e00u);
    } else if (mag >= 0x477ff000u) {  // rounds to >= 65520: overflow to inf
      bits = static_cast<uint16_t>(sign | 0x7c00u);
    } else if (mag < 0x38800000u) {  // below the smallest normal half: subnormal or zero
      float v = bits_float(mag) + 0.5f;  // the add rounds to nearest even at 2^-24 steps
      bits = static_cast<uint16_t>(sign | (float_bits(v) - 0x3f000000u));
    } else {
      uint32_t odd = (mag >> 13) & 1u;
      mag += 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round
      bits = static_cast<uint16_t>(sign | (mag >> 13));
    }
  }
  EMBER_HD operator float() const {
    uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
    uint32_t exp = (bits >> 10) & 0x1fu;
    uint32_t man = bits & 0x3ffu;
    if (exp == 0) {  // zero or subnormal: man * 2^-24
      float v = static_cast<float>(man) * 5.9604644775390625e-8f;
      return bits_float(float_bits(v) | sign);
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
    return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  }
};

}  // namespace ember
