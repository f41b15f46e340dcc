#include "apps/common/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>

#include "apps/common/checkpoint_meta.h"
#include "apps/common/data_setup.h"
#include "apps/common/predictions.h"
#include "apps/common/time_budget.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "dist/data_parallel.h"
#include "dist/gradient_sync.h"
#include "ember/ember.h"
#include "nn/layers.h"
#include "nn/safetensors.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/sam.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

namespace ember::apps {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A double written so that reading it back gives the same double (std::to_string keeps 6 decimals).
std::string exact_decimal(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
// When the process started (near enough: static initialisation): --time-budget counts from here.
const Clock::time_point kProcessStart = Clock::now();

std::unique_ptr<optim::Optimizer> make_optimizer(const RecipeConfig& c, nn::Module& model) {
  auto groups = model.param_groups(c.weight_decay);
  if (c.optimizer == "adamw") {
    optim::AdamOptions o;
    o.lr = c.lr;
    return std::make_unique<optim::AdamW>(groups, o);
  }
  if (c.optimizer == "sgd") {
    optim::SGDOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.nesterov = true;
    return std::make_unique<optim::SGD>(groups, o);
  }
  throw make_error("optimizer: '", c.optimizer, "' is not one of adamw, sgd");
}

// Whole-checkpoint file: the model under "model.", the optimizer under "optim.", the EMA's
// averaged weights (when there is one) under "ema.", so --resume restores all three.
void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer& opt, const optim::EMA* ema,
                     std::map<std::string, std::string> meta) {
  nn::StateDict all;
  for (auto& [k, t] : model.state_dict()) all.emplace_back("model." + k, t);
  for (auto& [k, t] : opt.state_dict()) all.emplace_back("optim." + k, t);
  if (ema)
    for (auto& [k, t] : ema->shadow()) all.emplace_back("ema." + k, t);
  meta["format"] = "ember-checkpoint-1";
  nn::save_safetensors(path, all, meta);
}

// The phase an iteration belongs to (the schedule's boundaries, in iterations).
std::string phase_of_iteration(const optim::PhaseScheduleConfig& s, int64_t it) {
  if (it < s.head_iters) return "head";
  if (it < s.head_iters + s.warmup_iters) return "warmup";
  if (it < s.head_iters + s.warmup_iters + s.hold_iters) return "hold";
  return "cooldown";
}

}  // namespace

std::string TestTimeAugmentation::describe() const {
  if (views() == 1) return "none";
  std::string s = flip ? "flip" : "";
  if (shift > 0) s += std::string(flip ? " + " : "") + "shift " + std::to_string(shift) + " px";
  return s + " (" + std::to_string(views()) + " views)";
}

