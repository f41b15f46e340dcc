// The packed GEMM driver (see gemm.h) and the run-time choice of its micro-kernel.
//
// Loops, outermost first (BLIS's order; mr×nr is the micro-kernel's tile):
//   jc over n in blocks of nc   — b's block kc×nc is packed once per (jc, pc)
//   pc over k in blocks of kc
//   ic over m in blocks of mc   — a's block mc×kc is packed, and stays in L2 (a row-major a is
//                                 not packed: the tile_rows kernel reads its rows in place)
//   jr over the block's nr-wide panels of b (kc×nr, in L1 while ir runs)
//   ir over the block's mr-high panels of a: one micro-kernel call per tile.
// Packing zero-pads the last panels to full width, so the kernel always runs whole tiles; a tile
// that sticks out of c is computed into a scratch tile and its valid part added or copied.
#include "tensor/cpu/gemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tensor/cpu/scratch.h"
#include "tensor/error.h"

namespace ember::cpu {

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::portable: return "portable";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::avx512: return "avx512";
  }
  return "?";
}

namespace {

bool processor_has(CpuIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  switch (isa) {
    case CpuIsa::portable: return true;
    case CpuIsa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::avx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
#else
  return isa == CpuIsa::portable;
#endif
}

CpuIsa isa_from_env() {
  const char* e = std::getenv("EMBER_CPU_ISA");
  if (!e || !*e) return supported_isas().back();
  try {
    return isa_from_name(e);
  } catch (const std::exception& err) {
    throw make_error("EMBER_CPU_ISA: ", err.what());
  }
}

GemmKernel& active_kernel() {
  static GemmKernel k = gemm_kernel(isa_from_env());
  return k;
}

// Block sizes. kc×nr floats of b (32 KiB for the AVX-512 kernel) fit L1 beside a panel of a;
// mc×kc of a (≤ 192 KiB) fits L2; kc×nc of b (1 MiB) is read from L2/L3 once per ic block.
constexpr int64_t kKC = 256, kNC = 1024, kMCTiles = 16;

// a's rows [0, mc) × columns [0, kc) (a already offset to the block) -> ⌈mc/mr⌉ panels of kc×mr.
// When a is stored transposed (its columns contiguous, a.rs == 1), column p of a panel is mr
// consecutive values: one copy per p instead of mr strided reads (MR known at compile time, so
// the copy is a few vector moves, not a call to memmove).
template <int MR>
void pack_a_transposed_panel(const float* src, int64_t cs, int64_t kc, float* dst) {
  for (int64_t p = 0; p < kc; ++p)
    for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[p * cs + i];
}

void pack_a(const MatrixView<float>& a, int64_t mc, int64_t kc, int mr, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr, dst += kc * mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - i0);
    if (rows < mr) std::fill(dst, dst + kc * mr, 0.0f);
    if (a.rs == 1) {
      if (rows == 12 && mr == 12) pack_a_transposed_panel<12>(a.data + i0, a.cs, kc, dst);
      else if (rows == 6 && mr == 6) pack_a_transposed_panel<6>(a.data + i0, a.cs, kc, dst);
      else if (rows == 4 && mr == 4) pack_a_transposed_panel<4>(a.data + i0, a.cs, kc, dst);
      else
        for (int64_t p = 0; p < kc; ++p) std::copy_n(a.data + i0 + p * a.cs, rows, dst + p * mr);
      continue;
    }
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = a.data + (i0 + i) * a.rs;
      for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p * a.cs];
    }
  }
}

// b's rows [0, kc) × columns [0, nc) -> ⌈nc/nr⌉ panels of kc×nr. A row-major b is read row by
// row, each row's nc values in one sequential run (the hardware prefetcher follows it; reading
// a panel at a time would walk kc rows in parallel, one cache line from each).
template <int NR>
void pack_b_row(const float* src, int64_t full, int64_t kc, float* dst) {
  for (int64_t j0 = 0; j0 < full; j0 += NR, src += NR, dst += kc * NR)
    for (int j = 0; j < NR; ++j) dst[j] = src[j];
}

