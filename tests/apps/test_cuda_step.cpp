// No host syncs inside a training step (issue 9, item 3).
//
// On a GPU: a training step of a small EfficientNet (BatchNorm in training mode) and of a small
// ViT — a batch from the loader uploaded ahead on the copy stream, forward, cross-entropy with
// class ids (its range check deferred), backward, clipping of the global gradient norm, AdamW,
// and the loss and accuracy read back together — makes at most one host sync, that read. The
// training app reports the same per epoch ("host syncs per training step"). Skipped, visibly,
// without a GPU.
// On the CPU: the loader options the apps make follow --device (a CUDA device and page-locked
// uploads for cuda, nothing changed for cpu), and a CPU step computes the same numbers through
// the one read as before.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <regex>

#include "apps/common/data_setup.h"
#include "apps/common/models.h"
#include "data/loader.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::run_app;

namespace {

struct StepSetup {
  std::shared_ptr<nn::UnaryModule> model;
  apps::ModelSpec spec;
  apps::DataSetup data;
  apps::RecipeConfig config;
};

StepSetup make_setup(const std::string& model, Device device) {
  StepSetup s;
  s.config.model = model;
  s.config.device = device;
  s.config.batch_size = 16;
  s.config.workers = 2;
  s.config.mixup = 0;
  s.data = apps::open_data("", 0.1, 0, false, /*generated_size=*/320);
  apps::ModelOptions mo;
  mo.num_classes = s.data.num_classes;
  s.model = apps::make_model(model, mo, &s.spec);
  s.model->to(device);
  s.model->train();
  return s;
}

// One step as the trainer takes it; returns (loss, correct) read back together.
std::vector<double> step(nn::UnaryModule& model, optim::Optimizer& opt, const data::Batch& batch) {
  Variable logits = model.forward(Variable(batch.images));
  Variable loss = cross_entropy(logits, batch.labels, 0.1);
  Tensor right = sum(eq(argmax(logits.data(), {1}), batch.labels).to(DType::f64));
  Tensor stats = cat({loss.data().to(DType::f64).reshape({1}), right.reshape({1})});
  loss.backward();
  optim::clip_grad_norm_on_device(model.parameters(), 1.0);
  opt.step();
  opt.zero_grad();
  return stats.to_vector<double>();  // the step's one host read
}

}  // namespace

TEST(TrainLoaderOptions, DeviceAndPageLockedUploadsFollowTheRecipeDevice) {
  apps::DataSetup data = apps::open_data("", 0.1, 0, false, 200);
  apps::ModelOptions mo;
  mo.num_classes = data.num_classes;
  apps::ModelSpec spec;
  apps::make_model("effnet_tiny", mo, &spec);
  apps::RecipeConfig c;
  c.device = Device::cpu();
  data::LoaderOptions cpu = apps::train_loader_options(data.train, spec, c);
  EXPECT_TRUE(cpu.device.is_cpu());
  EXPECT_FALSE(cpu.pin_memory);
  c.device = Device::cuda(1);
  data::LoaderOptions gpu = apps::train_loader_options(data.train, spec, c);
  EXPECT_EQ(gpu.device, Device::cuda(1));
  EXPECT_TRUE(gpu.pin_memory);
  // Everything else is the same for both.
  EXPECT_EQ(gpu.batch_size, cpu.batch_size);
  EXPECT_EQ(gpu.seed, cpu.seed);
  EXPECT_EQ(gpu.num_workers, cpu.num_workers);
  if (!cuda::is_available()) {  // asking for a GPU where there is none is an Error, not a silent CPU run
    const std::string what = ember::testing::error_of([&] { data::DataLoader loader(data.train, gpu); });
    EXPECT_NE(what.find("DataLoader: device cuda:1 requested but CUDA is not available"), std::string::npos) << what;
  }
}

