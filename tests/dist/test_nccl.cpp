// CUDA tensors in collectives (dist/nccl_group.h): the NCCL backend, which GPU a rank takes, and
// the group that routes each tensor to the backend of its device.
//
// Here on the CPU: the dlopen of the library and its errors, the device choice from the local
// rank, the routing. On a GPU (skipped visibly without one, failed under EMBER_EXPECT_CUDA=1):
//   NcclOneRank   a real one-rank NCCL communicator: every collective and dtype, async, errors
//   NcclTwoGpus   two ranks as two threads of this process on two GPUs: every collective against
//                 a serial float64 reference (skipped, visibly, with fewer than 2 GPUs)
//   NcclRanks     GradientSync, all_reduce_gradients and broadcast_module with a model on the GPU
//                 through default_group() (one process: a one-rank NCCL group under the routed
//                 group; under `mpirun -np 2` (ctest dist_nccl_2ranks) one rank per GPU): the
//                 ranks' averaged gradients equal the whole batch's on one GPU
#include <array>
#include <cmath>
#include <optional>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "autograd/functions/cross_entropy.h"
#include "dist/gradient_sync.h"
#include "dist/nccl_group.h"
#include "dist/shared_library.h"
#include "nn/vit.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::dist;
using ember::testing::error_of;
using ember::testing::values;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Sets (or, with nullptr, unsets) an environment variable for one scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* was = std::getenv(name)) saved_ = std::string(was), had_ = true;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_.c_str(), saved_.c_str(), 1);
    else unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, saved_;
  bool had_ = false;
};

// No launcher variable at all, for one scope (under mpirun ctest sets Open MPI's).
struct NoLauncherEnv {
  ScopedEnv a{"OMPI_COMM_WORLD_LOCAL_RANK", nullptr}, b{"OMPI_COMM_WORLD_LOCAL_SIZE", nullptr},
      c{"MPI_LOCALRANKID", nullptr}, d{"MPI_LOCALNRANKS", nullptr}, e{"SLURM_LOCALID", nullptr},
      f{"SLURM_NTASKS_PER_NODE", nullptr};
};

// A CPU group that records what reaches it (every collective is the identity).
class RecordingGroup final : public ProcessGroup {
 public:
  RecordingGroup(int rank, int size, std::string name) : rank_(rank), size_(size), name_(std::move(name)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return name_; }
  void all_reduce(const Tensor&, dist::ReduceOp) override { calls.push_back("all_reduce"); }
  std::unique_ptr<Work> all_reduce_async(const Tensor& t, dist::ReduceOp op) override {
    calls.push_back("all_reduce_async");
    return single_process_group()->all_reduce_async(t, op);
  }
  void broadcast(const Tensor&, int root) override { calls.push_back("broadcast " + std::to_string(root)); }
  Tensor all_gather(const Tensor& t) override {
    calls.push_back("all_gather");
    return t.unsqueeze(0).expand({size_, -1}).contiguous();
  }
  void barrier() override { calls.push_back("barrier"); }
  void abort(int code) override { calls.push_back("abort " + std::to_string(code)); }
  std::vector<std::string> calls;

 private:
  int rank_, size_;
  std::string name_;
};

}  // namespace

// ---- on the CPU --------------------------------------------------------------------------------

TEST(SharedLibrary, OpensALibraryAndResolvesItsFunctions) {
  SharedLibrary m = SharedLibrary::open("libm", {"libember-no-such-library.so.9", "libm.so.6"}, "");
  EXPECT_EQ(m.path(), "libm.so.6") << "the first candidate that opens";
  auto* cosine = m.symbol<double (*)(double)>("cos");
  EXPECT_EQ(cosine(0.5), std::cos(0.5));
  const std::string e = error_of([&] { m.raw_symbol("ncclGetVersion"); });
  EXPECT_TRUE(has(e, "libm library libm.so.6 has no symbol ncclGetVersion")) << e;
}

