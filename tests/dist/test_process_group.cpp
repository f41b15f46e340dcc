// Process groups (dist/process_group.h) and data parallelism (dist/data_parallel.h): every
// collective, and the ranks' averaged gradients, against what each rank computes alone.
// Rank r's tensors are drawn from a generator seeded by r, so any rank can recompute every
// other's and check a collective's result by itself. ctest runs these as one process (the
// one-process group) and again as 2 ranks under mpirun (dist_mpi_2ranks, the MPI group).
#include <cstdlib>
#include <string>

#include "dist/process_group.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::dist;
using ember::testing::error_of;
using ember::testing::values;

namespace {

std::shared_ptr<ProcessGroup> group_ptr() {
  static std::shared_ptr<ProcessGroup> g = default_group();
  return g;
}
ProcessGroup& group() { return *group_ptr(); }

Tensor rank_data(int rank, const Shape& shape, DType dtype) {
  Generator gen(1000 + rank);
  if (dtype == DType::i64) return randint(-1000, 1000, shape, DType::i64, Device::cpu(), &gen);
  return randn(shape, dtype, Device::cpu(), &gen);
}

// Σ over the ranks of rank_data, in double.
std::vector<double> sum_over_ranks(const Shape& shape, DType dtype) {
  std::vector<double> sum;
  for (int r = 0; r < group().size(); ++r) {
    const std::vector<double> v = values(rank_data(r, shape, dtype));
    if (sum.empty()) sum.assign(v.size(), 0.0);
    for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
  }
  return sum;
}

TEST(ProcessGroup, TheDefaultGroupIsTheLaunchersWorld) {
  if (launched_by_mpirun()) {
    EXPECT_EQ(group().backend(), "mpi");
    if (const char* n = std::getenv("OMPI_COMM_WORLD_SIZE")) {
      EXPECT_EQ(group().size(), std::atoi(n));
    }
    if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) {
      EXPECT_EQ(group().rank(), std::atoi(r));
    }
  } else {
    EXPECT_EQ(group().backend(), "single");
    EXPECT_EQ(group().size(), 1);
    EXPECT_EQ(group().rank(), 0);
  }
}

TEST(ProcessGroup, AllReduceSumsAndAveragesEveryRanksTensor) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Shape shape{3, 5, 7};
    const std::vector<double> ref = sum_over_ranks(shape, dt);
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    Tensor t = rank_data(group().rank(), shape, dt);
    group().all_reduce(t, dist::ReduceOp::sum);
    std::vector<double> got = values(t);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], tol * (1 + std::abs(ref[i]))) << i;
    Tensor a = rank_data(group().rank(), shape, dt);
    group().all_reduce(a, dist::ReduceOp::average);
    got = values(a);
    for (size_t i = 0; i < ref.size(); ++i)
      ASSERT_NEAR(got[i], ref[i] / group().size(), tol * (1 + std::abs(ref[i]))) << i;
  }
}

TEST(ProcessGroup, AllReduceOfIntegersIsExact) {
  const Shape shape{64};
  const std::vector<double> ref = sum_over_ranks(shape, DType::i64);
  Tensor t = rank_data(group().rank(), shape, DType::i64);
  group().all_reduce(t, dist::ReduceOp::sum);
  EXPECT_EQ(values(t), ref);
}

TEST(ProcessGroup, BroadcastGivesEveryRankTheRootsTensor) {
  const int root = group().size() - 1;
  const Shape shape{4, 6};
  Tensor t = rank_data(group().rank(), shape, DType::f32);
  group().broadcast(t, root);
  EXPECT_EQ(values(t), values(rank_data(root, shape, DType::f32)));
}

TEST(ProcessGroup, AllGatherStacksTheRanksInOrder) {
  const Shape shape{2, 3};
  Tensor g = group().all_gather(rank_data(group().rank(), shape, DType::f64));
  ASSERT_EQ(g.shape(), (Shape{group().size(), 2, 3}));
  const std::vector<double> got = values(g);
  for (int r = 0; r < group().size(); ++r) {
    const std::vector<double> want = values(rank_data(r, shape, DType::f64));
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[r * want.size() + i], want[i]) << "rank " << r;
  }
  group().barrier();  // every rank gets here before any leaves
}

