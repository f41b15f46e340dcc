// GradientSync (dist/gradient_sync.h): gradients all-reduced in buckets while backward runs give
// N ranks on shares of a batch the whole batch's gradient, as one process computes it (float64,
// ≤ 1e-10); no_sync accumulates locally and the next synchronized backward reduces the sum.
// ctest runs this as one process and again as 2 ranks under mpirun (dist_mpi_gradient_sync).
#include <memory>
#include <string>

#include "dist/gradient_sync.h"
#include "nn/efficientnet.h"
#include "nn/vit.h"
#include "tensor/ops/dropout.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::dist;
using ember::testing::error_of;
using ember::testing::values;

namespace {

std::shared_ptr<ProcessGroup> group() {
  static std::shared_ptr<ProcessGroup> g = default_group();
  return g;
}

std::shared_ptr<nn::ViT> small_vit(double dropout = 0, double drop_path = 0) {
  nn::ViTConfig c = nn::ViTConfig::from_variant("tiny", 4, 8, 3);
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  c.dropout = dropout;
  c.drop_path = drop_path;
  auto m = std::make_shared<nn::ViT>(c);
  m->to(DType::f64);
  m->train();
  return m;
}

std::shared_ptr<nn::EfficientNet> small_effnet() {
  nn::EfficientNetConfig c = nn::EfficientNetConfig::from_variant("b0", 5);
  c.width = 0.25;
  c.depth = 0.4;
  c.resolution = 16;
  c.cifar_stem = true;
  c.dropout = 0.3;
  c.drop_path = 0.5;
  auto m = std::make_shared<nn::EfficientNet>(c);
  m->to(DType::f64);
  m->train();
  return m;
}

// max |a.grad − b.grad| over every parameter (a missing gradient on both sides counts as equal).
double worst_gradient_difference(const nn::Module& a, const nn::Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    const Tensor &ga = pa[i].second.grad(), &gb = pb[i].second.grad();
    EXPECT_EQ(ga.defined(), gb.defined()) << pa[i].first;
    if (!ga.defined() || !gb.defined()) continue;
    const std::vector<double> x = values(ga), y = values(gb);
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::abs(x[k] - y[k]));
  }
  return worst;
}

double largest_gradient(const nn::Module& m) {
  double big = 1;
  for (const Variable& p : m.parameters())
    if (p.grad().defined())
      for (double v : values(p.grad())) big = std::max(big, std::abs(v));
  return big;
}

int64_t trainable_bytes(const nn::Module& m) {
  int64_t bytes = 0;
  for (const Variable& p : m.parameters())
    if (p.requires_grad()) bytes += static_cast<int64_t>(p.data().nbytes());
  return bytes;
}

// A batch of world·B images, the same on every rank, and this rank's share of it.
struct Batch {
  Tensor x, y, mine_x, mine_y;
  int64_t first;
};
Batch make_batch(int64_t B, int64_t res, int64_t classes, uint64_t seed) {
  const int world = group()->size();
  Generator gen(seed);
  Batch b;
  b.x = randn({world * B, 3, res, res}, DType::f64, Device::cpu(), &gen);
  b.y = randint(0, classes, {world * B}, DType::i64, Device::cpu(), &gen);
  b.first = group()->rank() * B;
  b.mine_x = b.x.narrow(0, b.first, B).contiguous();
  b.mine_y = b.y.narrow(0, b.first, B).contiguous();
  return b;
}

TEST(GradientSync, OverlappedBucketsGiveTheWholeBatchsGradientOfAViT) {
  const Batch b = make_batch(3, 8, 3, 7);
  auto model = small_vit(0.3, 0.4);
  broadcast_module(*model, *group());
  // Small buckets, so that several start during backward, strictly in order.
  GradientSync sync(*model, group(), /*bucket_bytes=*/4096, /*first_bucket_bytes=*/1024);
  manual_seed(5);
  {
    GlobalSampleScope keyed(b.first, b.mine_x.size(0));
    sync.backward(cross_entropy(model->forward(Variable(b.mine_x)), b.mine_y));
  }
  const GradientSyncStats& s = sync.last_stats();
  EXPECT_GT(s.buckets, 3);
  EXPECT_EQ(s.started_in_backward, s.buckets) << "every parameter is reached: every bucket starts during backward";
  EXPECT_EQ(s.bytes, trainable_bytes(*model));
  ASSERT_EQ(s.backward_left.size(), static_cast<size_t>(s.buckets));
  EXPECT_GT(s.backward_left.front(), s.backward_left.back()) << "the first bucket starts while more backward is left";
  int64_t sum = 0;
  for (int64_t n : s.bucket_bytes) sum += n;
  EXPECT_EQ(sum, s.bytes);

  auto whole = small_vit(0.3, 0.4);
  manual_seed(5);
  cross_entropy(whole->forward(Variable(b.x)), b.y).backward();
  EXPECT_LE(worst_gradient_difference(*model, *whole), 1e-10) << "max |gradient difference|";
}