TEST(SharedLibrary, NamesTheLibraryEveryPathTriedWithTheReasonAndTheHint) {
  const std::string e = error_of([] {
    SharedLibrary::open("NCCL", {"/nonexistent/dir/libnccl.so.2", "libember-no-such-library.so.9"}, "set X to fix it");
  });
  EXPECT_TRUE(has(e, "NCCL library not found; tried:")) << e;
  EXPECT_TRUE(has(e, "/nonexistent/dir/libnccl.so.2: ")) << e;
  EXPECT_TRUE(has(e, "libember-no-such-library.so.9: ")) << e;
  EXPECT_TRUE(has(e, "No such file")) << "dlerror()'s reason: " << e;
  EXPECT_TRUE(has(e, "set X to fix it")) << e;
}

TEST(Nccl, TheLibraryIsLookedForWhereEmberNcclLibrarySaysElseByItsSoname) {
  {
    ScopedEnv env("EMBER_NCCL_LIBRARY", "/opt/nccl/lib/libnccl.so.2.99");
    EXPECT_EQ(nccl_library_candidates(), std::vector<std::string>{"/opt/nccl/lib/libnccl.so.2.99"});
  }
  ScopedEnv env("EMBER_NCCL_LIBRARY", nullptr);
  const std::vector<std::string> c = nccl_library_candidates();
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c.front(), "libnccl.so.2");
}

TEST(Nccl, AMissingLibraryIsAnErrorNamingItAndHowToFixIt) {
  const std::string e = error_of([] { load_nccl_library({"/nonexistent/lib/libnccl.so.2"}); });
  if (!nccl_built()) {
    EXPECT_TRUE(has(e, "ember was built without NCCL")) << e;
    return;
  }
  EXPECT_TRUE(has(e, "NCCL library not found")) << e;
  EXPECT_TRUE(has(e, "/nonexistent/lib/libnccl.so.2")) << e;
  EXPECT_TRUE(has(e, "EMBER_NCCL_LIBRARY")) << e;
  EXPECT_TRUE(has(e, "libnccl2")) << e;
  // A library that is not NCCL: the first missing function is named.
  const std::string not_nccl = error_of([] { load_nccl_library({"libm.so.6"}); });
  EXPECT_TRUE(has(not_nccl, "has no symbol ncclGetVersion")) << not_nccl;
}

TEST(Nccl, AGroupOverAnotherGroupRefusesOnEveryRankWhenTheLibraryCannotBeOpened) {
  // Before any CUDA work: every rank opens the library, and they agree that one could not.
  ScopedEnv env("EMBER_NCCL_LIBRARY", "/nonexistent/lib/libnccl.so.2");
  auto cpu = std::make_shared<RecordingGroup>(0, 1, "mpi");
  const std::string e = error_of([&] { nccl_group(*cpu, 0); });
  EXPECT_TRUE(has(e, "a collective on a CUDA tensor needs NCCL, which rank 0 could not open")) << e;
  EXPECT_TRUE(has(e, nccl_built() ? "/nonexistent/lib/libnccl.so.2" : "built without NCCL")) << e;
  EXPECT_EQ(cpu->calls, std::vector<std::string>{"all_gather"}) << "one all_gather of the ranks' verdicts, no broadcast";
}

TEST(Nccl, TheLibraryOfThisMachineOpensWithEveryFunctionEmberCalls) {
  if (!nccl_built()) GTEST_SKIP() << "NCCL test skipped: ember was built without NCCL (nccl.h not found)";
  int version = 0;
  const std::string e = error_of([&] { version = load_nccl_library(nccl_library_candidates()); });
  if (has(e, "library not found")) GTEST_SKIP() << "NCCL test skipped: no libnccl.so.2 on this machine: " << e;
  EXPECT_EQ(e, "no error");
  EXPECT_GE(version, 21400) << "NCCL_VERSION code of the library opened";
}

TEST(CudaDevice, EachRankTakesTheGpuOfItsLocalRank) {
  EXPECT_EQ(choose_cuda_device({0, 1}, 1, false), 0);
  EXPECT_EQ(choose_cuda_device({0, 4}, 4, false), 0);
  EXPECT_EQ(choose_cuda_device({3, 4}, 4, false), 3);
  EXPECT_EQ(choose_cuda_device({1, 2}, 8, false), 1) << "fewer ranks than GPUs: the first ones";
  EXPECT_EQ(choose_cuda_device({1, 2}, 1, true), 0) << "shared, when allowed";
  EXPECT_EQ(choose_cuda_device({5, 6}, 4, true), 1);
}

