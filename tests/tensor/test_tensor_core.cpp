// Tensor basics: views, copies, dtypes, allocators, RNG, error messages and the device dispatch.
#include <cmath>
#include <cstring>

#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::random_tensor;
using ember::testing::values;

TEST(Tensor, ViewsShareStorageAndIndexCorrectly) {
  Tensor x = arange(0.0, 24.0, 1.0, DType::f64).reshape({2, 3, 4});
  EXPECT_TRUE(x.is_contiguous());
  Tensor p = x.permute({2, 0, 1});  // (4, 2, 3)
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_FALSE(p.is_contiguous());
  // p[i, j, k] = x[j, k, i] = 12 j + 4 k + i
  auto v = values(p);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(v[(i * 2 + j) * 3 + k], 12 * j + 4 * k + i);
  Tensor n = x.narrow(2, 1, 2);  // x[:, :, 1:3]
  EXPECT_EQ(values(n), (std::vector<double>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}));
  Tensor s = x.select(1, 2);  // x[:, 2, :]
  EXPECT_EQ(values(s), (std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23}));
  Tensor sl = x.slice(2, 0, 4, 3);  // x[:, :, ::3]
  EXPECT_EQ(values(sl), (std::vector<double>{0, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20, 23}));
  Tensor t = x.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.storage(), x.storage());
  Tensor u = x.unsqueeze(1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(u.squeeze(1).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(u.squeeze().shape(), (Shape{2, 3, 4}));
  // a write through a view is seen by the base
  n.fill_(-1.0);
  EXPECT_EQ(values(x)[1], -1.0);
  EXPECT_EQ(values(x)[0], 0.0);
}

TEST(Tensor, ReshapeViewsWhenPossibleAndCopiesOtherwise) {
  Tensor x = arange(0.0, 12.0, 1.0, DType::f32).reshape({3, 4});
  Tensor v = x.view({2, 6});
  EXPECT_EQ(v.storage(), x.storage());
  EXPECT_EQ(x.view({-1}).shape(), (Shape{12}));
  Tensor t = x.t();  // (4, 3) non-contiguous
  EXPECT_THROW(t.view({12}), Error);
  Tensor r = t.reshape({12});
  EXPECT_NE(r.storage(), x.storage());
  EXPECT_EQ(values(r), (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // splitting a dim of a transposed view is still a view
  Tensor y = arange(0.0, 24.0, 1.0).reshape({4, 6}).t();  // (6, 4)
  Tensor z = y.view({2, 3, 4});
  EXPECT_EQ(z.storage(), y.storage());
  EXPECT_TRUE(all_close(z, values(y.contiguous())));
  EXPECT_EQ(x.flatten().shape(), (Shape{12}));
}

TEST(Tensor, ExpandBroadcastsWithZeroStrides) {
  Tensor x = from_vector<double>({1, 2, 3}, {3, 1});
  Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  auto v = values(e);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(v[(a * 3 + b) * 4 + c], b + 1);
  EXPECT_THROW(x.expand({2, 4}), Error);
}

TEST(Tensor, BroadcastShapesFollowNumPy) {
  EXPECT_EQ(broadcast_shapes({8, 1, 6, 1}, {7, 1, 5}, "t"), (Shape{8, 7, 6, 5}));
  EXPECT_EQ(broadcast_shapes({}, {3}, "t"), (Shape{3}));
  try {
    broadcast_shapes({2, 3}, {4, 3}, "add");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: shapes [2, 3] and [4, 3] cannot be broadcast"), std::string::npos)
        << e.what();
  }
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor x = from_vector<double>({-2.75, -1.0, 0.0, 0.5, 1.0, 3.25, 1000.0, 65504.0}, {8});
  EXPECT_TRUE(all_close(x.to(DType::f32), x));
  EXPECT_TRUE(all_close(x.to(DType::f16).to(DType::f64), x));  // all exactly representable
  EXPECT_TRUE(all_close(x.to(DType::bf16).to(DType::f64), std::vector<double>{-2.75, -1, 0, 0.5, 1, 3.25, 1000, 65536}));
  EXPECT_EQ(values(x.to(DType::i32)), (std::vector<double>{-2, -1, 0, 0, 1, 3, 1000, 65504}));
  EXPECT_EQ(values(x.to(DType::boolean)), (std::vector<double>{1, 1, 0, 1, 1, 1, 1, 1}));
  // rounding to nearest even, overflow and NaN for f16
  EXPECT_EQ(static_cast<float>(f16(65520.0f)), INFINITY);
  EXPECT_EQ(static_cast<float>(f16(1.0f + 1.0f / 2048)), 1.0f);  // halfway: to even
  EXPECT_TRUE(std::isnan(static_cast<float>(f16(NAN))));
  EXPECT_EQ(static_cast<float>(f16(5.9604644775390625e-8f)), 5.9604644775390625e-8f);  // smallest subnormal
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(NAN))));
}