TEST(GradientSync, OverlappedBucketsGiveTheWholeBatchsGradientOfAnEfficientNetWithSyncBatchNorm) {
  const Batch b = make_batch(4, 16, 5, 23);
  auto model = small_effnet();
  broadcast_module(*model, *group());
  enable_sync_batch_norm(*model, group());
  GradientSync sync(*model, group(), 8192, 2048);
  manual_seed(99);
  {
    GlobalSampleScope keyed(b.first, b.mine_x.size(0));
    sync.backward(cross_entropy(model->forward(Variable(b.mine_x)), b.mine_y));
  }
  EXPECT_GT(sync.last_stats().buckets, 3);

  auto whole = small_effnet();
  manual_seed(99);
  cross_entropy(whole->forward(Variable(b.x)), b.y).backward();
  EXPECT_LE(worst_gradient_difference(*model, *whole), 1e-10 * largest_gradient(*whole));
}

TEST(GradientSync, NoSyncAccumulatesLocallyAndTheNextBackwardReducesTheSum) {
  // Two micro-batches of world·B images each; rank r takes its share of both.
  const Batch b1 = make_batch(3, 8, 3, 31), b2 = make_batch(3, 8, 3, 32);
  auto model = small_vit();
  broadcast_module(*model, *group());
  GradientSync sync(*model, group(), 4096, 1024);
  {
    auto local = sync.no_sync();
    sync.backward(cross_entropy(model->forward(Variable(b1.mine_x)), b1.mine_y));
    EXPECT_EQ(sync.last_stats().buckets, 0) << "no_sync reduces nothing";
  }
  // What no_sync left is this rank's own gradient: a lone process on the same share agrees.
  auto alone = small_vit();
  broadcast_module(*alone, *group());
  cross_entropy(alone->forward(Variable(b1.mine_x)), b1.mine_y).backward();
  EXPECT_EQ(worst_gradient_difference(*model, *alone), 0.0);
  if (group()->size() > 1) {  // and the ranks' gradients differ (their shares do)
    const Tensor head = model->parameter("head.weight").grad().contiguous();
    const Tensor all = group()->all_gather(head);
    EXPECT_NE(values(all.select(0, 0)), values(all.select(0, 1)));
  }

  sync.backward(cross_entropy(model->forward(Variable(b2.mine_x)), b2.mine_y));
  EXPECT_GT(sync.last_stats().buckets, 1);

  // One process: the mean loss of each whole micro-batch, gradients added.
  auto whole = small_vit();
  cross_entropy(whole->forward(Variable(b1.x)), b1.y).backward();
  cross_entropy(whole->forward(Variable(b2.x)), b2.y).backward();
  EXPECT_LE(worst_gradient_difference(*model, *whole), 1e-10) << "max |gradient difference|";
}

TEST(GradientSync, FrozenParametersReCutTheBucketsAndUnreachedOnesCountAsZeros) {
  const Batch b = make_batch(2, 8, 3, 41);
  auto model = small_vit(), whole = small_vit();
  broadcast_module(*model, *group());
  GradientSync sync(*model, group(), 4096, 1024);
  const int64_t all_buckets = [&] {
    sync.backward(cross_entropy(model->forward(Variable(b.mine_x)), b.mine_y));
    return sync.last_stats().buckets;
  }();
  for (nn::Module* m : {model.get(), whole.get()}) {
    for (Variable p : m->parameters()) p.zero_grad();
    m->freeze("");
    m->unfreeze("head");
  }
  sync.backward(cross_entropy(model->forward(Variable(b.mine_x)), b.mine_y));
  EXPECT_LT(sync.last_stats().buckets, all_buckets);
  EXPECT_EQ(sync.last_stats().bytes, trainable_bytes(*model));
  cross_entropy(whole->forward(Variable(b.x)), b.y).backward();
  EXPECT_LE(worst_gradient_difference(*model, *whole), 1e-10);

  // A trainable parameter the loss does not reach: its hook never fires; it is reduced as zeros
  // after backward, so every rank issues the same collectives.
  for (Variable p : model->parameters()) p.zero_grad();
  model->unfreeze("");
  Variable head_only = sum(mul(model->parameter("head.bias"), 1.0 + group()->rank()));
  sync.backward(head_only);
  const GradientSyncStats& s = sync.last_stats();
  EXPECT_EQ(s.bytes, trainable_bytes(*model));
  EXPECT_LT(s.started_in_backward, s.buckets);
  const double mean_factor = (1.0 + group()->size()) / 2;  // the average of 1 + r over the ranks
  for (double v : values(model->parameter("head.bias").grad())) EXPECT_DOUBLE_EQ(v, mean_factor);
  for (double v : values(model->parameter("cls_token").grad())) EXPECT_EQ(v, 0.0);
}

TEST(GradientSync, APlainBackwardStillWorksWithAllReduceGradients) {
  const Batch b = make_batch(3, 8, 3, 53);
  auto model = small_vit(), whole = small_vit();
  broadcast_module(*model, *group());
  GradientSync sync(*model, group());
  cross_entropy(model->forward(Variable(b.mine_x)), b.mine_y).backward();  // the hooks stay idle
  all_reduce_gradients(*model, *group());
  cross_entropy(whole->forward(Variable(b.x)), b.y).backward();
  EXPECT_LE(worst_gradient_difference(*model, *whole), 1e-10);
}

TEST(GradientSync, RefusesBadBucketSizes) {
  auto model = small_vit();
  EXPECT_NE(error_of([&] { GradientSync bad(*model, group(), 0); }).find("GradientSync: bucket sizes must be positive"),
            std::string::npos);
  EXPECT_NE(error_of([&] { GradientSync bad(*model, nullptr); }).find("GradientSync: no process group"),
            std::string::npos);
}

}  // namespace