TEST(CudaDevice, MoreRanksThanGpusIsAnErrorNamingBothUnlessSharingIsAllowed) {
  const std::string e = error_of([] { choose_cuda_device({1, 2}, 1, false); });
  EXPECT_TRUE(has(e, "2 ranks on this host but 1 GPU")) << e;
  EXPECT_TRUE(has(e, "EMBER_DIST_SHARE_GPU=1")) << e;
  EXPECT_TRUE(has(error_of([] { choose_cuda_device({0, 3}, 2, false); }), "3 ranks on this host but 2 GPUs"));
  EXPECT_TRUE(has(error_of([] { choose_cuda_device({0, 1}, 0, true); }), "this host has none"));
  EXPECT_TRUE(has(error_of([] { choose_cuda_device({2, 2}, 4, false); }), "local rank 2 of 2 is not a rank of its host"));
}

TEST(CudaDevice, SharingComesFromEmberDistShareGpu) {
  {
    ScopedEnv env("EMBER_DIST_SHARE_GPU", nullptr);
    EXPECT_FALSE(share_gpu_allowed());
  }
  {
    ScopedEnv env("EMBER_DIST_SHARE_GPU", "1");
    EXPECT_TRUE(share_gpu_allowed());
  }
  ScopedEnv env("EMBER_DIST_SHARE_GPU", "yes");
  EXPECT_TRUE(has(error_of([] { share_gpu_allowed(); }), "EMBER_DIST_SHARE_GPU"));
}

