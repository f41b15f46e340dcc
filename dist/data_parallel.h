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
// BatchNorm computes its statistics per rank (no SyncBatchNorm yet), so models with BatchNorm in
// training mode do not match one process exactly; LayerNorm models (the ViT) do.
//
// Gradients travel in buckets of about bucket_bytes (25 MiB, as PyTorch's DDP), in reverse order
// of registration (the order backward completes them), one all_reduce per bucket, after
// backward: not yet overlapped with it. Every trainable parameter takes part on every rank (a
// missing gradient counts as zeros), so the ranks always issue the same collectives.
#pragma once
#include <cstdint>

#include "dist/process_group.h"
#include "nn/module.h"

namespace ember::dist {

void broadcast_module(nn::Module& model, ProcessGroup& group, int root = 0);

constexpr int64_t kDefaultBucketBytes = 25 << 20;

// Returns the number of buckets (all_reduce calls) it made.
int64_t all_reduce_gradients(nn::Module& model, ProcessGroup& group, int64_t bucket_bytes = kDefaultBucketBytes);

}  // namespace ember::dist