TEST(Tensor, FloatToIntegerConversionsSaturateAndNaNGivesZero) {
  const double inf = INFINITY, nan = NAN;
  Tensor x = from_vector<double>({300.0, -5.0, nan, 1e10, 254.9, inf, -inf, -0.7, 2.5}, {9});
  EXPECT_EQ(values(x.to(DType::u8)), (std::vector<double>{255, 0, 0, 255, 254, 255, 0, 0, 2}));
  EXPECT_EQ(values(x.to(DType::f32).to(DType::u8)), (std::vector<double>{255, 0, 0, 255, 254, 255, 0, 0, 2}));
  EXPECT_EQ(values(x.to(DType::i32)),
            (std::vector<double>{300, -5, 0, 2147483647, 254, 2147483647, -2147483648.0, 0, 2}));
  Tensor big = from_vector<float>({1e30f, -1e30f, 9.3e18f, -9.3e18f}, {4});
  auto i64 = big.to(DType::i64).to_vector<int64_t>();
  EXPECT_EQ(i64, (std::vector<int64_t>{INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN}));
  EXPECT_EQ(values(from_vector<float>({1e6f, -1e6f}, {2}).to(DType::bf16).to(DType::u8)), (std::vector<double>{255, 0}));
}

TEST(Tensor, FillWritesBoolStorageWithoutReadingIt) {
  // Fresh storage holding bytes that are not a valid bool: filling must only write.
  Tensor t = empty({4, 6}, DType::boolean);
  std::memset(t.data_ptr(), 0x7f, t.nbytes());
  t.fill_(1.0);
  EXPECT_EQ(values(t), std::vector<double>(24, 1.0));
  std::memset(t.data_ptr(), 0xfe, t.nbytes());
  Tensor strided = t.narrow(1, 1, 3);  // non-contiguous view: only its elements change
  strided.fill_(0.0);
  auto bytes = static_cast<const uint8_t*>(t.data_ptr());
  for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(bytes[i], (i % 6 >= 1 && i % 6 < 4) ? 0 : 0xfe) << i;
  EXPECT_EQ(values(zeros({3, 2}, DType::boolean)), std::vector<double>(6, 0.0));
  EXPECT_EQ(values(full({5}, 2.0, DType::boolean)), std::vector<double>(5, 1.0));
}

TEST(Tensor, CreationFunctions) {
  EXPECT_EQ(values(zeros({2, 2})), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(values(ones({3}, DType::i64)), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(values(full({2}, 2.5, DType::f64)), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(values(arange(1.0, 2.0, 0.25, DType::f64)), (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(5).dtype(), DType::i64);
  EXPECT_EQ(empty({0, 3}).numel(), 0);
  EXPECT_THROW(empty({-1}), Error);
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), Error);
  EXPECT_DOUBLE_EQ(scalar_tensor(4.0).item(), 4.0);
}

TEST(Tensor, CpuAllocatorAlignsTo64Bytes) {
  for (int n : {1, 3, 17, 1000}) {
    Tensor t = empty({n}, DType::u8);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64, 0u);
  }
}

namespace {
class CountingRaw final : public RawAllocator {
 public:
  int allocs = 0, frees = 0;
  void* raw_allocate(size_t n) override {
    allocs++;
    return std::malloc(n);
  }
  void raw_free(void* p) override {
    frees++;
    std::free(p);
  }
  Device device() const override { return Device::cpu(); }
};
}  // namespace

TEST(CachingAllocator, ReusesBlocksPerStreamAndReportsStatistics) {
  auto raw = std::make_unique<CountingRaw>();
  CountingRaw* r = raw.get();
  CachingAllocator alloc(std::move(raw));
  void* a = alloc.allocate(1000);
  EXPECT_EQ(alloc.stats().in_use, 1024u);
  alloc.deallocate(a, 1000);
  EXPECT_EQ(alloc.stats().cached, 1024u);
  void* b = alloc.allocate(900);  // same 1024-byte bucket: reused
  EXPECT_EQ(a, b);
  EXPECT_EQ(r->allocs, 1);
  EXPECT_EQ(alloc.stats().reuses, 1u);
  int stream_tag = 0;
  alloc.deallocate(b, 900);
  void* c = alloc.allocate(900, &stream_tag);  // another stream does not take stream 0's block
  EXPECT_NE(c, a);
  EXPECT_EQ(r->allocs, 2);
  void* big = alloc.allocate(5u << 20);
  EXPECT_EQ(CachingAllocator::round_size(5u << 20), 6u << 20);
  EXPECT_EQ(alloc.stats().peak, 1024u + (6u << 20));  // c and big live together
  alloc.deallocate(big, 5u << 20);
  alloc.deallocate(c, 900, &stream_tag);
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().cached, 0u);
  EXPECT_EQ(r->frees, 3);
  EXPECT_EQ(alloc.stats().in_use, 0u);
}