TEST(ProcessGroup, RefusesWhatItCannotCarryWithAMessageNamingIt) {
  // Checked before any communication, identically on every rank, so no rank is left waiting.
  Tensor m = rank_data(group().rank(), {3, 4}, DType::f32);
  EXPECT_NE(error_of([&] { group().all_reduce(m.t()); }).find("all_reduce: tensor [4, 3] is not contiguous"),
            std::string::npos);
  EXPECT_NE(error_of([&] { group().broadcast(m.to(DType::bf16)); }).find("broadcast: dtype bf16 not supported"),
            std::string::npos);
  EXPECT_NE(error_of([&] { group().broadcast(m, group().size()); }).find("is not a rank"), std::string::npos);
  EXPECT_NE(error_of([&] { group().all_gather(Tensor()); }).find("all_gather: undefined tensor"), std::string::npos);
}

TEST(ProcessGroup, TheCollectiveTimeoutComesFromEmberDistTimeout) {
  const char* was = std::getenv("EMBER_DIST_TIMEOUT");
  const std::string saved = was ? was : "";
  unsetenv("EMBER_DIST_TIMEOUT");
  EXPECT_EQ(collective_timeout_seconds(), 1800);
  setenv("EMBER_DIST_TIMEOUT", "12.5", 1);
  EXPECT_EQ(collective_timeout_seconds(), 12.5);
  setenv("EMBER_DIST_TIMEOUT", "0", 1);
  EXPECT_EQ(collective_timeout_seconds(), 0);
  for (const char* bad : {"ten", "5s", "-1", "inf"}) {
    setenv("EMBER_DIST_TIMEOUT", bad, 1);
    EXPECT_NE(error_of([] { collective_timeout_seconds(); }).find("EMBER_DIST_TIMEOUT='" + std::string(bad) + "'"),
              std::string::npos)
        << bad;
  }
  if (was) setenv("EMBER_DIST_TIMEOUT", saved.c_str(), 1);
  else unsetenv("EMBER_DIST_TIMEOUT");
}

TEST(ProcessGroup, WithoutMpiTheWorldIsAClearError) {
  if (have_mpi()) GTEST_SKIP() << "this build has MPI";
  EXPECT_NE(error_of([] { mpi_world(); }).find("built without MPI"), std::string::npos);
}

}  // namespace

// ---- data parallelism: N ranks on shares of a global batch take one process's step -------------

#include "autograd/functions/cross_entropy.h"
#include "dist/data_parallel.h"
#include "nn/vit.h"

namespace {

// A small ViT in float64, no dropout or drop-path (their masks would differ between a rank's
// share and the whole batch), seeded identically on every rank.
std::shared_ptr<nn::ViT> small_vit() {
  nn::ViTConfig c = nn::ViTConfig::from_variant("tiny", 4, 8, 3);
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  c.dropout = 0;
  c.drop_path = 0;
  auto m = std::make_shared<nn::ViT>(c);
  m->to(DType::f64);
  return m;
}

TEST(DataParallel, RanksOnSharesOfABatchGetTheWholeBatchsGradient) {
  const int world = group().size(), B = 3;
  Generator gen(7);
  const Tensor x = randn({world * B, 3, 8, 8}, DType::f64, Device::cpu(), &gen);
  const Tensor y = randint(0, 3, {world * B}, DType::i64, Device::cpu(), &gen);

  // This rank's share, after broadcast_module has overwritten a perturbed copy with rank 0's.
  auto model = small_vit();
  if (group().rank() != 0)
    for (Variable p : model->parameters()) p.data().copy_(randn(p.shape(), DType::f64, Device::cpu(), &gen));
  broadcast_module(*model, group());
  const int64_t lo = group().rank() * B;
  cross_entropy(model->forward(Variable(x.narrow(0, lo, B).contiguous())), y.narrow(0, lo, B).contiguous()).backward();
  // A small bucket size so that several buckets (and the reverse order) are exercised.
  EXPECT_GT(all_reduce_gradients(*model, group(), 4096), 1);

  // One process on the whole batch.
  auto whole = small_vit();
  cross_entropy(whole->forward(Variable(x)), y).backward();

  const auto mine = model->named_parameters(), ref = whole->named_parameters();
  ASSERT_EQ(mine.size(), ref.size());
  double worst = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_EQ(mine[i].first, ref[i].first);
    ASSERT_EQ(values(mine[i].second.data()), values(ref[i].second.data())) << mine[i].first << ": weights differ";
    const std::vector<double> g = values(mine[i].second.grad()), r = values(ref[i].second.grad());
    for (size_t k = 0; k < g.size(); ++k) worst = std::max(worst, std::abs(g[k] - r[k]));
  }
  EXPECT_LE(worst, 1e-10) << "max |gradient difference| over every parameter";
}