void pack_b(const MatrixView<float>& b, int64_t kc, int64_t nc, int nr, float* dst) {
  const int64_t full = nc / nr * nr;
  if (b.cs == 1) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b.data + p * b.rs;
      if (nr == 32) pack_b_row<32>(src, full, kc, dst + p * nr);
      else if (nr == 16) pack_b_row<16>(src, full, kc, dst + p * nr);
      else
        for (int64_t j0 = 0; j0 < full; j0 += nr) std::memcpy(dst + j0 * kc + p * nr, src + j0, nr * sizeof(float));
      if (full < nc) {
        float* last = dst + full * kc + p * nr;
        std::copy(src + full, src + nc, last);
        std::fill(last + (nc - full), last + nr, 0.0f);
      }
    }
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += nr, dst += kc * nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - j0);
    if (cols < nr) std::fill(dst, dst + kc * nr, 0.0f);
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = b.data + (j0 + j) * b.cs;
      for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p * b.rs];
    }
  }
}

// c += a·bᵀ-style products (a's rows and b's columns both contiguous along k) with a long k: the
// dot kernel straight from the operands. k goes in blocks of kDotKC; within one, a tile's few
// rows of b (4 × 4 KiB) stay in L1 while every tile of rows of a passes over them, the block of
// a (m × 4 KiB) staying in L2, so each block of b is read from memory once.
constexpr int64_t kDotMinK = 256, kDotKC = 1024;

// Only where k is the long side: with a large output (a linear layer's forward x·wᵀ, 4160×768 ·
// 768×192) the packed kernel's register tile reuses every load 12–32 times against the dot
// kernel's 2 and its lane sums per tile (75 against 240 GFLOP/s there).
bool use_dot(int64_t m, int64_t n, int64_t k, const MatrixView<float>& a, const MatrixView<float>& b) {
  return a.cs == 1 && b.rs == 1 && k >= kDotMinK && k >= std::max(m, n);
}

void sgemm_dot(const GemmKernel& kern, int64_t m, int64_t n, int64_t k, MatrixView<float> a, MatrixView<float> b,
               float* c, int64_t ldc, bool accumulate) {
  for (int64_t pc = 0; pc < k; pc += kDotKC) {
    const int64_t kc = std::min(kDotKC, k - pc);
    const bool acc = accumulate || pc > 0;
    for (int64_t j0 = 0; j0 < n; j0 += kern.dc)
      for (int64_t i0 = 0; i0 < m; i0 += kern.dr)
        kern.dot(kc, a.data + i0 * a.rs + pc, a.rs, b.data + j0 * b.cs + pc, b.cs, c + i0 * ldc + j0, ldc,
                 static_cast<int>(std::min<int64_t>(kern.dr, m - i0)), static_cast<int>(std::min<int64_t>(kern.dc, n - j0)),
                 acc);
  }
}

// c = or += bias (n) on every row: how the paths without a bias epilogue take one.
template <class T>
void add_bias_rows(int64_t m, int64_t n, const T* bias, T* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + bias[j] : bias[j];
}

