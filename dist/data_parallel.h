// Data parallelism over a process group: what a training loop calls so that N ranks, each on its
// own share of a global batch, take the same step one process would take on the whole batch.
//
//   broadcast_module(model, group);            // once: every rank starts from rank 0's weights
//   for each step:
//     loss(model(my_share)).backward();        // each rank: mean loss over its B images
//     all_reduce_gradients(model, group);      // every gradient := the average over the ranks
//     optimizer.step();                        // identical on every rank
// With equal shares the average of the ranks' mean-loss gradients is the gradient of the mean
// loss over the N·B images, which is what one process computes (up to summation order).
// BatchNorm computes its statistics per rank unless enable_sync_batch_norm() makes them the global
// batch's (SyncBatchNorm); with it, models with BatchNorm match one process too.
//
// Gradients travel in buckets of about bucket_bytes (25 MiB, as PyTorch's DDP), in reverse order
// of registration (the order backward completes them), one all_reduce per bucket, after
// backward. dist::GradientSync (gradient_sync.h) starts each bucket during backward instead, as
// soon as its gradients are complete, overlapping the communication with the rest of backward.
// Every trainable parameter takes part on every rank (a missing gradient counts as zeros), so the
// ranks always issue the same collectives.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/process_group.h"
#include "nn/module.h"

namespace ember::dist {

// Checks first that every rank has the same model (check_same_model), then broadcasts the root's
// parameters and buffers.
void broadcast_module(nn::Module& model, ProcessGroup& group, int root = 0);

// Every rank's model must have the same parameters and buffers (names, shapes, dtypes, order):
// each rank's count and a hash of its layout are gathered; where any rank's differ from the
// root's, every rank throws an Error naming the ranks that differ and, on those, the first entry
// that differs ("parameter blocks.1.attn.qkv.weight [48, 16] f32" against the root's).
void check_same_model(const nn::Module& model, ProcessGroup& group, int root = 0);

// The layout compared: one line per parameter then buffer, "parameter NAME [SHAPE] DTYPE".
std::vector<std::string> model_layout(const nn::Module& model);

constexpr int64_t kDefaultBucketBytes = 25 << 20;

// Returns the number of buckets (all_reduce calls) it made. Parameters may be on the CPU or on a
// GPU (a bucket holds one dtype on one device; CUDA buckets go through NCCL with default_group()).
int64_t all_reduce_gradients(nn::Module& model, ProcessGroup& group, int64_t bucket_bytes = kDefaultBucketBytes);

// SyncBatchNorm: every BatchNorm2d of `model` computes its training statistics (and its
// backward's two per-channel sums) over all the ranks' samples, all_reduced through `group`
// (sync_batch_norm, autograd/functions/batch_norm.h), so N ranks at per-rank batch B normalise as
// one process at N·B. Three small all_reduces per BatchNorm per step (2C + 1 + 2C values). Returns
// how many layers it set; `group` is kept alive by them.
int64_t enable_sync_batch_norm(nn::Module& model, std::shared_ptr<ProcessGroup> group);

// A bucket's flat buffer and its parameters' gradients, for all_reduce_gradients and GradientSync:
// copy_gradients_to_flat fills `flat` (Σ numel, the parameters' dtype and device) with each
// gradient in turn (zeros for a parameter without one); copy_flat_to_gradients copies the reduced
// values back (into the gradient when it is contiguous, else into a new one). On a GPU both are
// copies on the current stream.
void copy_gradients_to_flat(const std::vector<Variable>& params, const Tensor& flat);
void copy_flat_to_gradients(const Tensor& flat, std::vector<Variable>& params);

}  // namespace ember::dist
