// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
// a counter-based generator. Output block = f(counter, key) with no state between draws, so
// element i of a random tensor is the same number on the CPU and on CUDA for the same seed.
//
// ember's convention: a draw of n numbers with seed s at generator offset o gives element i
//   block  = philox(counter = {i/4 (lo, hi), o (lo, hi)}, key = s)
//   value  = block[i % 4]
// and the generator's offset then advances by 1, so consecutive draws never overlap.
#pragma once
#include <cmath>
#include <cstdint>

#include "tensor/half.h"  // EMBER_HD

namespace ember {

struct Philox4x32 {
  uint32_t c[4];
};

EMBER_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

EMBER_HD Philox4x32 philox4x32_10(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// A uniform float in [0, 1) from 24 random bits, and a double in [0, 1) from 53.
EMBER_HD float uniform_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
EMBER_HD double uniform_double(uint32_t a, uint32_t b) {
  uint64_t x = (static_cast<uint64_t>(a) << 21) ^ b;
  return static_cast<double>(x & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Element i of a uniform draw (float precision; identical on host and device).
EMBER_HD float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4x32 b = philox4x32_10(i / 4, offset, seed);
  return uniform_float(b.c[i % 4]);
}

// Element i of a standard-normal draw: Box-Muller on lanes (0,1) for even i and (2,3) for odd
// i, within block i/2, so each pair of elements shares one block.
EMBER_HD float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4x32 b = philox4x32_10(i / 2, offset, seed);
  uint32_t u1 = b.c[(i % 2) * 2], u2 = b.c[(i % 2) * 2 + 1];
  float x1 = (static_cast<float>(u1 >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  float x2 = static_cast<float>(u2 >> 8) * (1.0f / 16777216.0f);
#if defined(__CUDA_ARCH__)
  return sqrtf(-2.0f * logf(x1)) * cospif(2.0f * x2);
#else
  return std::sqrt(-2.0f * std::log(x1)) * std::cos(6.283185307179586f * x2);
#endif
}

}  // namespace ember
