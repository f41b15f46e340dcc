// ember-bench-train: times S full training steps (forward, cross-entropy, backward, AdamW step)
// after a warm-up, on random data, and prints "<model> <N> img/s" last.
//
//   ember-bench-train --model effnet_b0 --batch 64 --res 32 --threads 2 --steps 10
// Models: effnet_b0 (cifar stem, 20 classes, dropout 0.2, drop-path 0.2), vit_ti_p4 (patch 4 at
// 32×32, 65 tokens, 20 classes), effnet_b0_224, vit_b16, or any name ember's apps know.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "apps/common/models.h"
#include "ember/ember.h"
#include "optim/adam.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"ember-bench-train: training-step throughput"};
  std::string model_name = "effnet_b0", device = "cpu";
  int64_t batch = 64, res = 0, threads = 0, steps = 10, warmup = 2, classes = 20;
  bool profile = false;
  app.add_option("--model", model_name, "effnet_b0 | vit_ti_p4 | effnet_b0_224 | vit_b16 | ...")->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--res", res, "input resolution (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--classes", classes)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.add_flag("--profile", profile, "print ember's per-op profile of the timed steps");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) cpu::set_num_threads(static_cast<int>(threads));
    Device dev = Device::parse(device);
    std::string internal = model_name;
    apps::ModelOptions mo;
    mo.num_classes = classes;
    mo.resolution = res;
    if (model_name == "effnet_b0") {
      internal = "effnet_b0_cifar";
      mo.dropout = 0.2;
      mo.drop_path = 0.2;
    } else if (model_name == "effnet_b0_224") {
      internal = "effnet_b0";
      mo.dropout = 0.2;
      mo.drop_path = 0.2;
    }
    apps::ModelSpec spec;
    auto model = apps::make_model(internal, mo, &spec);
    model->to(dev);
    model->train();
    optim::AdamOptions ao;
    ao.lr = 1e-4;
    optim::AdamW opt(model->param_groups(0.05), ao);
    const int64_t R = spec.resolution;
    Generator gen(1);
    Tensor x = randn({batch, 3, R, R}, DType::f32, Device::cpu(), &gen).to(dev);
    Tensor y = randint(0, classes, {batch}, DType::i64, Device::cpu(), &gen).to(dev);
    auto step = [&] {
      Variable loss = cross_entropy(model->forward(Variable(x)), y, 0.1);
      loss.backward();
      opt.step();
      opt.zero_grad();
      return loss.item();  // synchronizes
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    std::unique_ptr<Profiler> prof;
    if (profile) prof = std::make_unique<Profiler>();
    auto t0 = std::chrono::steady_clock::now();
    double last = 0;
    for (int64_t i = 0; i < steps; ++i) last = step();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (prof) std::fprintf(stderr, "%s", prof->table().c_str());
    std::fprintf(stderr, "%s: %lld params, batch %lld at %lldx%lld, %d threads, %lld steps in %.3f s (loss %.3f)\n",
                 model_name.c_str(), static_cast<long long>(model->num_parameters()), static_cast<long long>(batch),
                 static_cast<long long>(R), static_cast<long long>(R), cpu::num_threads(),
                 static_cast<long long>(steps), s, last);
    std::printf("%s %.1f img/s\n", model_name.c_str(), batch * steps / s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-bench-train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