TEST(TrainStep, CpuStepReadsLossAndAccuracyOnce) {
  StepSetup s = make_setup("effnet_tiny", Device::cpu());
  data::DataLoader loader(s.data.train, apps::train_loader_options(s.data.train, s.spec, s.config));
  optim::AdamW opt(s.model->param_groups(0.05), optim::AdamOptions{});
  auto batch = loader.next();
  ASSERT_TRUE(batch);
  const std::vector<double> v = step(*s.model, opt, *batch);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(std::isfinite(v[0]));
  EXPECT_GE(v[1], 0);
  EXPECT_LE(v[1], static_cast<double>(batch->size()));
  EXPECT_EQ(v[1], std::round(v[1]));
}

class CudaStep : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaStep, MakesAtMostOneHostSync) {
  EMBER_REQUIRE_CUDA();
  StepSetup s = make_setup(GetParam(), Device::cuda(0));
  data::LoaderOptions lo = apps::train_loader_options(s.data.train, s.spec, s.config);
  ASSERT_TRUE(lo.pin_memory);
  data::DataLoader loader(s.data.train, lo);
  optim::AdamW opt(s.model->param_groups(0.05), optim::AdamOptions{});
  int steps = 0;
  for (data::Batch& batch : loader) {
    ASSERT_TRUE(batch.images.device().is_cuda());
    ASSERT_TRUE(batch.labels.device().is_cuda());
    if (steps == 4) {  // after warm-up: memory cached, handles made, page-locked buffers in use
      cuda::reset_host_sync_count();
      const std::vector<double> v = step(*s.model, opt, batch);
      const uint64_t syncs = cuda::host_sync_count();
      EXPECT_LE(syncs, 1u) << GetParam() << ": " << ::testing::PrintToString(cuda::host_sync_reasons());
      EXPECT_TRUE(std::isfinite(v[0]));
      // The loader's next() (the following batch's upload) must not wait either.
      cuda::reset_host_sync_count();
    } else if (steps == 5) {
      EXPECT_EQ(cuda::host_sync_count(), 0u) << "DataLoader::next: " << ::testing::PrintToString(cuda::host_sync_reasons());
      step(*s.model, opt, batch);
    } else {
      step(*s.model, opt, batch);
    }
    if (++steps == 6) break;
  }
  EXPECT_EQ(steps, 6);
  // BatchNorm counted on the device: 6 steps, read once here.
  if (std::string(GetParam()).rfind("effnet", 0) == 0) {
    bool found = false;
    for (auto& [name, t] : s.model->state_dict())
      if (name.find("num_batches_tracked") != std::string::npos) {
        EXPECT_TRUE(t.device().is_cuda()) << name;
        EXPECT_EQ(t.item(), 6.0) << name;
        found = true;
        break;
      }
    EXPECT_TRUE(found);
  }
}

INSTANTIATE_TEST_SUITE_P(SmallModels, CudaStep, ::testing::Values("effnet_tiny", "vit_tiny"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CudaStep, TrainingAppReportsAtMostOneHostSyncPerStep) {
  EMBER_REQUIRE_CUDA();
  for (const char* app : {"ember-effnet --model effnet_tiny", "ember-vit --model vit_tiny"}) {
    SCOPED_TRACE(app);
    const std::string out_dir = ::testing::TempDir() + "/ember_cuda_step_" + std::to_string(::getpid());
    const auto r = run_app(std::string(app) + " --device cuda --generated-size 256 --val-fraction 0 --batch 16 " +
                           "--max-batches 6 --head-epochs 0 --warmup 1 --hold 1 --cooldown 0 --clip-grad 1 --out " +
                           out_dir);
    ASSERT_EQ(r.code, 0) << r.output;
    // Epoch 2 (memory and page-locked buffers already in use): at most one per step.
    std::smatch m;
    const std::regex line("epoch 2: ([0-9.]+) host syncs per training step");
    ASSERT_TRUE(std::regex_search(r.output, m, line)) << r.output;
    EXPECT_LE(std::stod(m[1].str()), 1.0) << r.output;
  }
}