TEST(DataParallel, AMissingGradientCountsAsZerosOnEveryRank) {
  auto model = small_vit();
  // No backward ran: every gradient is missing, on every rank; the average of zeros is zeros.
  EXPECT_GE(all_reduce_gradients(*model, group()), 1);
  for (const Variable& p : model->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    for (double v : values(p.grad())) ASSERT_EQ(v, 0.0);
  }
  EXPECT_NE(error_of([&] { all_reduce_gradients(*model, group(), 0); }).find("bucket_bytes must be positive"),
            std::string::npos);
}

}  // namespace

// ---- ranks with different models: a clear error on every rank, before any weight moves --------

namespace {

TEST(DataParallel, RanksWithDifferentModelsGetAnErrorNamingTheDifference) {
  auto model = small_vit();
  const std::vector<std::string> layout = model_layout(*model);
  ASSERT_FALSE(layout.empty());
  EXPECT_EQ(layout.front().rfind("parameter ", 0), 0u) << layout.front();
  EXPECT_NO_THROW(check_same_model(*model, group()));  // the same model everywhere
  if (group().size() < 2) GTEST_SKIP() << "the mismatch needs 2 ranks (dist_mpi_2ranks runs it)";

  // The last rank builds a wider ViT (dim 24 instead of 16): every rank must refuse it.
  nn::ViTConfig c = nn::ViTConfig::from_variant("tiny", 4, 8, 3);
  c.dim = 24;
  c.depth = 2;
  c.heads = 2;
  c.dropout = 0;
  c.drop_path = 0;
  nn::ViT wide_vit(c);
  wide_vit.to(DType::f64);
  const std::string wide = model_layout(wide_vit).front(), narrow = layout.front();  // e.g. cls_token [1, 1, 24] / [1, 1, 16]
  ASSERT_NE(wide, narrow);
  nn::Module& mixed = group().rank() == group().size() - 1 ? static_cast<nn::Module&>(wide_vit) : *model;
  const std::string err = error_of([&] { broadcast_module(mixed, group()); });
  const std::string last = std::to_string(group().size() - 1);
  EXPECT_NE(err.find("broadcast_module: the ranks' models differ: rank " + last + " has another model than rank 0"),
            std::string::npos)
      << err;
  // Every rank's message names what differs first (whichever rank's the user sees first).
  EXPECT_NE(err.find("entry 0 is '" + wide + "' on rank " + last + " but '" + narrow + "' on rank 0"), std::string::npos)
      << err;
  // The group is still usable: the check left no collective half-done.
  Tensor t = from_vector<double>({1.0}, {1});
  group().all_reduce(t);
  EXPECT_EQ(t.to_vector<double>()[0], group().size());
}

}  // namespace

// ---- SyncBatchNorm: N ranks' BatchNorm statistics are the whole batch's --------------------------

#include "nn/efficientnet.h"