void sgemm(int64_t m, int64_t n, int64_t k, MatrixView<float> a, MatrixView<float> b, float* c, int64_t ldc,
           bool accumulate, const float* bias) {
  if (m <= 0 || n <= 0) return;
  const GemmKernel kern = active_kernel();
  if (k <= 0 || use_dot(m, n, k, a, b)) {
    if (bias) {
      add_bias_rows(m, n, bias, c, ldc, accumulate);
      accumulate = true;
    }
    if (k <= 0) {
      if (!accumulate)
        for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
      return;
    }
    sgemm_dot(kern, m, n, k, a, b, c, ldc, accumulate);
    return;
  }
  const int mr = kern.mr, nr = kern.nr;
  const int64_t mc_max = kMCTiles * mr;
  // A row-major a is read in place by tile_rows, all but a last partial panel (packed alone).
  const bool a_in_place = a.cs == 1 && kern.tile_rows != nullptr;
  float* apack = thread_scratch<float>(kGemmPackA, mc_max * kKC);
  float* bpack = thread_scratch<float>(kGemmPackB, kKC * ((kNC + nr - 1) / nr) * nr);
  alignas(64) float edge[16 * 32];  // a tile that sticks out of c (mr ≤ 16, nr ≤ 32)
  alignas(64) float edge_bias[32];  // the bias of such a tile, zero-padded to nr
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min(kNC, n - jc);
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = std::min(kKC, k - pc);
      const bool acc = accumulate || pc > 0;
      const float* block_bias = pc == 0 ? bias : nullptr;  // added once, with the first k block
      pack_b({b.data + pc * b.rs + jc * b.cs, b.rs, b.cs}, kc, nc, nr, bpack);
      for (int64_t ic = 0; ic < m; ic += mc_max) {
        const int64_t mc = std::min(mc_max, m - ic);
        const float* ablock = a.data + ic * a.rs + pc * a.cs;
        const int64_t full = a_in_place ? mc / mr * mr : 0;  // panels read in place
        pack_a({ablock + full * a.rs, a.rs, a.cs}, mc - full, kc, mr, apack);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min<int64_t>(nr, nc - jr);
          const float* bp = bpack + (jr / nr) * kc * nr;
          const float* tile_bias = block_bias ? block_bias + jc + jr : nullptr;
          if (tile_bias && cols < nr) {
            std::copy(tile_bias, tile_bias + cols, edge_bias);
            std::fill(edge_bias + cols, edge_bias + nr, 0.0f);
            tile_bias = edge_bias;
          }
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - ir);
            const bool in_place = ir < full;
            const float* ap = in_place ? ablock + ir * a.rs : apack + ((ir - full) / mr) * kc * mr;
            float* ct = c + (ic + ir) * ldc + jc + jr;
            const bool whole = rows == mr && cols == nr;
            float* out = whole ? ct : edge;
            const int64_t ldo = whole ? ldc : nr;
            if (in_place) kern.tile_rows(kc, ap, a.rs, bp, out, ldo, whole && acc, tile_bias);
            else kern.tile(kc, ap, bp, out, ldo, whole && acc, tile_bias);
            if (whole) continue;
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j) ct[i * ldc + j] = acc ? ct[i * ldc + j] + edge[i * nr + j] : edge[i * nr + j];
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<CpuIsa> supported_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512})
    if (processor_has(isa)) out.push_back(isa);
  return out;
}

CpuIsa isa_from_name(const std::string& name) {
  for (CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (!processor_has(isa)) throw make_error(name, ": this processor does not support it");
    return isa;
  }
  throw make_error("'", name, "': expected avx512, avx2 or portable");
}

GemmKernel gemm_kernel(CpuIsa isa) {
#if defined(__x86_64__)
  if (isa == CpuIsa::avx512) return gemm_kernel_avx512();
  if (isa == CpuIsa::avx2) return gemm_kernel_avx2();
#endif
  return gemm_kernel_portable();
}

CpuIsa cpu_isa() { return active_kernel().isa; }

void set_cpu_isa(CpuIsa isa) {
  if (!processor_has(isa)) throw make_error("set_cpu_isa: this processor does not support ", isa_name(isa));
  active_kernel() = gemm_kernel(isa);
}

template <>
void gemm<float>(int64_t m, int64_t n, int64_t k, MatrixView<float> a, MatrixView<float> b, float* c, int64_t ldc,
                 bool accumulate, const float* bias) {
  sgemm(m, n, k, a, b, c, ldc, accumulate, bias);
}

template <>
void gemm<double>(int64_t m, int64_t n, int64_t k, MatrixView<double> a, MatrixView<double> b, double* c,
                  int64_t ldc, bool accumulate, const double* bias) {
  if (m <= 0 || n <= 0) return;
  if (bias) {
    add_bias_rows(m, n, bias, c, ldc, accumulate);
    accumulate = true;
  }
  using Strided = Eigen::Map<const Eigen::MatrixXd, Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
  using Out = Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Unaligned,
                         Eigen::OuterStride<>>;
  // Eigen's Stride is (outer, inner) of a column-major map: column j at j·outer, row i at i·inner.
  Strided am(a.data, m, k, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(a.cs, a.rs));
  Strided bm(b.data, k, n, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(b.cs, b.rs));
  Out cm(c, m, n, Eigen::OuterStride<>(ldc));
  if (accumulate) cm.noalias() += am * bm;
  else cm.noalias() = am * bm;
}

}  // namespace ember::cpu