EvalOutput evaluate(nn::UnaryModule& model, data::DatasetPtr dataset, const ModelSpec& spec, Device device,
                    int64_t batch_size, int64_t workers, const TestTimeAugmentation& tta) {
  EMBER_CHECK(tta.shift >= 0, "evaluate: a negative test-time shift (", tta.shift, ")");
  // The shift in the model's input pixels: the stored image's pixels times the resize factor.
  int64_t shift = 0;
  if (tta.shift > 0) {
    const int64_t native = native_resolution(dataset, spec.resolution);
    shift = std::max<int64_t>(1, std::llround(static_cast<double>(tta.shift) * spec.resolution / native));
    EMBER_CHECK(shift < spec.resolution, "test-time shift of ", tta.shift, " pixels of the ", native, "x", native,
                " images is ", shift, " pixels at the model's ", spec.resolution, "x", spec.resolution,
                ": it must be less than the image's size");
  }
  NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  data::DataLoader loader(dataset, eval_loader_options(dataset, spec, batch_size, workers));
  // Rows are as wide as the model's output (its class count), whatever the data's count: a label
  // the model has no class for is an Error.
  int64_t C = -1;
  EvalOutput out;
  std::vector<float> probs;
  double loss_sum = 0;
  int64_t right = 0, labelled = 0;
  for (const data::Batch& b : loader) {
    Tensor x = b.images.to(device);
    auto probs_of = [&](const Tensor& view) { return softmax(model.forward(Variable(view)).data(), -1); };
    Tensor p = probs_of(x);
    if (tta.flip) p = add(p, probs_of(flip_width(x)));
    if (shift > 0) {
      for (int64_t dy : {-shift, shift})
        for (int64_t dx : {-shift, shift}) {
          Tensor moved = shift_reflect(x, dy, dx);
          p = add(p, probs_of(moved));
          if (tta.flip) p = add(p, probs_of(flip_width(moved)));
        }
    }
    if (tta.views() > 1) p = mul(p, 1.0 / static_cast<double>(tta.views()));
    Tensor host = p.cpu().to(DType::f32).contiguous();  // (B, C)
    C = host.size(1);
    const float* hp = host.data<float>();
    auto labels = b.labels.to_vector<int64_t>();
    for (int64_t i = 0; i < host.size(0); ++i) {
      const float* row = hp + i * C;
      probs.insert(probs.end(), row, row + C);
      int64_t y = labels[i];
      EMBER_CHECK(y < C, "evaluate: '", b.names[i], "' has label ", y, " but the model has ", C, " classes");
      out.labels.push_back(y);
      out.names.push_back(b.names[i]);
      if (y >= 0) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; ++c)
          if (row[c] > row[best]) best = c;
        right += best == y;
        loss_sum -= std::log(std::max(row[y], 1e-15f));
        ++labelled;
      }
    }
  }
  out.probs = from_vector(probs, {static_cast<int64_t>(out.names.size()), std::max<int64_t>(C, 0)});
  out.loss = labelled ? loss_sum / labelled : std::numeric_limits<double>::quiet_NaN();
  out.accuracy = labelled ? static_cast<double>(right) / labelled : std::numeric_limits<double>::quiet_NaN();
  model.train(was_training);
  return out;
}

std::array<int64_t, 4> phase_iterations(const std::array<double, 4>& epochs, int64_t batches) {
  std::array<int64_t, 4> out{};
  double end = 0;
  int64_t done = 0;
  for (size_t k = 0; k < epochs.size(); ++k) {
    end += epochs[k];
    const int64_t boundary = static_cast<int64_t>(std::llround(end * static_cast<double>(batches)));
    out[k] = boundary - done;
    done = boundary;
  }
  return out;
}