TEST(CudaDevice, TheLocalRankComesFromTheLaunchersVariables) {
  NoLauncherEnv none;
  EXPECT_FALSE(host_placement_from_env().has_value());
  {
    ScopedEnv r("OMPI_COMM_WORLD_LOCAL_RANK", "1"), s("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
    const auto p = host_placement_from_env();
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->local_rank, 1);
    EXPECT_EQ(p->local_size, 2);
  }
  {
    ScopedEnv r("MPI_LOCALRANKID", "3"), s("MPI_LOCALNRANKS", "4");
    ASSERT_TRUE(host_placement_from_env().has_value());
    EXPECT_EQ(host_placement_from_env()->local_rank, 3);
  }
  {
    ScopedEnv r("SLURM_LOCALID", "0"), s("SLURM_NTASKS_PER_NODE", "8");
    ASSERT_TRUE(host_placement_from_env().has_value());
    EXPECT_EQ(host_placement_from_env()->local_size, 8);
  }
  {
    ScopedEnv r("OMPI_COMM_WORLD_LOCAL_RANK", "x1"), s("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
    EXPECT_TRUE(has(error_of([] { host_placement_from_env(); }), "OMPI_COMM_WORLD_LOCAL_RANK='x1'"));
  }
  ScopedEnv r("OMPI_COMM_WORLD_LOCAL_RANK", "2"), s("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  EXPECT_TRUE(has(error_of([] { host_placement_from_env(); }), "not in [0, size)"));
}

TEST(CudaDevice, HostPlacementOfAGroup) {
  NoLauncherEnv none;
  RecordingGroup alone(0, 1, "single"), pair(1, 2, "fake");
  EXPECT_EQ(host_placement(alone).local_size, 1);
  EXPECT_TRUE(has(error_of([&] { host_placement(pair); }), "no launcher variable")) << "and not an MPI group";
  ScopedEnv r("OMPI_COMM_WORLD_LOCAL_RANK", "1"), s("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  EXPECT_EQ(host_placement(pair).local_rank, 1);
  // Through a routed group too.
  auto routed = device_routed_group(std::make_shared<RecordingGroup>(1, 2, "fake"));
  EXPECT_EQ(host_placement(*routed).local_size, 2);
}

TEST(CudaDevice, AnAppsDeviceIsThisRanksGpuUnderSeveralRanksAndAsWrittenOtherwise) {
  RecordingGroup alone(0, 1, "single"), pair(1, 2, "fake");
  EXPECT_EQ(rank_device("cpu", pair), Device::cpu());
  EXPECT_EQ(rank_device("cuda:3", pair), Device::cuda(3)) << "an explicit index is taken as written";
  EXPECT_EQ(rank_device("cuda", alone), Device::cuda(0)) << "one process: Device::parse";
  EXPECT_TRUE(has(error_of([&] { rank_device("gpu", pair); }), "'gpu' is not a device"));
  NoLauncherEnv none;
  ScopedEnv r("OMPI_COMM_WORLD_LOCAL_RANK", "1"), s("OMPI_COMM_WORLD_LOCAL_SIZE", "2"), share("EMBER_DIST_SHARE_GPU", nullptr);
  const int gpus = cuda::device_count();
  if (gpus >= 2) {
    const int was = cuda::current_device();
    EXPECT_EQ(rank_device("cuda", pair), Device::cuda(1));
    EXPECT_EQ(cuda::current_device(), 1) << "made current";
    cuda::set_device(was);
  } else {
    const std::string e = error_of([&] { rank_device("cuda", pair); });
    EXPECT_TRUE(has(e, gpus == 0 ? "this host has none" : "2 ranks on this host but 1 GPU")) << e;
  }
}

TEST(DeviceRoutedGroup, CpuTensorsGoToTheCpuGroupAndNoCudaGroupIsMadeForThem) {
  EXPECT_EQ(collective_backend(Device::cpu()), CollectiveBackend::cpu);
  EXPECT_EQ(collective_backend(Device::cuda(0)), CollectiveBackend::nccl);
  EXPECT_EQ(collective_backend(Device::cuda(3)), CollectiveBackend::nccl);
  auto cpu = std::make_shared<RecordingGroup>(1, 2, "mpi");
  int made = 0;
  auto g = device_routed_group(cpu, [&](int) -> std::shared_ptr<ProcessGroup> {
    ++made;
    return std::make_shared<RecordingGroup>(1, 2, "nccl");
  });
  EXPECT_EQ(g->rank(), 1);
  EXPECT_EQ(g->size(), 2);
  EXPECT_EQ(g->backend(), "mpi");
  Tensor t = ember::testing::random_tensor({4}, DType::f64);
  g->all_reduce(t, dist::ReduceOp::average);
  g->all_reduce_async(t, dist::ReduceOp::sum)->wait();
  g->broadcast(t, 1);
  EXPECT_EQ(g->all_gather(t).shape(), (Shape{2, 4}));
  g->barrier();
  g->abort(3);
  EXPECT_EQ(cpu->calls, (std::vector<std::string>{"all_reduce", "all_reduce_async", "broadcast 1", "all_gather",
                                                  "barrier", "abort 3"}));
  EXPECT_EQ(made, 0);
  EXPECT_TRUE(has(error_of([] { device_routed_group(nullptr); }), "no CPU group"));
}

// ---- on a GPU ----------------------------------------------------------------------------------

namespace {

Tensor rank_data(int rank, const Shape& shape, DType dtype) {
  Generator gen(500 + rank);
  if (dtype == DType::i64) return randint(-1000, 1000, shape, DType::i64, Device::cpu(), &gen);
  return randn(shape, DType::f64, Device::cpu(), &gen).to(dtype);  // bf16/f16 rounded from f64
}

// Elementwise agreement within what the dtype holds: bf16 and f16 sums are rounded once more.
double tolerance(DType t) {
  switch (t) {
    case DType::bf16: return 2e-2;
    case DType::f16: return 2e-3;
    case DType::f32: return 1e-5;
    default: return 0;
  }
}
void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, DType dtype, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::abs(got[i] - want[i]), tolerance(dtype) * (1 + std::abs(want[i]))) << what << " element " << i;
}

const DType kDtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64};

}  // namespace

