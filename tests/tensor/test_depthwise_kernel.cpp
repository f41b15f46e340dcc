// cpu::DepthwiseKernel, the depthwise convolution's per-plane loops: every variant this processor
// runs (portable, AVX2, AVX-512) against a float64 loop written out here, on random data, for every
// length from 1 past two full vector blocks (each partial block and masked tail), 3×3 / 5×5 / odd
// tap counts (every group size of the dot loop), offsets of both signs (the input gradient reads
// backwards), and with guard values around the output that must not be touched; and the
// (de)interleaves of stride 2 for every row length up to 100. The conv2d tests
// (test_conv2d.cpp) run whole convolutions through each variant too.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tensor/cpu/depthwise_kernel.h"
#include "tests/support/test_util.h"

using namespace ember::cpu;

namespace {

class DepthwiseIsa : public ::testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override {
    saved_ = cpu_isa();
    const auto supported = supported_isas();
    if (std::find(supported.begin(), supported.end(), GetParam()) == supported.end())
      GTEST_SKIP() << "this processor has no " << isa_name(GetParam());
    set_cpu_isa(GetParam());
  }
  void TearDown() override { set_cpu_isa(saved_); }
  CpuIsa saved_{};
};

// Offsets for `taps` taps spread over [lo, hi]; the input buffer covers every read.
std::vector<int64_t> offsets(int taps, int64_t lo, int64_t hi, std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<int64_t> off(taps);
  for (int64_t& o : off) o = d(rng);
  return off;
}

TEST_P(DepthwiseIsa, TapsSumMatchesTheFloat64Loop) {
  const DepthwiseKernel k = depthwise_kernel();
  ASSERT_EQ(k.isa, GetParam());
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int taps : {0, 1, 4, 9, 25})
    for (int64_t n = 1; n <= 300; n += (n < 140 ? 1 : 37)) {
      SCOPED_TRACE("taps=" + std::to_string(taps) + " n=" + std::to_string(n));
      const int64_t lo = -40, hi = 60;  // offsets in [lo, hi]: in[q + off] for q < n
      const std::vector<int64_t> off = offsets(taps, lo, hi, rng);
      std::vector<float> buf(n + hi - lo), w(taps);
      for (float& v : buf) v = u(rng);
      for (float& v : w) v = u(rng);
      const float* in = buf.data() - lo;
      const float init = u(rng), guard = 12345.0f;
      std::vector<float> out(n + 32, guard);
      k.taps_sum(in, off.data(), w.data(), taps, init, out.data() + 16, n);
      for (int64_t q = 0; q < n; ++q) {
        double ref = init;
        for (int t = 0; t < taps; ++t) ref += double(w[t]) * double(in[q + off[t]]);
        ASSERT_NEAR(out[16 + q], ref, 1e-5 * (1 + taps)) << "at " << q;
      }
      for (int64_t q = 0; q < 16; ++q) ASSERT_EQ(out[q], guard) << "wrote before the output";
      for (int64_t q = 16 + n; q < n + 32; ++q) ASSERT_EQ(out[q], guard) << "wrote past the output's end";
    }
}

