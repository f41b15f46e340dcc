// The training loop every recipe app shares, readable top to bottom in trainer.cpp:
//
//   for each epoch:
//     phase = head (backbone frozen, only the classifier learns) | warmup | hold | cooldown
//     for each batch:  lr ← schedule(iteration)
//                      loss = cross_entropy(model(x), y, label smoothing)   (mixup/cutmix: soft y)
//                      backward; [SAM: perturb, second forward/backward with BatchNorm stats frozen,
//                      restore]; clip; optimizer step; [EMA update]
//     validate (loss, accuracy, confusion matrix) → metrics.jsonl/csv, curves.svg
//     checkpoint last.safetensors every epoch, best.safetensors when validation accuracy improves
//
// A checkpoint holds the model ("model.*"), the optimizer ("optim.*"), with --ema the averaged
// weights ("ema.*") and, in its metadata, the epoch, the iteration, the best accuracy, the RNG
// offset and the run's configuration, so --resume continues the same loss curve (the metadata is
// read through CheckpointMeta's schema; the metrics rows of later epochs are dropped). A NaN or
// infinite loss stops the run with an Error naming the epoch and iteration; the checkpoints
// written before it are intact. At start, temporary files a killed run left in --out go.
//
// Validation: --val-fraction > 0 that holds out no image (a small dataset, rounded per class),
// or a held-out split none of whose images can be read (--skip-bad), is an Error that says so;
// --val-fraction 0 trains without validation (best.safetensors is then the last epoch).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/models.h"
#include "apps/common/report.h"
#include "data/dataset.h"
#include "tensor/device.h"

namespace ember::apps {

struct RecipeConfig {
  std::string model = "effnet_b0_cifar";
  ModelOptions model_options;
  std::string init;        // weights to start from: safetensors or torch.save, timm or efficientnet_pytorch names ("" = random init)
  std::string pretrained;  // the name or path --pretrained gave (recorded in the checkpoints; init is its file)
  // Phase lengths in epochs; fractions are allowed (rounded to whole iterations).
  double head_epochs = 5, warmup_epochs = 10, hold_epochs = 10, cooldown_epochs = 20;
  double lr = 1e-3;             // peak learning rate (the hold value)
  double head_lr = -1;          // < 0: lr
  double warmup_start = -1;     // < 0: lr / 100
  double final_lr = 0;
  std::string cooldown = "cosine";  // cosine | linear
  // > 0: hold and cooldown are scaled (their ratio kept) so that the whole run, validations and
  // checkpoints included, ends within this many minutes of wall time (time_budget.h).
  double time_budget_min = 0;
  std::string optimizer = "adamw";  // adamw | sgd
  double weight_decay = 0.05, momentum = 0.9;
  double sam_rho = 0;           // > 0 turns SAM on
  bool asam = false;
  double label_smoothing = 0.1;
  double mixup = 0, cutmix = 0;  // alpha of each (0 = off)
  double clip_grad = 0;          // global-norm clipping (0 = off)
  double ema_decay = 0;          // > 0 keeps an EMA of the weights, validated and saved as ema.safetensors
  // Parameter prefixes kept frozen in every phase ("conv_stem", "blocks.0", ...), their
  // BatchNorm layers in evaluation mode: no backward through them at all.
  std::vector<std::string> freeze;
  int64_t batch_size = 64, workers = 2;
  bool sync_bn = false;     // under mpirun: BatchNorm statistics over the global batch (SyncBatchNorm)
  double val_fraction = 0.1;
  uint64_t seed = 0;
  int64_t max_batches = 0;  // per epoch, 0 = all (quick runs and tests)
  bool augment = true;
  bool skip_bad = false;
  int64_t threads = 0;      // 0 = all cores
  Device device = Device::cpu();
  std::string data;         // "" = the generated dataset
  int64_t generated_size = 6000;
  std::string out = "runs/run";
  std::string resume;       // a checkpoint written by this loop
};

struct RecipeResult {
  bool lead = true;  // rank 0 (or the only process): the one that validated and wrote the files
  double best_val_acc = 0, final_val_acc = 0, final_val_loss = 0, img_per_s = 0;
  std::string best_checkpoint, last_checkpoint, predictions;
};

RecipeResult run_recipe(const RecipeConfig& config);

// Iterations of the four phases (head, warmup, hold, cooldown), given in epochs that may be
// fractions, for `batches` iterations per epoch. The phase boundaries are rounded, not each
// length, so the phases add up to round(total epochs · batches): 0.5 + 1 + 1 + 2.5 epochs are
// exactly 5 epochs, never 5 and one stray iteration.
std::array<int64_t, 4> phase_iterations(const std::array<double, 4>& epochs, int64_t batches);

// Evaluation-mode class probabilities for every sample of `dataset`, in order (optionally the
// average over test-time views, below). Rows are as wide as the model's output; a label
// of the data at or above the model's class count is an Error.
struct EvalOutput {
  std::vector<std::string> names;
  std::vector<int64_t> labels;
  Tensor probs;  // (N, C) f32 on the CPU
  double loss = 0, accuracy = 0;
};
// Test-time augmentation: the probabilities averaged over several views of each image.
//   flip   the image and its mirror image (2 views)
//   shift  also the image moved diagonally by `shift` pixels of the stored image in each of the
//          four directions (reflect padding, as the training crops pad), which with flip gives
//          the ten views of ten-crop evaluation: centre and four corners, each mirrored too.
// The shift is scaled to the model's input (2 pixels of a 32x32 image are 6 at 96x96).
struct TestTimeAugmentation {
  bool flip = false;
  int64_t shift = 0;
  int64_t views() const { return (shift > 0 ? 5 : 1) * (flip ? 2 : 1); }
  std::string describe() const;  // "none", "flip (2 views)", "flip + shift 2 px (10 views)"
};
EvalOutput evaluate(nn::UnaryModule& model, data::DatasetPtr dataset, const ModelSpec& spec, Device device,
                    int64_t batch_size, int64_t workers, const TestTimeAugmentation& tta = {});

}  // namespace ember::apps
