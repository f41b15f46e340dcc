// Gradients averaged over the ranks *during* backward, so that communication overlaps compute
// (what PyTorch's DistributedDataParallel does); all_reduce_gradients (data_parallel.h) is the
// simple path that reduces them after backward.
//
//   GradientSync sync(model, group);              // after broadcast_module
//   for each step:
//     sync.backward(loss);                        // loss.backward(); every gradient := the average over the ranks
//     optimizer.step();
//   gradient accumulation over k micro-batches:
//     { auto local = sync.no_sync(); sync.backward(loss_1); ... }   // gradients add up on each rank
//     sync.backward(loss_k);                      // reduces the sum of all k, once
//
// How. The trainable parameters are cut into buckets in reverse order of registration (backward
// completes the last layers first): a first bucket of about first_bucket_bytes (1 MiB, so that
// communication starts soon after backward does), then buckets of about bucket_bytes (25 MiB);
// a bucket holds one dtype. Each parameter carries a grad-ready hook
// (Variable::set_grad_ready_hook): when the last parameter of a bucket has its final gradient,
// the bucket's gradients are copied into its flat buffer and a non-blocking averaging all_reduce
// starts (MPI_Iallreduce) while backward goes on to earlier layers; each later hook polls the
// buckets in flight, which is what moves MPI's transfer forward. Parameters on a GPU (a bucket
// holds one device) go through NCCL with default_group(): the bucket's copies are enqueued on the
// current stream, ncclAllReduce runs on the group's communication stream once they are done (a
// CUDA event), and before the averages are copied back the current stream waits for it, so the
// optimizer step that follows reads them (dist/nccl_group.h). Buckets start strictly in order
// (one that fills early waits for those before it), so every rank issues the same collectives
// in the same order. When loss.backward() returns, the buckets not yet started start (a
// parameter backward did not reach counts as zeros, so the ranks still agree), each is waited
// for, and its averages are copied back into the gradients.
//
// The trainable set is read at each backward: freezing or unfreezing parameters between steps
// (the recipes' head phase) re-cuts the buckets. Hooks act only inside sync.backward(): a plain
// loss.backward() followed by all_reduce_gradients still works on the same model.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "dist/data_parallel.h"
#include "dist/process_group.h"
#include "nn/module.h"

namespace ember::dist {

constexpr int64_t kDefaultFirstBucketBytes = 1 << 20;

// What the last synchronized backward did.
struct GradientSyncStats {
  int64_t buckets = 0;                  // all_reduce calls
  int64_t bytes = 0;                    // bytes all-reduced (per rank, one way)
  int64_t started_in_backward = 0;      // buckets started by the hooks, before loss.backward() returned
  double backward_seconds = 0;          // loss.backward() itself, hooks included
  double wait_seconds = 0;              // after it: waiting for the all_reduces (communication not hidden)
  std::vector<int64_t> bucket_bytes;    // per bucket, in the order they started
  std::vector<double> backward_left;    // per bucket: seconds of backward still to run when it started
};

class GradientSync {
 public:
  GradientSync(nn::Module& model, std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes = kDefaultBucketBytes,
               int64_t first_bucket_bytes = kDefaultFirstBucketBytes);
  ~GradientSync();  // removes the hooks
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // loss.backward(), with every trainable gradient averaged over the ranks when it returns
  // (inside a no_sync scope: loss.backward() alone). Every rank calls it for the same steps.
  void backward(const Variable& loss);

  // While the returned scope lives, backward() reduces nothing: gradients accumulate locally.
  class NoSyncScope {
   public:
    explicit NoSyncScope(GradientSync& sync) : sync_(sync), prev_(sync.enabled_) { sync.enabled_ = false; }
    ~NoSyncScope() { sync_.enabled_ = prev_; }
    NoSyncScope(const NoSyncScope&) = delete;
    NoSyncScope& operator=(const NoSyncScope&) = delete;

   private:
    GradientSync& sync_;
    bool prev_;
  };
  [[nodiscard]] NoSyncScope no_sync() { return NoSyncScope(*this); }

  const GradientSyncStats& last_stats() const { return stats_; }
  // The buckets as cut for the current trainable set: parameter counts, in start order.
  std::vector<int64_t> bucket_sizes() const;

 private:
  struct Bucket {
    std::vector<Variable> params;
    Tensor flat;                  // (Σ numel,) of the bucket's dtype
    int64_t ready = 0;            // parameters whose gradient is final in this backward
    std::unique_ptr<Work> work;   // the all_reduce in flight, once started
  };
  std::vector<Variable> trainable() const;
  void cut_buckets(const std::vector<Variable>& params);
  void on_gradient_ready(size_t bucket);
  void start_ready_buckets();   // in order, every full bucket from next_start_ on
  void start(Bucket& b);
  void poll();
  void finish();

  nn::Module& model_;
  std::shared_ptr<ProcessGroup> group_;
  int64_t bucket_bytes_, first_bucket_bytes_;
  std::vector<VariableImpl*> layout_;  // the trainable set the buckets were cut for
  std::vector<Bucket> buckets_;
  size_t next_start_ = 0;
  bool enabled_ = true;      // false inside no_sync
  bool in_backward_ = false; // hooks act only then
  bool broken_ = false;      // a backward failed with collectives in flight
  double backward_start_ = 0;
  std::vector<double> started_at_;
  GradientSyncStats stats_;
};

}  // namespace ember::dist