TEST(DeviceRoutedGroup, CudaTensorsGoToOneCudaGroupMadeOnTheFirstOfThem) {
  EMBER_REQUIRE_CUDA();
  auto cpu = std::make_shared<RecordingGroup>(0, 1, "mpi");
  std::vector<int> made;
  std::shared_ptr<RecordingGroup> cuda_group;
  auto g = device_routed_group(cpu, [&](int device) -> std::shared_ptr<ProcessGroup> {
    made.push_back(device);
    cuda_group = std::make_shared<RecordingGroup>(0, 1, "nccl");
    return cuda_group;
  });
  Tensor c = ember::testing::random_tensor({4}, DType::f32, -1, 1, 7, Device::cuda(0));
  g->all_reduce(c, dist::ReduceOp::sum);
  g->broadcast(c, 0);
  g->all_reduce(ember::testing::random_tensor({2}, DType::f64), dist::ReduceOp::sum);  // CPU: the CPU group
  EXPECT_EQ(made, std::vector<int>{0});
  EXPECT_EQ(cuda_group->calls, (std::vector<std::string>{"all_reduce", "broadcast 0"}));
  EXPECT_EQ(g->backend(), "mpi+nccl");
  g->barrier();
  g->abort(2);
  EXPECT_EQ(cpu->calls, (std::vector<std::string>{"all_reduce", "barrier", "abort 2"}))
      << "barrier and abort are the CPU group's (MPI_Abort ends the processes, NCCL's communicator with them)";
  EXPECT_EQ(cuda_group->calls.size(), 2u);
  if (cuda::device_count() >= 2) {
    Tensor other = ember::testing::random_tensor({4}, DType::f32, -1, 1, 7, Device::cuda(1));
    EXPECT_TRUE(has(error_of([&] { g->all_reduce(other); }), "tensor on cuda:1, but rank 0's CUDA collectives run on cuda:0"));
  }
}

TEST(NcclOneRank, EveryCollectiveAndDtypeOnARealCommunicator) {
  EMBER_REQUIRE_CUDA();
  ASSERT_TRUE(nccl_built()) << "a CUDA build without nccl.h: the NCCL backend is not built";
  cuda::set_device(0);
  std::shared_ptr<ProcessGroup> g = nccl_group(nccl_unique_id(), 0, 1, 0);
  EXPECT_EQ(g->backend(), "nccl");
  for (DType dt : kDtypes) {
    const std::string name = dtype_name(dt);
    const Tensor host = rank_data(0, {3, 5}, dt);
    const std::vector<double> want = values(host);
    Tensor t = host.to(Device::cuda(0));
    g->all_reduce(t, dist::ReduceOp::sum);
    expect_near_all(values(t), want, dt, name + " sum");
    if (dt != DType::i64) {
      g->all_reduce(t, dist::ReduceOp::average);
      expect_near_all(values(t), want, dt, name + " average");
      g->all_reduce_async(t, dist::ReduceOp::average)->wait();
      expect_near_all(values(t), want, dt, name + " async average");
    }
    g->broadcast(t, 0);
    expect_near_all(values(t), want, dt, name + " broadcast");
    const Tensor all = g->all_gather(t);
    EXPECT_EQ(all.shape(), (Shape{1, 3, 5}));
    EXPECT_TRUE(all.device().is_cuda());
    expect_near_all(values(all), want, dt, name + " all_gather");
  }
  g->barrier();
  // Work::test() polls without waiting; it is true once the collective is done.
  Tensor big = full({1 << 20}, 2.0, DType::f32, Device::cuda(0));
  auto work = g->all_reduce_async(big, dist::ReduceOp::sum);
  while (!work->test()) {
  }
  EXPECT_EQ(big.narrow(0, (1 << 20) - 1, 1).item(), 2.0);
  // Refusals, before any communication.
  const Tensor host_m = rank_data(0, {3, 4}, DType::f32);
  Tensor m = host_m.to(Device::cuda(0));
  Tensor m_i64 = host_m.to(DType::i64).to(Device::cuda(0)), m_bool = host_m.to(DType::boolean).to(Device::cuda(0));
  EXPECT_TRUE(has(error_of([&] { g->all_reduce(m.t()); }), "all_reduce: tensor [4, 3] is not contiguous"));
  EXPECT_TRUE(has(error_of([&] { g->all_reduce(host_m); }), "all_reduce: tensor on cpu, but this NCCL group"));
  EXPECT_TRUE(has(error_of([&] { g->all_reduce(m_i64, dist::ReduceOp::average); }),
                  "all_reduce: average of a i64 tensor (use sum)"));
  EXPECT_TRUE(has(error_of([&] { g->broadcast(m, 1); }), "broadcast: root 1 is not a rank of a group of 1"));
  EXPECT_TRUE(has(error_of([&] { g->broadcast(m_bool); }), "broadcast: dtype bool not supported by NCCL"));
}