TEST(Random, SameSeedSameNumbersAndRightMoments) {
  Generator g1(42), g2(42);
  Tensor a = rand({1000}, DType::f32, Device::cpu(), &g1);
  Tensor b = rand({1000}, DType::f32, Device::cpu(), &g2);
  EXPECT_EQ(values(a), values(b));
  Tensor c = rand({1000}, DType::f32, Device::cpu(), &g1);  // next draw differs
  EXPECT_NE(values(a), values(c));
  Tensor n = randn({200000}, DType::f64, Device::cpu(), &g1);
  auto v = values(n);
  double m = 0, s2 = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s2 += (x - m) * (x - m);
  s2 /= v.size();
  EXPECT_NEAR(m, 0.0, 0.01);
  EXPECT_NEAR(s2, 1.0, 0.02);
  for (double x : values(a)) {
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
  }
  Tensor ri = randint(3, 7, {1000}, DType::i64, Device::cpu(), &g1);
  for (double x : values(ri)) {
    EXPECT_GE(x, 3);
    EXPECT_LT(x, 7);
  }
}

TEST(Random, PhiloxMatchesKnownAnswer) {
  // Random123's known-answer test for philox4x32-10: counter 0, key 0.
  Philox4x32 r = philox4x32_10(0, 0, 0);
  EXPECT_EQ(r.c[0], 0x6627e8d5u);
  EXPECT_EQ(r.c[1], 0xe169c58du);
  EXPECT_EQ(r.c[2], 0xbc57ac4cu);
  EXPECT_EQ(r.c[3], 0x9b00dbd8u);
}

TEST(Errors, NameTheOpAndWhatWasWrong) {
  Tensor x = zeros({2, 3});
  EXPECT_NE(ember::testing::error_of([&] { x.select(2, 0); }).find("select: dim 2 out of range"), std::string::npos);
  EXPECT_NE(ember::testing::error_of([&] { x.view({4, 2}); }).find("view: shape [4, 2] has 8 elements"), std::string::npos);
  EXPECT_NE(ember::testing::error_of([&] { x.narrow(1, 2, 2); }).find("narrow: range [2, 4) out of bounds"), std::string::npos);
  EXPECT_NE(ember::testing::error_of([&] { x.permute({0, 0}); }).find("permute: dim 0 repeated"), std::string::npos);
  EXPECT_NE(ember::testing::error_of([&] { Device::parse("gpu"); }).find("'gpu' is not a device"), std::string::npos);
  EXPECT_NE(ember::testing::error_of([&] { x.data<double>(); }).find("tensor has dtype f32"), std::string::npos);
}

