// ember-predict: checkpoint + data → a prediction file of class probabilities per image.
//
//   ember-predict --checkpoint runs/effnet/best.safetensors --data DIR --out runs/effnet [--tta-flip] [--tta-shift 2]
//   --split val reproduces the training run's held-out split (same --val-fraction and --seed).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "apps/common/checkpoint_meta.h"
#include "apps/common/cli_checks.h"
#include "apps/common/data_setup.h"
#include "apps/common/models.h"
#include "apps/common/predictions.h"
#include "apps/common/trainer.h"
#include "nn/safetensors.h"
#include "tensor/cpu/parallel.h"

using namespace ember;
using namespace ember::apps;

int main(int argc, char** argv) {
  CLI::App app{"ember-predict: class probabilities for every image of a dataset"};
  std::string checkpoint, data_path, out = "runs/predict", device = "cpu", split = "all";
  int64_t batch = 128, workers = 2, generated_size = 6000, threads = 0, resolution = 0;
  double val_fraction = 0.1;
  uint64_t seed = 0;
  bool skip_bad = false;
  TestTimeAugmentation tta;
  app.add_option("--checkpoint", checkpoint, "a checkpoint written by ember-effnet / ember-vit")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--data", data_path, "the images (default: the generated dataset)")->check(CLI::ExistingPath);
  app.add_option("--out", out, "output directory (predictions.csv)")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.add_option("--split", split, "all, or val: the held-out split of a training run")
      ->capture_default_str()->check(CLI::IsMember({"all", "val", "train"}));
  app.add_option("--val-fraction", val_fraction)->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 0.9));
  app.add_option("--seed", seed, "the training run's seed (for --split)")->capture_default_str();
  app.add_option("--generated-size", generated_size)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--workers", workers)->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "compute threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--resolution", resolution, "input resolution (default: the checkpoint's training resolution)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--tta-flip", tta.flip, "average with the horizontally flipped image");
  app.add_option("--tta-shift", tta.shift,
                 "also average the image moved diagonally by this many pixels (of the stored image) in each of "
                 "the four directions, reflect-padded; with --tta-flip the ten views of ten-crop (0 = off)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1024}));
  app.add_flag("--skip-bad", skip_bad, "leave out unreadable images with a warning");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) cpu::set_num_threads(static_cast<int>(threads));
    Device dev = Device::parse(device);
    nn::SafetensorsFile ck = nn::load_safetensors(checkpoint);
    CheckpointMeta meta(checkpoint, ck.metadata);
    ModelOptions mo;
    mo.num_classes = meta.integer("num_classes");
    mo.resolution = resolution > 0 ? resolution : meta.integer("resolution");
    ModelSpec spec;
    auto model = make_model(meta.text("model"), mo, &spec);
    nn::StateDict weights = with_prefix(ck.tensors, "model.");
    if (weights.empty()) weights = ck.tensors;  // a plain model file (save_module)
    model->load_state_dict(weights, /*strict=*/true);
    model->to(dev);

    data::DatasetPtr ds;
    if (split == "all") {
      ds = open_dataset(data_path, skip_bad, generated_size, seed);
    } else {
      DataSetup s = open_data(data_path, val_fraction, seed, skip_bad, generated_size);
      ds = split == "val" ? s.val : s.train;
      if (!ds) throw make_error("ember-predict: --split val needs --val-fraction > 0");
    }
    // Rows have the model's class count; data with fewer classes is fine (its labels are classes
    // of the model), data with more has labels the model cannot predict.
    if (ds->num_classes() > mo.num_classes)
      throw make_error("ember-predict: the data has ", ds->num_classes(), " classes but the model in '", checkpoint,
                       "' has ", mo.num_classes);
    EvalOutput ev = evaluate(*model, ds, spec, dev, batch, workers, tta);
    std::filesystem::create_directories(out);
    remove_stale_temp_files(out);
    write_predictions(out + "/predictions.csv", to_predictions(ev, mo.num_classes));
    std::printf("%s on %lld images: accuracy %.4f, log loss %.4f%s\n", meta.text("model").c_str(),
                static_cast<long long>(ev.names.size()), ev.accuracy, ev.loss,
                tta.views() > 1 ? (" (TTA: " + tta.describe() + ")").c_str() : "");
    std::printf("wrote %s/predictions.csv\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-predict: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