namespace {

// A narrow, shallow EfficientNet in float64 (B0: SiLU after each BatchNorm; Lite0: ReLU6 fused
// into it), no dropout or drop-path, the same weights on every rank.
std::shared_ptr<nn::EfficientNet> small_effnet(const std::string& variant) {
  nn::EfficientNetConfig c = nn::EfficientNetConfig::from_variant(variant, 5);
  c.width = 0.25;
  c.depth = 0.2;
  c.resolution = 16;
  c.cifar_stem = true;
  c.dropout = 0;
  c.drop_path = 0;
  auto m = std::make_shared<nn::EfficientNet>(c);
  m->to(DType::f64);
  m->train();
  return m;
}

// max |a − b| over two lists of named tensors, by name.
double worst_difference(const std::vector<std::pair<std::string, Tensor>>& a,
                        const std::vector<std::pair<std::string, Tensor>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    const std::vector<double> x = values(a[i].second), y = values(b[i].second);
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::abs(x[k] - y[k]));
  }
  return worst;
}

// max |t| over a list of named tensors.
double largest(const std::vector<std::pair<std::string, Tensor>>& ts) {
  double m = 0;
  for (const auto& [name, t] : ts)
    for (double v : values(t)) m = std::max(m, std::abs(v));
  return m;
}

std::vector<std::pair<std::string, Tensor>> gradients(nn::Module& m) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, p] : m.named_parameters()) out.emplace_back(name, p.grad());
  return out;
}

TEST(DataParallel, SyncBatchNormRanksGetTheWholeBatchsGradientsAndStatistics) {
  for (const std::string variant : {"b0", "lite0"}) {
    SCOPED_TRACE(variant);
    const int world = group().size(), B = 3;
    Generator gen(11);
    const Tensor x = randn({world * B, 3, 16, 16}, DType::f64, Device::cpu(), &gen);
    const Tensor y = randint(0, 5, {world * B}, DType::i64, Device::cpu(), &gen);
    const int64_t lo = group().rank() * B;
    const Tensor mine_x = x.narrow(0, lo, B).contiguous(), mine_y = y.narrow(0, lo, B).contiguous();

    // This rank's share, with SyncBatchNorm.
    auto model = small_effnet(variant);
    broadcast_module(*model, group());
    EXPECT_GT(enable_sync_batch_norm(*model, group_ptr()), 10);
    cross_entropy(model->forward(Variable(mine_x)), mine_y).backward();
    all_reduce_gradients(*model, group());

    // One process on the whole batch, BatchNorm's own kernel.
    auto whole = small_effnet(variant);
    cross_entropy(whole->forward(Variable(x)), y).backward();

    // BatchNorm over 3 images of 16×16 makes gradients of several hundred: the bound is relative
    // to the largest (f64 rounding of the two summation orders is ~1e-13 of it).
    const double scale = std::max(1.0, largest(gradients(*whole)));
    EXPECT_LE(worst_difference(gradients(*model), gradients(*whole)), 1e-10 * scale)
        << "max |gradient difference|; the largest gradient is " << scale;
    EXPECT_LE(worst_difference(model->named_buffers(), whole->named_buffers()), 1e-12)
        << "max |running statistics difference|";

    // Without the synchronization each rank normalises with its own 3 images: not the same
    // (what makes this test able to fail).
    if (world > 1) {
      auto plain = small_effnet(variant);
      broadcast_module(*plain, group());
      cross_entropy(plain->forward(Variable(mine_x)), mine_y).backward();
      all_reduce_gradients(*plain, group());
      EXPECT_GT(worst_difference(gradients(*plain), gradients(*whole)), 1e-6 * scale);
    }
  }
}

TEST(DataParallel, SyncBatchNormRefusesAChannelWithOneValueOverAllRanks) {
  nn::BatchNorm2d bn(4);
  bn.to(DType::f64);
  bn.sync_sum = [](const Tensor&) {};  // the one-process sum
  Generator gen(3);
  const Tensor one = randn({1, 4}, DType::f64, Device::cpu(), &gen);
  EXPECT_NE(error_of([&] { bn.forward(Variable(one)); }).find("sync_batch_norm: training needs more than one value"),
            std::string::npos);
}

}  // namespace