TEST_P(DepthwiseIsa, TapsDotMatchesTheFloat64Loop) {
  const DepthwiseKernel k = depthwise_kernel();
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int taps : {1, 2, 3, 5, 7, 8, 9, 10, 17, 25})
    for (int64_t n : {1, 7, 15, 16, 17, 31, 33, 100, 257, 1000}) {
      SCOPED_TRACE("taps=" + std::to_string(taps) + " n=" + std::to_string(n));
      const int64_t lo = -5, hi = 70;
      const std::vector<int64_t> off = offsets(taps, lo, hi, rng);
      std::vector<float> buf(n + hi - lo), g(n);
      for (float& v : buf) v = u(rng);
      for (float& v : g) v = u(rng);
      const float* in = buf.data() - lo;
      std::vector<float> acc(taps + 1);
      for (float& v : acc) v = u(rng);
      const std::vector<float> acc0 = acc;
      k.taps_dot(g.data(), in, off.data(), taps, acc.data(), n);
      for (int t = 0; t < taps; ++t) {
        double ref = acc0[t];
        for (int64_t q = 0; q < n; ++q) ref += double(g[q]) * double(in[q + off[t]]);
        ASSERT_NEAR(acc[t], ref, 1e-5 * (1 + std::sqrt(double(n)))) << "tap " << t;  // accumulated, not overwritten
      }
      ASSERT_EQ(acc[taps], acc0[taps]) << "wrote past the last tap";
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, DepthwiseIsa, ::testing::Values(CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace

namespace {

TEST_P(DepthwiseIsa, DeinterleaveAndInterleaveRoundTrip) {
  const DepthwiseKernel k = depthwise_kernel();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float guard = 777.0f;
  for (int64_t n = 1; n <= 100; ++n) {
    SCOPED_TRACE("n=" + std::to_string(n));
    std::vector<float> src(n);
    for (float& v : src) v = u(rng);
    const int64_t ne = (n + 1) / 2, no = n / 2;
    std::vector<float> even(ne + 8, guard), odd(no + 8, guard);
    k.deinterleave2(src.data(), n, even.data(), odd.data());
    for (int64_t z = 0; z < n; ++z) ASSERT_EQ((z % 2 ? odd : even)[z / 2], src[z]) << "at " << z;
    for (int64_t i = ne; i < ne + 8; ++i) ASSERT_EQ(even[i], guard) << "wrote past the even values";
    for (int64_t i = no; i < no + 8; ++i) ASSERT_EQ(odd[i], guard) << "wrote past the odd values";
    std::vector<float> back(n + 8, guard);
    k.interleave2(even.data(), odd.data(), n, back.data());
    for (int64_t z = 0; z < n; ++z) ASSERT_EQ(back[z], src[z]) << "at " << z;
    for (int64_t z = n; z < n + 8; ++z) ASSERT_EQ(back[z], guard) << "wrote past the row's end";
  }
}

}  // namespace

// ---- the channels-last loops and layout changes ------------------------------------------

namespace {

// A channels-last buffer of `positions` positions × C channels with a guard margin of C values
// before and after; value(p, c) at data()[(1 + p)·C + c].
struct ClBuffer {
  int64_t C;
  std::vector<float> v;
  ClBuffer(int64_t positions, int64_t C_, float fill) : C(C_), v((positions + 2) * C_, fill) {}
  float* at(int64_t p) { return v.data() + (1 + p) * C; }
};

TEST_P(DepthwiseIsa, ChannelsLastTapsSumMatchesTheFloat64Loop) {
  const DepthwiseKernel k = depthwise_kernel();
  std::mt19937 rng(10);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t C : {1, 5, 8, 15, 16, 17, 33, 48})
    for (int taps : {1, 3, 9, 25})
      for (int64_t P : {1, 3, 4, 5, 9, 36}) {
        for (bool with_init : {false, true}) {
          SCOPED_TRACE("C=" + std::to_string(C) + " taps=" + std::to_string(taps) + " P=" + std::to_string(P));
          const int64_t positions = 64;  // src positions; every origin + offset lands inside
          std::vector<float> src(positions * C), wt(taps * C), init(C);
          for (float& x : src) x = u(rng);
          for (float& x : wt) x = u(rng);
          for (float& x : init) x = u(rng);
          std::vector<int64_t> origin(P), off = offsets(taps, -10, 10, rng);
          for (int64_t& o : origin) o = std::uniform_int_distribution<int64_t>(10, positions - 11)(rng);
          const float guard = 4321.0f;
          ClBuffer out(P, C, guard);
          k.cl_taps_sum(src.data(), C, origin.data(), P, off.data(), taps, wt.data(), with_init ? init.data() : nullptr,
                        out.at(0));
          for (int64_t p = 0; p < P; ++p)
            for (int64_t c = 0; c < C; ++c) {
              double ref = with_init ? init[c] : 0.0;
              for (int t = 0; t < taps; ++t) ref += double(wt[t * C + c]) * double(src[(origin[p] + off[t]) * C + c]);
              ASSERT_NEAR(out.at(p)[c], ref, 1e-5 * (1 + taps)) << "position " << p << " channel " << c;
            }
          for (int64_t c = 0; c < C; ++c) {
            ASSERT_EQ(out.at(-1)[c], guard) << "wrote before the output";
            ASSERT_EQ(out.at(P)[c], guard) << "wrote past the output";
          }
        }
      }
}

TEST_P(DepthwiseIsa, ChannelsLastTapsDotMatchesTheFloat64Loop) {
  const DepthwiseKernel k = depthwise_kernel();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t C : {1, 7, 16, 17, 40})
    for (int taps : {1, 2, 5, 8, 9, 25})
      for (int64_t P : {1, 4, 9, 37}) {
        SCOPED_TRACE("C=" + std::to_string(C) + " taps=" + std::to_string(taps) + " P=" + std::to_string(P));
        const int64_t positions = 64;
        std::vector<float> src(positions * C), g(P * C);
        for (float& x : src) x = u(rng);
        for (float& x : g) x = u(rng);
        std::vector<int64_t> origin(P), off = offsets(taps, -10, 10, rng);
        for (int64_t& o : origin) o = std::uniform_int_distribution<int64_t>(10, positions - 11)(rng);
        ClBuffer acc(taps, C, 0.0f);
        for (float& x : acc.v) x = u(rng);
        const std::vector<float> acc0 = acc.v;
        k.cl_taps_dot(g.data(), src.data(), C, origin.data(), P, off.data(), taps, acc.at(0));
        for (int t = 0; t < taps; ++t)
          for (int64_t c = 0; c < C; ++c) {
            double ref = acc0[(1 + t) * C + c];  // accumulated, not overwritten
            for (int64_t p = 0; p < P; ++p) ref += double(g[p * C + c]) * double(src[(origin[p] + off[t]) * C + c]);
            ASSERT_NEAR(acc.at(t)[c], ref, 1e-5 * (1 + std::sqrt(double(P)))) << "tap " << t << " channel " << c;
          }
        for (int64_t c = 0; c < C; ++c) {
          ASSERT_EQ(acc.at(-1)[c], acc0[c]) << "wrote before the first tap";
          ASSERT_EQ(acc.at(taps)[c], acc0[(1 + taps) * C + c]) << "wrote past the last tap";
        }
      }
}

// Planes (C, rows, cols) into a padded channels-last buffer (row pitch `pitch` ≥ cols) and back:
// every value where pos says, the padding untouched, and the round trip exact.
TEST_P(DepthwiseIsa, ChannelsLastLayoutRoundTrip) {
  const DepthwiseKernel k = depthwise_kernel();
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float guard = 999.0f;
  for (int64_t C : {1, 3, 8, 9, 16, 23, 64})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 3}, {2, 5}, {6, 6}, {4, 8}, {7, 9}, {12, 12}}) {
      SCOPED_TRACE("C=" + std::to_string(C) + " plane=" + std::to_string(rows) + "x" + std::to_string(cols));
      const int64_t pitch = cols + 3, plane = rows * cols;
      std::vector<int32_t> pos;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < cols; ++q) pos.push_back(static_cast<int32_t>((r * pitch + q) * C));
      std::vector<float> planes(C * plane);
      for (float& x : planes) x = u(rng);
      std::vector<float> cl(rows * pitch * C, guard);
      k.to_channels_last(planes.data(), C, plane, pos.data(), cl.data());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < pitch; ++q)
          for (int64_t c = 0; c < C; ++c) {
            const float got = cl[(r * pitch + q) * C + c];
            if (q < cols) ASSERT_EQ(got, planes[c * plane + r * cols + q]) << "row " << r << " col " << q << " ch " << c;
            else ASSERT_EQ(got, guard) << "wrote into the padding";
          }
      std::vector<float> back(C * plane + 8, guard);
      k.from_channels_last(cl.data(), pos.data(), C, plane, back.data());
      for (int64_t i = 0; i < C * plane; ++i) ASSERT_EQ(back[i], planes[i]) << "at " << i;
      for (int64_t i = C * plane; i < C * plane + 8; ++i) ASSERT_EQ(back[i], guard) << "wrote past the planes";
    }
}

}  // namespace