RecipeResult run_recipe(const RecipeConfig& c) {
  namespace fs = std::filesystem;
  if (c.threads > 0) cpu::set_num_threads(static_cast<int>(c.threads));
  // Data parallelism: under `mpirun -np N` the N ranks each train on 1/N of every global batch
  // (--batch is the global batch), average their gradients (dist/data_parallel.h) and so take
  // the same steps; rank 0 (the lead) alone prints, validates and writes files.
  std::shared_ptr<dist::ProcessGroup> group = dist::default_group();
  const int world = group->size();
  const bool lead = group->rank() == 0;
  EMBER_CHECK(c.batch_size % world == 0, "--batch ", c.batch_size, " (the global batch) does not divide among ", world,
              " ranks");
  fs::create_directories(c.out);
  if (lead) remove_stale_temp_files(c.out);
  manual_seed(c.seed);

  // ---- data ---------------------------------------------------------------------------------
  DataSetup ds = open_data(c.data, c.val_fraction, c.seed, c.skip_bad, c.generated_size);
  ModelOptions mo = c.model_options;
  mo.num_classes = ds.num_classes;
  ModelSpec spec;
  auto model = make_model(c.model, mo, &spec);
  if (ds.val && ds.val->size() == 0)
    throw make_error("--val-fraction ", c.val_fraction, " holds out no image of the ", ds.all->size(), " (",
                     ds.num_classes, " classes, rounded per class): raise it, or give --val-fraction 0 to train "
                     "without validation");
  if (lead) {
    std::cerr << "data: " << ds.description << "; " << ds.train->size() << " train / "
              << (ds.val ? ds.val->size() : 0) << " validation images, " << ds.num_classes << " classes\n";
    std::cerr << "model: " << c.model << " at " << spec.resolution << "x" << spec.resolution << ", "
              << model->num_parameters() << " parameters, device " << c.device.str();
    if (world > 1) std::cerr << ", " << world << " ranks (" << group->backend() << ") of batch " << c.batch_size / world;
    if (world > 1 && c.sync_bn) std::cerr << ", synchronized BatchNorm";
    std::cerr << "\n";
  }
  if (!c.init.empty()) load_pretrained(c.init, *model, spec);
  model->to(c.device);

  data::LoaderOptions loader_options = train_loader_options(ds.train, spec, c);
  loader_options.batch_size = c.batch_size / world;  // this rank's share of each global batch
  loader_options.rank = group->rank();
  loader_options.world_size = world;
  data::DataLoader train_loader(ds.train, loader_options);
  const int64_t batches = c.max_batches > 0 ? std::min(c.max_batches, train_loader.num_batches())
                                            : train_loader.num_batches();
  EMBER_CHECK(batches > 0, "recipe: the training split (", ds.train->size(), " images) gives no batch of ",
              c.batch_size);

  // ---- optimizer, schedule, SAM, EMA ----------------------------------------------------------
  auto opt = make_optimizer(c, *model);
  optim::PhaseScheduleConfig sc;
  // Phases may be fractions of an epoch (rounded to whole iterations), and the run is as many
  // passes over the data as they add up to (the last one cut short where they end).
  const auto phase_iters =
      phase_iterations({c.head_epochs, c.warmup_epochs, c.hold_epochs, c.cooldown_epochs}, batches);
  sc.head_iters = phase_iters[0];
  sc.head_lr = c.head_lr >= 0 ? c.head_lr : c.lr;
  sc.warmup_iters = phase_iters[1];
  sc.warmup_start = c.warmup_start >= 0 ? c.warmup_start : c.lr / 100;
  sc.peak_lr = c.lr;
  sc.hold_iters = phase_iters[2];
  sc.cooldown_iters = phase_iters[3];
  sc.final_lr = c.final_lr;
  sc.cooldown = c.cooldown == "linear" ? optim::Anneal::linear : optim::Anneal::cosine;
  std::unique_ptr<optim::SAM> sam;
  if (c.sam_rho > 0) sam = std::make_unique<optim::SAM>(*opt, c.sam_rho, c.asam);
  std::unique_ptr<optim::EMA> ema;
  if (c.ema_decay > 0) ema = std::make_unique<optim::EMA>(*model, c.ema_decay);
  int64_t total_iters = sc.head_iters + sc.warmup_iters + sc.hold_iters + sc.cooldown_iters;
  EMBER_CHECK(total_iters > 0, "recipe: the phases add up to no iteration (", batches, " batches per epoch)");
  const int64_t given_hold_iters = sc.hold_iters, given_cooldown_iters = sc.cooldown_iters;
  // --time-budget: hold and cooldown are re-planned from measured times, and once the cooldown
  // has begun its length alone (time_budget.h). A resumed run starts from its checkpoint's plan
  // and goes on re-planning it when the budget is given again.
  const bool budgeted = c.time_budget_min > 0;
  EMBER_CHECK(!budgeted || given_hold_iters + given_cooldown_iters > 0,
              "--time-budget scales the hold and the cooldown, and both are 0 iterations here");
  bool planned = false, hold_fixed = false;  // hold_fixed: the cooldown has begun
  double elapsed_before = 0;  // a resumed run's earlier processes

  // ---- resume -----------------------------------------------------------------------------------
  int64_t start_epoch = 0, iteration = 0;
  double best_acc = -1;
  if (!c.resume.empty()) {
    nn::SafetensorsFile ck = nn::load_safetensors(c.resume);
    CheckpointMeta meta(c.resume, ck.metadata);
    EMBER_CHECK(meta.has("format") && meta.text("format") == "ember-checkpoint-1", "resume: '", c.resume,
                "' is not a training checkpoint written by ember (no ember-checkpoint-1 metadata)");
    EMBER_CHECK(meta.text("model") == c.model, "resume: '", c.resume, "' holds a ", meta.text("model"), ", not a ",
                c.model);
    start_epoch = meta.integer("epoch") + 1;
    iteration = meta.integer("iteration");
    best_acc = meta.real("best_val_acc");
    const uint64_t rng_offset = meta.unsigned_integer("rng_offset");
    model->load_state_dict(with_prefix(ck.tensors, "model."), true);
    opt->load_state_dict(with_prefix(ck.tensors, "optim."));
    if (ema) {
      nn::StateDict averaged = with_prefix(ck.tensors, "ema.");
      if (!averaged.empty()) {
        ema->load_state_dict(averaged);
      } else {  // a checkpoint of a run without --ema, or from before checkpoints held the EMA
        std::cerr << "resume: '" << c.resume << "' holds no EMA weights; the EMA starts from the resumed model\n";
        ema = std::make_unique<optim::EMA>(*model, c.ema_decay);
      }
    }
    default_generator().set_offset(rng_offset);
    if (meta.has("budget_hold_iters")) {  // the run was fitted to a time budget: its plan stands
      sc.hold_iters = meta.integer("budget_hold_iters");
      sc.cooldown_iters = meta.integer("budget_cooldown_iters");
      if (meta.has("budget_cooldown_knot_iters")) {  // a cooldown re-planned while under way
        sc.cooldown_knot_iters = meta.integer("budget_cooldown_knot_iters");
        sc.cooldown_knot_progress = meta.real("budget_cooldown_knot_progress");
        EMBER_CHECK(sc.cooldown_knot_iters < sc.cooldown_iters && sc.cooldown_knot_progress < 1, "resume: '",
                    c.resume, "' has its cooldown's knot at iteration ", sc.cooldown_knot_iters, " (progress ",
                    sc.cooldown_knot_progress, ") of a cooldown of ", sc.cooldown_iters,
                    " iterations: budget_cooldown_knot_iters must be below budget_cooldown_iters and "
                    "budget_cooldown_knot_progress below 1");
      }
      planned = true;
      hold_fixed = meta.integer("budget_fixed") == 1;
      elapsed_before = meta.real("budget_elapsed_s");
      if (lead)
        std::cerr << "resume: the checkpoint's time-budget plan: hold " << sc.hold_iters << ", cooldown "
                  << sc.cooldown_iters << " iterations\n";
    }
    if (lead) std::cerr << "resume: from " << c.resume << " at epoch " << start_epoch << "\n";
  }
  optim::PhaseSchedule schedule(sc);
  int64_t total_epochs = 0;
  // The schedule and the run's length from sc's phases (again whenever the budget re-plans them).
  auto set_schedule = [&] {
    schedule = optim::PhaseSchedule(sc);
    total_iters = schedule.total_iters();
    total_epochs = (total_iters + batches - 1) / batches;
  };
  set_schedule();
  EMBER_CHECK(iteration <= total_iters, "resume: '", c.resume, "' is at iteration ", iteration,
              " but the schedule ends at ", total_iters);

  // Measured for the budget: whole-network iterations (data loading included; the last quarter
  // epoch's) and epoch ends. A quarter epoch is also how often a cooldown under way is re-planned.
  const int64_t quarter_epoch = std::max<int64_t>(1, batches / 4);
  RecentMean full_iter_s(quarter_epoch);
  double epoch_end_s = -1;
  int64_t full_iters = 0;
  auto cooldown_begin = [&] { return sc.head_iters + sc.warmup_iters + sc.hold_iters; };
  // Re-plans hold and cooldown, or in a cooldown under way the cooldown's length (the lead
  // computes, every rank applies the same numbers). `say`: print the plan when it changes.
  auto replan = [&](bool say) {
    if (!budgeted || full_iters == 0) return;
    int64_t hold = sc.hold_iters, cooldown = sc.cooldown_iters;
    if (lead) {
      BudgetInputs in;
      in.budget_s = c.time_budget_min * 60;
      in.elapsed_s = elapsed_before + seconds_since(kProcessStart);
      in.done = iteration;
      in.iter_s = full_iter_s.mean();
      // Until one is measured, an epoch end is estimated as a forward pass over the held-out
      // images at 0.4 of a training iteration per batch.
      const double val_batches =
          ds.val ? std::ceil(static_cast<double>(ds.val->size()) / static_cast<double>(c.batch_size)) : 0;
      in.epoch_end_s = epoch_end_s >= 0 ? epoch_end_s : 0.4 * val_batches * in.iter_s;
      in.batches_per_epoch = batches;
      in.head_iters = sc.head_iters;
      in.warmup_iters = sc.warmup_iters;
      in.given_hold_iters = given_hold_iters;
      in.given_cooldown_iters = given_cooldown_iters;
      if (hold_fixed) in.hold_fixed_iters = sc.hold_iters;
      const BudgetPlan p = plan_to_budget(in);
      hold = p.hold_iters;
      cooldown = p.cooldown_iters;
      if (say && (hold != sc.hold_iters || cooldown != sc.cooldown_iters || !planned))
        std::fprintf(stderr,
                     "time budget %.1f min: %.1f min spent, %.3f s per iteration, %.1f s per epoch end%s -> hold "
                     "%lld, cooldown %lld iterations (%.2f epochs in all), predicted end at %.1f min%s\n",
                     c.time_budget_min, in.elapsed_s / 60, in.iter_s, in.epoch_end_s,
                     epoch_end_s >= 0 ? "" : " (estimated)", static_cast<long long>(hold),
                     static_cast<long long>(cooldown),
                     static_cast<double>(p.total_iters) / static_cast<double>(batches), p.predicted_s / 60,
                     p.overrun  ? "; the budget cannot be met, so the run ends as soon as it can"
                     : p.capped ? " (capped at 3x the given hold + cooldown)"
                                : "");
    }
    if (world > 1) {
      Tensor t = from_vector<int64_t>({hold, cooldown}, {2});
      group->broadcast(t, 0);
      const auto v = t.to_vector<int64_t>();
      hold = v[0], cooldown = v[1];
    }
    planned = true;
    if (hold == sc.hold_iters && cooldown == sc.cooldown_iters) return;
    if (hold_fixed && iteration > cooldown_begin()) {
      // The learning rate goes on from here along the same curve over the new remaining length:
      // a knot at this iteration (how the schedule ran before it is not needed again).
      sc.cooldown_knot_progress = std::min(schedule.progress(iteration), std::nextafter(1.0, 0.0));
      sc.cooldown_knot_iters = iteration - cooldown_begin();
    }
    sc.hold_iters = hold;
    sc.cooldown_iters = cooldown;
    set_schedule();
  };
  if (world > 1) dist::broadcast_module(*model, *group);  // every rank starts from the lead's weights
  // SyncBatchNorm: the ranks' BatchNorm statistics are the global batch's (one process has them anyway).
  if (world > 1 && c.sync_bn) dist::enable_sync_batch_norm(*model, group);
  // Gradients averaged over the ranks in buckets that start as backward completes them, so the
  // communication overlaps the rest of backward (dist/gradient_sync.h).
  std::optional<dist::GradientSync> gradient_sync;
  if (world > 1) gradient_sync.emplace(*model, group);
  auto backward = [&](const Variable& loss) {
    if (gradient_sync) gradient_sync->backward(loss);  // the global batch's gradient on every rank
    else loss.backward();
  };

  // A resumed run keeps the rows of the epochs its checkpoint had finished and drops any later
  // ones (a run killed after writing a row but before its checkpoint would otherwise repeat it).
  std::optional<MetricsWriter> metrics;
  if (lead) metrics.emplace(c.out, /*append=*/!c.resume.empty(), /*keep_epochs=*/start_epoch);
  std::vector<EpochRecord> history;
  RecipeResult result;
  result.lead = lead;
  result.best_checkpoint = c.out + "/best.safetensors";
  result.last_checkpoint = c.out + "/last.safetensors";
  const bool mixing = c.mixup > 0 || c.cutmix > 0;  // the loader's workers mix; batches carry soft targets

  // Head phase: only the classifier learns, on a frozen body whose BatchNorm layers normalise
  // with their running statistics and do not update them (what fine-tuning a pretrained body
  // needs: a new head's noisy first steps cannot disturb it); afterwards everything learns but
  // the --freeze prefixes.
  auto enter_phase = [&](const std::string& phase) {
    model->unfreeze("");
    if (phase == "head") {
      model->freeze("");
      model->unfreeze(spec.head_prefix);
    }
    for (const std::string& prefix : c.freeze) model->freeze(prefix);
    model->train();
    if (phase == "head") nn::set_batch_norm_eval(*model, true);
    for (const std::string& prefix : c.freeze) nn::set_batch_norm_eval(*model, true, prefix);
  };

  for (int64_t epoch = start_epoch; epoch < total_epochs; ++epoch) {
    replan(/*say=*/true);
    if (epoch >= total_epochs) break;
    std::string phase = phase_of_iteration(sc, iteration), phases = phase;  // phases: all this epoch saw
    enter_phase(phase);
    train_loader.set_epoch(epoch);
    int64_t epoch_batches = std::min(batches, total_iters - iteration);
    std::optional<ProgressBar> bar;
    if (lead)
      bar.emplace("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(total_epochs) + " " + phase, epoch_batches);
    auto t0 = Clock::now();
    const uint64_t syncs_before = cuda::host_sync_count();  // on CUDA: reported per step below
    double loss_sum = 0, lr = 0;
    int64_t seen = 0, right = 0, b = 0;
    auto last_step = Clock::now();
    for (const data::Batch& batch : train_loader) {
      // The budget: the last moment hold and cooldown can change together, and every quarter
      // epoch of the cooldown after it.
      const bool cooldown_starts = budgeted && !hold_fixed && iteration >= cooldown_begin();
      const bool cooldown_check = budgeted && hold_fixed && iteration > cooldown_begin() && b > 0 &&
                                  (iteration - cooldown_begin()) % quarter_epoch == 0;
      if (cooldown_starts || cooldown_check) {
        replan(/*say=*/cooldown_starts);
        epoch_batches = std::min(batches, total_iters - (iteration - b));
        if (bar) bar->set_total(epoch_batches);
        if (cooldown_starts && full_iters == 0 && lead)
          std::cerr << "time budget: no whole-network iteration ran before the cooldown, so the hold stays as "
                       "given and the cooldown is planned once one has run\n";
        if (iteration >= cooldown_begin()) hold_fixed = true;
      }
      if (b >= epoch_batches) break;
      if (std::string now = phase_of_iteration(sc, iteration); now != phase) {
        phase = now;
        phases += "+" + now;
        enter_phase(phase);
      }
      lr = schedule.lr(iteration);
      opt->set_lr(lr);
      const Tensor& targets = mixing ? batch.targets : batch.labels;
      // On the device already when the loader uploads (--device cuda): then these are no-ops.
      Tensor x = batch.images.to(c.device), y = targets.to(c.device);
      // Dropout and drop-path masks keyed by each sample's place in the global batch, so that the
      // ranks draw, between them, the masks one process draws for the whole batch.
      std::optional<GlobalSampleScope> keyed;
      if (world > 1) keyed.emplace(batch.first, x.size(0));
      auto compute_loss = [&](Variable& logits_out) {
        logits_out = model->forward(Variable(x));
        // soft targets already carry the smoothing (mixer); hard ones get it here
        return cross_entropy(logits_out, y, mixing ? 0.0 : c.label_smoothing);
      };
      Variable logits;
      Variable loss = compute_loss(logits);
      const int64_t n = x.size(0);
      // The batch's loss and correct count, computed where the logits are and read back together
      // once the whole step is queued: the step's one host read (on CUDA its one host sync,
      // tests/apps/test_cuda_step.cpp).
      Tensor truth = mixing ? argmax(y, {1}) : y;
      Tensor right_count = sum(eq(argmax(logits.data(), {1}), truth).to(DType::f64));
      Tensor step_stats = cat({loss.data().to(DType::f64).reshape({1}), right_count.reshape({1})});
      backward(loss);
      if (sam) {
        sam->first_step();
        sam->zero_grad();
        nn::set_batch_norm_stats_frozen(*model, true);  // the second pass must not count this batch again
        Variable logits2;
        backward(compute_loss(logits2));
        nn::set_batch_norm_stats_frozen(*model, false);
        if (c.clip_grad > 0) optim::clip_grad_norm_on_device(model->parameters(), c.clip_grad);
        sam->second_step();
      } else {
        if (c.clip_grad > 0) optim::clip_grad_norm_on_device(model->parameters(), c.clip_grad);
        opt->step();
      }
      opt->zero_grad();
      if (ema) ema->update();
      const std::vector<double> sv = step_stats.to_vector<double>();
      int64_t batch_right = std::llround(sv[1]);
      // The global batch's loss and accuracy (one small all_reduce): every rank sees the same
      // numbers, so a divergence stops every rank at the same step.
      double lv = sv[0], batch_images = static_cast<double>(n), batch_loss_sum = lv * n;
      if (world > 1) {
        Tensor s = from_vector<double>({batch_loss_sum, static_cast<double>(batch_right), batch_images}, {3});
        group->all_reduce(s);
        const auto v = s.to_vector<double>();
        batch_loss_sum = v[0];
        batch_right = static_cast<int64_t>(v[1]);
        batch_images = v[2];
        lv = batch_loss_sum / batch_images;
      }
      // (Checked after the step was taken: the weights in memory are then spoilt, but the run
      // stops here and the checkpoints on disk are from before.)
      if (!std::isfinite(lv))
        throw make_error("training diverged: loss is ", lv, " at epoch ", epoch + 1, ", iteration ", iteration,
                         " (lr ", lr, "); the last good checkpoint is ", result.last_checkpoint,
                         " — lower --lr or enable --clip-grad");

      // running statistics for the bar (of the global batches)
      right += batch_right;
      loss_sum += batch_loss_sum;
      seen += static_cast<int64_t>(batch_images);
      ++b;
      ++iteration;
      if (bar) bar->update(b, loss_sum / seen, static_cast<double>(right) / seen, seen);
      const auto step_end = Clock::now();
      if (phase != "head") {  // head iterations have no backward through the body
        full_iter_s.add(std::chrono::duration<double>(step_end - last_step).count());
        ++full_iters;
      }
      last_step = step_end;
    }
    if (bar) bar->finish();
    if (lead && c.device.is_cuda() && b > 0) {  // one (the loss read) is the design; more is a hidden wait
      const uint64_t syncs = cuda::host_sync_count() - syncs_before;
      std::fprintf(stderr, "epoch %lld: %.2f host syncs per training step (%llu in %lld steps)\n",
                   static_cast<long long>(epoch + 1), static_cast<double>(syncs) / static_cast<double>(b),
                   static_cast<unsigned long long>(syncs), static_cast<long long>(b));
    }
    if (!lead) continue;  // the lead validates and writes; the others go on to the next epoch
    double train_seconds = seconds_since(t0);
    const auto epoch_end_start = Clock::now();

    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.phase = phases;
    rec.lr = lr;
    rec.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    rec.train_acc = static_cast<double>(right) / std::max<int64_t>(seen, 1);
    rec.img_per_s = seen / std::max(train_seconds, 1e-9);
    rec.val_loss = rec.val_acc = std::numeric_limits<double>::quiet_NaN();
    EvalOutput ev;
    if (ds.val) {
      if (ema) {  // validate the averaged weights
        ema->store();
        ema->copy_to(*model);
      }
      ev = evaluate(*model, ds.val, spec, c.device, c.batch_size, c.workers);
      if (ema) ema->restore();
      EMBER_CHECK(!std::isnan(ev.accuracy), "validation: none of the ", ds.val->size(),
                  " held-out images could be read (see the warnings above); fix or remove them, or give "
                  "--val-fraction 0 to train without validation");
      rec.val_loss = ev.loss;
      rec.val_acc = ev.accuracy;
    }
    rec.seconds = seconds_since(t0);
    metrics->write(rec);
    history.push_back(rec);
    std::fprintf(stderr, "epoch %lld %-8s lr %.2e  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %.0f img/s\n",
                 static_cast<long long>(rec.epoch), phases.c_str(), lr, rec.train_loss, rec.train_acc, rec.val_loss,
                 rec.val_acc, rec.img_per_s);

    std::map<std::string, std::string> meta{
        {"model", c.model},
        {"num_classes", std::to_string(ds.num_classes)},
        {"resolution", std::to_string(spec.resolution)},
        {"epoch", std::to_string(epoch)},
        {"iteration", std::to_string(iteration)},
        {"val_acc", std::to_string(rec.val_acc)},
        {"rng_offset", std::to_string(default_generator().offset())},
        {"class_names", join_names(ds.class_names)},
        {"init", c.init},
        {"pretrained", c.pretrained}};
    if (planned) {
      meta["budget_hold_iters"] = std::to_string(sc.hold_iters);
      meta["budget_cooldown_iters"] = std::to_string(sc.cooldown_iters);
      meta["budget_fixed"] = hold_fixed ? "1" : "0";
      if (sc.cooldown_knot_iters > 0) {
        meta["budget_cooldown_knot_iters"] = std::to_string(sc.cooldown_knot_iters);
        meta["budget_cooldown_knot_progress"] = exact_decimal(sc.cooldown_knot_progress);
      }
      meta["budget_elapsed_s"] = std::to_string(elapsed_before + seconds_since(kProcessStart));
    }
    bool improved = ds.val && rec.val_acc > best_acc;
    if (improved) best_acc = rec.val_acc;
    meta["best_val_acc"] = std::to_string(best_acc);
    save_checkpoint(result.last_checkpoint, *model, *opt, ema.get(), meta);
    if (improved || !ds.val) {
      save_checkpoint(result.best_checkpoint, *model, *opt, ema.get(), meta);
      if (ds.val) {
        write_confusion_svg(c.out + "/confusion.svg", confusion_matrix(ev, ds.num_classes), ds.class_names,
                            c.model + " — validation confusion (best epoch " + std::to_string(rec.epoch) + ")");
        Predictions p = to_predictions(ev, ds.num_classes);
        result.predictions = c.out + "/val_predictions.csv";
        write_predictions(result.predictions, p);
      }
    }
    if (ema) nn::save_safetensors(c.out + "/ema.safetensors", ema->shadow(), meta);
    write_curves_svg(c.out + "/curves.svg", history, c.model + " on " + ds.description);
    result.final_val_acc = rec.val_acc;
    result.final_val_loss = rec.val_loss;
    result.img_per_s = rec.img_per_s;
    epoch_end_s = seconds_since(epoch_end_start);
  }
  result.best_val_acc = best_acc;
  return result;
}

}  // namespace ember::apps
