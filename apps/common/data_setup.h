// Opening the data an app is pointed at, and the loaders the recipe uses.
//
//   --data ""            the generated 20-class 32×32 dataset (deterministic; no files needed)
//   --data DIR|FILE.bin  CIFAR binary (CIFAR-100 with its 20 coarse classes unless fine is asked)
//   --data DIR           with train_master.tsv: the competition layout (image folder + TSV)
//   --data DIR           with one sub-folder per class: an image folder (JPEG/PNG)
// A validation split of val_fraction is held out (stratified, seeded).
#pragma once
#include <string>
#include <vector>

#include "apps/common/trainer.h"
#include "apps/common/predictions.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace ember::apps {

struct DataSetup {
  data::DatasetPtr all, train, val;  // val is null when val_fraction is 0
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::string description;  // "CIFAR-10 binary (/path)", "generated 20-class 32x32 (6000 images)"
};

DataSetup open_data(const std::string& path, double val_fraction, uint64_t seed, bool skip_bad,
                    int64_t generated_size = 6000, bool cifar100_fine = false);
// The whole dataset at `path` without a split (what ember-predict reads).
data::DatasetPtr open_dataset(const std::string& path, bool skip_bad, int64_t generated_size = 6000,
                              uint64_t seed = 0);

// Training: random crop (pad 4) and flip at the image's own size, resize to the model's
// resolution, the model's normalisation (spec.normalize); mixup/cutmix as a batch transform.
data::LoaderOptions train_loader_options(const data::DatasetPtr& ds, const ModelSpec& spec, const RecipeConfig& c);
// Evaluation: resize and normalise only, in order.
data::LoaderOptions eval_loader_options(const data::DatasetPtr& ds, const ModelSpec& spec, int64_t batch_size,
                                        int64_t workers);

Tensor flip_width(const Tensor& images);  // (N, C, H, W) mirrored along W (a copy)
// (N, C, H, W) moved by (dy, dx) pixels, reflect-padded: out[y][x] = in[r(y + dy)][r(x + dx)],
// where r reflects an index past an edge back inside (-1 -> 1, H -> H - 2). |dy| < H, |dx| < W.
Tensor shift_reflect(const Tensor& images, int64_t dy, int64_t dx);
// The side of the dataset's images as stored (its first readable sample), or `fallback`.
int64_t native_resolution(const data::DatasetPtr& ds, int64_t fallback);
std::string join_names(const std::vector<std::string>& names);  // "a|b|c"
std::vector<std::string> split_names(const std::string& joined);
std::vector<std::vector<int64_t>> confusion_matrix(const EvalOutput& ev, int64_t num_classes);
Predictions to_predictions(const EvalOutput& ev, int64_t num_classes);

}  // namespace ember::apps