TEST(Cuda, UnavailableIsReportedNotCrashing) {
  if (cuda::is_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU path";
  EXPECT_FALSE(cuda::unavailable_reason().empty());
  EXPECT_THROW(zeros({2}, DType::f32, Device::cuda(0)), Error);
}

TEST(Dispatch, RunsTheBranchOfTheDeviceOrSaysWhyNot) {
  int cpu_runs = 0, cuda_runs = 0;
  auto on = [&](Device d) {
    return dispatch("probe", d, [&] { ++cpu_runs; return 1; }, [&] { ++cuda_runs; return 2; });
  };
  EXPECT_EQ(on(Device::cpu()), 1);
  if (cuda::is_available()) {
    EXPECT_EQ(on(Device::cuda(0)), 2);
  } else {
    // Without the backend the op says so; with it but without a GPU, making the device current fails.
    const std::string what = ember::testing::error_of([&] { on(Device::cuda(0)); });
    if (cuda::built()) {
      EXPECT_NE(what.find("cuda::set_device: "), std::string::npos) << what;
    } else {
      EXPECT_EQ(what, std::string("probe: the tensor is on cuda:0, but ") + kNoCudaBackend);
    }
  }
  EXPECT_EQ(cpu_runs, 1);
  EXPECT_EQ(cuda_runs, cuda::is_available() ? 1 : 0);
}

TEST(Cuda, CopiesRoundTripAndRandomMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Tensor x = random_tensor({3, 5, 7}, DType::f32);
  Tensor d = x.to(Device::cuda(0));
  EXPECT_TRUE(all_close(d.cpu(), x, 0, 0));
  EXPECT_TRUE(all_close(d.permute({2, 0, 1}).contiguous().cpu(), x.permute({2, 0, 1}).contiguous(), 0, 0));
  EXPECT_TRUE(all_close(d.to(DType::bf16).cpu(), x.to(DType::bf16), 0, 0));
  Generator g1(7), g2(7);
  EXPECT_TRUE(all_close(rand({4097}, DType::f32, Device::cuda(0), &g1).cpu(), rand({4097}, DType::f32, Device::cpu(), &g2), 0, 0));
  EXPECT_TRUE(all_close(randn({4097}, DType::f32, Device::cuda(0), &g1).cpu(), randn({4097}, DType::f32, Device::cpu(), &g2), 1e-5, 1e-6));
  auto st = cuda::caching_allocator(0).stats();
  EXPECT_GT(st.in_use, 0u);
}

// ---- switches from the environment, and launch checking (EMBER_CUDA_SYNC) ------------------

TEST(Env, SwitchIsOneOrZeroAndAnythingElseIsAnError) {
  EXPECT_FALSE(parse_env_flag("EMBER_X", nullptr));
  EXPECT_FALSE(parse_env_flag("EMBER_X", ""));
  EXPECT_FALSE(parse_env_flag("EMBER_X", "0"));
  EXPECT_TRUE(parse_env_flag("EMBER_X", "1"));
  for (const char* bad : {"yes", "true", "on", "2", " 1", "01"}) {
    const std::string what = ember::testing::error_of([&] { parse_env_flag("EMBER_X", bad); });
    EXPECT_EQ(what, std::string("EMBER_X='") + bad + "' is not a switch (expected 1 for on, 0 or unset for off)");
  }
}

TEST(CudaLaunch, ErrorNamesTheKernelTheOpAndThePlace) {
  EXPECT_EQ(cuda::launch_error_message("conv2d_forward_kernel", "conv2d, forward", "tensor/ops/conv2d_cuda.cu", 172,
                                       "an illegal memory access was encountered", true),
            "CUDA kernel conv2d_forward_kernel (op conv2d, forward) at tensor/ops/conv2d_cuda.cu:172 faulted "
            "(found by EMBER_CUDA_SYNC=1): an illegal memory access was encountered");
  EXPECT_EQ(cuda::launch_error_message("map_kernel", "", "loops.cuh", 99, "invalid configuration argument", false),
            "CUDA kernel map_kernel at loops.cuh:99 failed at launch: invalid configuration argument");
}

TEST(CudaLaunch, TheCurrentOpIsKnownWhileLaunchSyncOrProfilingIsOn) {
  const bool was = cuda::launch_sync();
  cuda::set_launch_sync(false);
  {
    ProfileScope s("conv2d", ProfileDirection::forward);
    EXPECT_EQ(current_profile_op(), "");  // neither on: scopes cost one branch and name nothing
  }
  cuda::set_launch_sync(true);
  EXPECT_EQ(current_profile_op(), "");
  {
    ProfileScope outer("batch_norm", ProfileDirection::backward);
    EXPECT_EQ(current_profile_op(), "batch_norm, backward");
    {
      ProfileScope inner("conv2d", ProfileDirection::forward);
      EXPECT_EQ(current_profile_op(), "conv2d, forward");
    }
    EXPECT_EQ(current_profile_op(), "batch_norm, backward");
  }
  EXPECT_EQ(current_profile_op(), "");
  cuda::set_launch_sync(false);
  {
    Profiler prof;
    ProfileScope s("softmax", ProfileDirection::forward);
    EXPECT_EQ(current_profile_op(), "softmax, forward");
  }
  EXPECT_EQ(current_profile_op(), "");
  cuda::set_launch_sync(was);
}

TEST(CudaLaunch, SyncAfterEveryLaunchKeepsResultsRight) {
  EMBER_REQUIRE_CUDA();
  const bool was = cuda::launch_sync();
  cuda::set_launch_sync(true);
  Tensor a = random_tensor({64, 33}, DType::f32), b = random_tensor({33, 17}, DType::f32, -1, 1, 99);
  Tensor c = matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).cpu();
  cuda::set_launch_sync(was);
  EXPECT_TRUE(all_close(c, matmul(a, b), 1e-4, 1e-5));
}