TEST(NcclTwoGpus, EveryCollectiveAgainstASerialReferenceWithOneThreadPerRank) {
  EMBER_REQUIRE_CUDA();
  ASSERT_TRUE(nccl_built()) << "a CUDA build without nccl.h: the NCCL backend is not built";
  if (cuda::device_count() < 2)
    GTEST_SKIP() << "NCCL 2-GPU test skipped: " << cuda::device_count()
                 << " GPU here; NCCL takes one GPU per rank (docs/DISTRIBUTED.md)";
  const NcclUniqueId id = nccl_unique_id();
  constexpr int kRanks = 2;
  std::array<std::string, kRanks> failure;
  auto rank_main = [&](int r) {
    try {
      cuda::set_device(r);
      std::shared_ptr<ProcessGroup> g = nccl_group(id, r, kRanks, r);
      for (DType dt : kDtypes) {
        const std::string name = dtype_name(dt);
        const Shape shape{7, 3};
        std::vector<double> sum(21, 0.0);
        for (int q = 0; q < kRanks; ++q) {
          const std::vector<double> v = values(rank_data(q, shape, dt));
          for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
        }
        Tensor t = rank_data(r, shape, dt).to(Device::cuda(r));
        g->all_reduce(t, dist::ReduceOp::sum);
        expect_near_all(values(t), sum, dt, name + " sum");
        if (dt != DType::i64) {
          std::vector<double> mean = sum;
          for (double& x : mean) x /= kRanks;
          Tensor a = rank_data(r, shape, dt).to(Device::cuda(r));
          g->all_reduce(a, dist::ReduceOp::average);
          expect_near_all(values(a), mean, dt, name + " average");
          Tensor b = rank_data(r, shape, dt).to(Device::cuda(r));
          g->all_reduce_async(b, dist::ReduceOp::average)->wait();
          expect_near_all(values(b), mean, dt, name + " async average");
        }
        Tensor c = rank_data(r, shape, dt).to(Device::cuda(r));
        g->broadcast(c, 1);
        expect_near_all(values(c), values(rank_data(1, shape, dt)), dt, name + " broadcast from rank 1");
        const Tensor all = g->all_gather(rank_data(r, shape, dt).to(Device::cuda(r)));
        EXPECT_EQ(all.shape(), (Shape{kRanks, 7, 3}));
        for (int q = 0; q < kRanks; ++q)
          expect_near_all(values(all.select(0, q)), values(rank_data(q, shape, dt)), dt, name + " all_gather row");
      }
      g->barrier();
    } catch (const std::exception& e) {
      failure[r] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(failure[r], "") << "rank " << r;
}

// ---- the apps' path: a model on the GPU through default_group() ---------------------------------

namespace {

// One process: a one-rank NCCL group for CUDA tensors (the routed group over the one-process
// group); under mpirun: default_group() (MPI + NCCL).
// Never destroyed: its NCCL communicator must not be torn down after the CUDA runtime at exit.
std::shared_ptr<ProcessGroup> routed() {
  static auto* g = new std::shared_ptr<ProcessGroup>(launched_by_mpirun() ? default_group()
                                                                          : device_routed_group(single_process_group()));
  return *g;
}

// Skips (visibly) when this host has fewer GPUs than ranks; returns this rank's device.
std::optional<Device> gpu_of_this_rank() {
  const HostPlacement p = host_placement(*routed());
  if (cuda::device_count() < p.local_size && !share_gpu_allowed()) return std::nullopt;
  return rank_device("cuda", *routed());
}

std::shared_ptr<nn::ViT> small_vit(Device device) {
  nn::ViTConfig c = nn::ViTConfig::from_variant("tiny", 4, 8, 3);
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  auto m = std::make_shared<nn::ViT>(c);
  m->to(device);
  m->train();
  return m;
}

double worst_difference(const nn::Module& a, const nn::Module& b, double* largest) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  double worst = 0;
  *largest = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    const Tensor &ga = pa[i].second.grad(), &gb = pb[i].second.grad();
    EXPECT_EQ(ga.defined(), gb.defined()) << pa[i].first;
    if (!ga.defined() || !gb.defined()) continue;
    const std::vector<double> x = values(ga), y = values(gb);
    for (size_t k = 0; k < x.size(); ++k) {
      worst = std::max(worst, std::abs(x[k] - y[k]));
      *largest = std::max(*largest, std::abs(y[k]));
    }
  }
  return worst;
}

}  // namespace

