// ember-bench-train: times S full training steps (forward, cross-entropy, backward, AdamW step)
// after a warm-up, on random data, and prints "<model> <N> img/s" last.
//
//   ember-bench-train --model effnet_b0 --batch 64 --res 32 --threads 2 --steps 10
// Models: effnet_b0 (cifar stem, 20 classes, dropout 0.2, drop-path 0.2), vit_ti_p4 (patch 4 at
// 32×32, 65 tokens, 20 classes), effnet_b0_224, vit_b16, or any name ember's apps know.
//
// Data-parallel under mpirun (`mpirun -np 2 ember-bench-train --batch 128 --threads 1`): --batch
// is the global batch, each rank trains on its 1/N share, rank 0's weights are broadcast first and
// the gradients averaged every step — in buckets during backward (dist::GradientSync, --bucket-mb)
// or, with --no-overlap, after it (dist::all_reduce_gradients). Rank 0 alone prints the global
// batch's img/s, and on stderr what the all-reduce carried and how much of backward was left when
// each bucket started. BatchNorm is per rank (no --sync-bn), as PyTorch DDP's default. With
// --device cuda each rank takes the GPU of its local rank and the gradients go through NCCL.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "apps/common/models.h"
#include "dist/gradient_sync.h"
#include "dist/nccl_group.h"
#include "ember/ember.h"
#include "optim/adam.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"ember-bench-train: training-step throughput"};
  std::string model_name = "effnet_b0", device = "cpu";
  int64_t batch = 64, res = 0, threads = 0, steps = 10, warmup = 2, classes = 20;
  bool profile = false, no_overlap = false;
  double bucket_mb = 25;
  app.add_option("--model", model_name, "effnet_b0 | vit_ti_p4 | effnet_b0_224 | vit_b16 | ...")->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--res", res, "input resolution (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--classes", classes)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.add_flag("--profile", profile, "print ember's per-op profile of the timed steps");
  app.add_option("--bucket-mb", bucket_mb, "under mpirun: gradient bucket size in MiB (the first is 1 MiB)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--no-overlap", no_overlap, "under mpirun: all-reduce the gradients after backward, not during it");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) cpu::set_num_threads(static_cast<int>(threads));
    std::shared_ptr<dist::ProcessGroup> group = dist::default_group();
    // Under mpirun "cuda" is this rank's GPU (its local rank); CUDA gradients then go through NCCL.
    Device dev = dist::rank_device(device, *group);
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
    const int world = group->size();
    const bool lead = group->rank() == 0;
    if (batch % world != 0)
      throw make_error("--batch ", batch, " (the global batch) does not divide among ", world, " ranks");
    const int64_t share = batch / world;
    apps::ModelSpec spec;
    auto model = apps::make_model(internal, mo, &spec);
    model->to(dev);
    model->train();
    if (world > 1) dist::broadcast_module(*model, *group);
    std::optional<dist::GradientSync> sync;
    if (world > 1 && !no_overlap)
      sync.emplace(*model, group, static_cast<int64_t>(bucket_mb * (1 << 20)));
    optim::AdamOptions ao;
    ao.lr = 1e-4;
    optim::AdamW opt(model->param_groups(0.05), ao);
    const int64_t R = spec.resolution;
    // The global batch, the same on every rank; this rank trains on its share.
    Generator gen(1);
    Tensor x = randn({batch, 3, R, R}, DType::f32, Device::cpu(), &gen);
    Tensor y = randint(0, classes, {batch}, DType::i64, Device::cpu(), &gen);
    x = x.narrow(0, group->rank() * share, share).contiguous().to(dev);
    y = y.narrow(0, group->rank() * share, share).contiguous().to(dev);
    // Under GradientSync, summed over the timed steps: backward's and the wait's seconds, and per
    // bucket the share of backward left when it started.
    double backward_s = 0, wait_s = 0;
    std::vector<double> left_share;
    auto step = [&] {
      Variable loss = cross_entropy(model->forward(Variable(x)), y, 0.1);
      if (sync) {
        sync->backward(loss);
      } else {
        loss.backward();
        if (world > 1) dist::all_reduce_gradients(*model, *group, static_cast<int64_t>(bucket_mb * (1 << 20)));
      }
      opt.step();
      opt.zero_grad();
      return loss.item();  // synchronizes
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    std::unique_ptr<Profiler> prof;
    if (profile) prof = std::make_unique<Profiler>();
    group->barrier();  // the ranks start the clock together
    if (dev.is_cuda()) cuda::reset_host_sync_count();
    auto t0 = std::chrono::steady_clock::now();
    double last = 0;
    for (int64_t i = 0; i < steps; ++i) {
      last = step();
      if (!sync) continue;
      const dist::GradientSyncStats& st = sync->last_stats();
      backward_s += st.backward_seconds;
      wait_s += st.wait_seconds;
      left_share.resize(st.backward_left.size(), 0.0);
      for (size_t b = 0; b < st.backward_left.size(); ++b)
        left_share[b] += st.backward_left[b] / std::max(st.backward_seconds, 1e-12);
    }
    const uint64_t host_syncs = dev.is_cuda() ? cuda::host_sync_count() : 0;
    group->barrier();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!lead) return 0;
    if (dev.is_cuda() && steps > 0) {  // the loss read is one; anything more is a hidden sync
      std::fprintf(stderr, "host syncs: %.2f per step (%llu in %lld steps)", static_cast<double>(host_syncs) / steps,
                   static_cast<unsigned long long>(host_syncs), static_cast<long long>(steps));
      const auto reasons = cuda::host_sync_reasons();
      for (size_t i = 0; i < reasons.size() && i < 4; ++i) std::fprintf(stderr, "%s %s", i ? ";" : ":", reasons[i].c_str());
      std::fprintf(stderr, "\n");
    }
    if (prof) std::fprintf(stderr, "%s", prof->table().c_str());
    std::fprintf(stderr, "%s: %lld params, batch %lld at %lldx%lld, %d threads, %lld steps in %.3f s (loss %.3f)\n",
                 model_name.c_str(), static_cast<long long>(model->num_parameters()), static_cast<long long>(batch),
                 static_cast<long long>(R), static_cast<long long>(R), cpu::num_threads(),
                 static_cast<long long>(steps), s, last);
    if (world > 1) {
      std::fprintf(stderr, "%d ranks (%s) of batch %lld; gradients all-reduced %s\n", world, group->backend().c_str(),
                   static_cast<long long>(share), sync ? "in buckets during backward" : "after backward (--no-overlap)");
      if (sync) {
        const dist::GradientSyncStats& st = sync->last_stats();
        std::fprintf(stderr, "all-reduce per step: %.2f MB in %lld buckets, %lld started during backward; "
                     "backward %.1f ms, waited %.1f ms after it\n",
                     st.bytes / 1e6, static_cast<long long>(st.buckets), static_cast<long long>(st.started_in_backward),
                     1e3 * backward_s / steps, 1e3 * wait_s / steps);
        for (size_t b = 0; b < st.bucket_bytes.size() && b < left_share.size(); ++b)
          std::fprintf(stderr, "  bucket %zu: %.2f MB, started with %.0f%% of backward left\n", b,
                       st.bucket_bytes[b] / 1e6, 100 * left_share[b] / steps);
      }
    }
    std::printf("%s %.1f img/s\n", model_name.c_str(), batch * steps / s);
  } catch (const std::exception& e) {
    if (!dist::launched_by_mpirun()) {
      std::fprintf(stderr, "ember-bench-train: error: %s\n", e.what());
      return 1;
    }
    try {
      auto group = dist::default_group();
      std::fprintf(stderr, "ember-bench-train: rank %d of %d: error: %s\n", group->rank(), group->size(), e.what());
      std::fflush(stderr);
      group->abort(1);  // the other ranks would wait for this one in their next all-reduce
    } catch (const std::exception& mpi) {  // MPI itself failed to start: mpirun ends the others
      std::fprintf(stderr, "ember-bench-train: error: %s (and MPI: %s)\n", e.what(), mpi.what());
    }
    return 1;
  }
  return 0;
}