// ---- dropout and drop-path keyed by the global sample: N ranks draw one process's masks ---------

#include "tensor/ops/dropout.h"

namespace {

TEST(DataParallel, RanksWithDropoutAndDropPathGetTheWholeBatchsGradient) {
  nn::ViTConfig c = nn::ViTConfig::from_variant("tiny", 4, 8, 3);
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  c.dropout = 0.3;
  c.drop_path = 0.4;
  auto make = [&] {
    auto m = std::make_shared<nn::ViT>(c);
    m->to(DType::f64);
    m->train();
    return m;
  };
  const int world = group().size(), B = 3;
  Generator gen(17);
  const Tensor x = randn({world * B, 3, 8, 8}, DType::f64, Device::cpu(), &gen);
  const Tensor y = randint(0, 3, {world * B}, DType::i64, Device::cpu(), &gen);
  const int64_t lo = group().rank() * B;
  const Tensor mine_x = x.narrow(0, lo, B).contiguous(), mine_y = y.narrow(0, lo, B).contiguous();

  auto model = make();
  broadcast_module(*model, group());
  manual_seed(1234);  // every rank's masks come from the same draws ...
  {
    GlobalSampleScope keyed(lo, B);  // ... at the rows of its samples
    cross_entropy(model->forward(Variable(mine_x)), mine_y).backward();
  }
  all_reduce_gradients(*model, group());

  auto whole = make();
  manual_seed(1234);
  cross_entropy(whole->forward(Variable(x)), y).backward();
  EXPECT_LE(worst_difference(gradients(*model), gradients(*whole)), 1e-10) << "max |gradient difference|";

  if (world > 1) {  // unkeyed, every rank draws the first rows: not one process's masks
    auto plain = make();
    broadcast_module(*plain, group());
    manual_seed(1234);
    cross_entropy(plain->forward(Variable(mine_x)), mine_y).backward();
    all_reduce_gradients(*plain, group());
    EXPECT_GT(worst_difference(gradients(*plain), gradients(*whole)), 1e-6);
  }
}

TEST(DataParallel, AnEfficientNetWithSyncBatchNormDropoutAndDropPathGetsTheWholeBatchsGradient) {
  nn::EfficientNetConfig c = nn::EfficientNetConfig::from_variant("b0", 5);
  c.width = 0.25;
  c.depth = 0.4;  // stages with 2 blocks: residual branches that drop-path can drop
  c.resolution = 16;
  c.cifar_stem = true;
  c.dropout = 0.3;
  c.drop_path = 0.5;
  auto make = [&] {
    auto m = std::make_shared<nn::EfficientNet>(c);
    m->to(DType::f64);
    m->train();
    return m;
  };
  const int world = group().size(), B = 4;
  Generator gen(23);
  const Tensor x = randn({world * B, 3, 16, 16}, DType::f64, Device::cpu(), &gen);
  const Tensor y = randint(0, 5, {world * B}, DType::i64, Device::cpu(), &gen);
  const int64_t lo = group().rank() * B;

  auto model = make();
  broadcast_module(*model, group());
  enable_sync_batch_norm(*model, group_ptr());
  manual_seed(99);
  {
    GlobalSampleScope keyed(lo, B);
    cross_entropy(model->forward(Variable(x.narrow(0, lo, B).contiguous())), y.narrow(0, lo, B).contiguous()).backward();
  }
  all_reduce_gradients(*model, group());

  auto whole = make();
  manual_seed(99);
  cross_entropy(whole->forward(Variable(x)), y).backward();
  const double scale = std::max(1.0, largest(gradients(*whole)));
  EXPECT_LE(worst_difference(gradients(*model), gradients(*whole)), 1e-10 * scale)
      << "max |gradient difference|; the largest gradient is " << scale;
}

}  // namespace