TEST(NcclRanks, GradientsOfAModelOnTheGpuAreTheWholeBatchsThroughBucketsDuringBackward) {
  EMBER_REQUIRE_CUDA();
  ASSERT_TRUE(nccl_built()) << "a CUDA build without nccl.h: the NCCL backend is not built";
  const std::optional<Device> dev = gpu_of_this_rank();
  if (!dev) GTEST_SKIP() << "NCCL test skipped: fewer GPUs than ranks on this host (" << cuda::device_count() << ")";
  ProcessGroup& g = *routed();
  const int world = g.size();
  const int64_t B = 3;
  // Two micro-batches of world·B images, the same on every rank; rank r takes its share of each.
  Generator gen(17);
  const Tensor x1 = randn({world * B, 3, 8, 8}, DType::f32, Device::cpu(), &gen);
  const Tensor y1 = randint(0, 3, {world * B}, DType::i64, Device::cpu(), &gen);
  const Tensor x2 = randn({world * B, 3, 8, 8}, DType::f32, Device::cpu(), &gen);
  const Tensor y2 = randint(0, 3, {world * B}, DType::i64, Device::cpu(), &gen);
  auto share = [&](const Tensor& t) { return t.narrow(0, g.rank() * B, B).contiguous().to(*dev); };

  manual_seed(3 + g.rank());  // different initial weights on each rank: broadcast_module must fix them
  auto model = small_vit(*dev);
  broadcast_module(*model, g);
  EXPECT_EQ(g.backend().substr(g.backend().size() - 4), "nccl") << "the parameters went through NCCL";
  GradientSync sync(*model, routed(), /*bucket_bytes=*/4096, /*first_bucket_bytes=*/1024);
  {
    auto local = sync.no_sync();
    sync.backward(cross_entropy(model->forward(Variable(share(x1))), share(y1)));
  }
  sync.backward(cross_entropy(model->forward(Variable(share(x2))), share(y2)));
  EXPECT_GT(sync.last_stats().buckets, 3);
  EXPECT_EQ(sync.last_stats().started_in_backward, sync.last_stats().buckets);

  // One GPU, the whole micro-batches, rank 0's weights.
  manual_seed(3);
  auto whole = small_vit(*dev);
  cross_entropy(whole->forward(Variable(x1.to(*dev))), y1.to(*dev)).backward();
  cross_entropy(whole->forward(Variable(x2.to(*dev))), y2.to(*dev)).backward();
  double largest = 0;
  const double worst = worst_difference(*model, *whole, &largest);
  EXPECT_GT(largest, 0);
  EXPECT_LE(worst, 1e-4 * largest) << "f32 on the GPU: summation order only";

  // all_reduce_gradients (after backward) gives the same.
  for (Variable p : model->parameters()) p.zero_grad();
  cross_entropy(model->forward(Variable(share(x1))), share(y1)).backward();
  all_reduce_gradients(*model, g, /*bucket_bytes=*/4096);
  for (Variable p : whole->parameters()) p.zero_grad();
  cross_entropy(whole->forward(Variable(x1.to(*dev))), y1.to(*dev)).backward();
  EXPECT_LE(worst_difference(*model, *whole, &largest), 1e-4 * largest);
}
