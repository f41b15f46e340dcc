// ember-ensemble: averages prediction files (optionally weighted), prints each member's and the
// ensemble's accuracy and log loss (on rows with a known label), and writes the ensemble's
// predictions and a submission CSV in the competition's format. Rows are matched by file name;
// the output follows the first file's order.
//
//   ember-ensemble runs/effnet/predictions.csv runs/vit/predictions.csv --weights 1 1 --out runs/ensemble
//
// The weights can be fitted instead (apps/common/ensemble_fit.h: the non-negative weights summing
// to 1 with the least validation log loss), on one validation prediction file per member:
//
//   ember-ensemble effnet/test.csv vit/test.csv --fit-on effnet/val.csv vit/val.csv --out runs/ensemble
//   ember-ensemble effnet/val_predictions.csv vit/val_predictions.csv --fit   (fit on the files themselves)
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/common/cli_checks.h"
#include "apps/common/ensemble_fit.h"
#include "apps/common/predictions.h"
#include "tensor/error.h"

using namespace ember::apps;

namespace {

void print_table(const char* title, const std::vector<std::string>& files, const std::vector<Predictions>& members,
                 const std::vector<double>& weights, const std::vector<std::pair<std::string, Predictions>>& ensembles) {
  std::printf("%-40s %8s %8s %9s\n", title, "weight", "accuracy", "log loss");
  for (size_t k = 0; k < members.size(); ++k)
    std::printf("%-40s %8.4g %8.4f %9.4f\n", files[k].c_str(), weights.empty() ? 1.0 : weights[k],
                accuracy(members[k]), log_loss(members[k]));
  for (auto& [name, ens] : ensembles)
    std::printf("%-40s %8s %8.4f %9.4f\n", name.c_str(), "", accuracy(ens), log_loss(ens));
}

// Fits the weights on `val_files` (one per member, every row labelled), prints the validation
// table (each member, equal weights, fitted weights) and returns the weights.
std::vector<double> fit_weights(const std::vector<std::string>& val_files) {
  std::vector<Predictions> val;
  for (auto& f : val_files) val.push_back(read_predictions(f));
  val = align_rows(val, val_files);
  for (size_t k = 0; k < val.size(); ++k)
    for (int64_t i = 0; i < val[k].rows(); ++i)
      EMBER_CHECK(val[k].labels[i] >= 0, "ember-ensemble: '", val_files[k], "' has no label for '", val[k].names[i],
                  "': fitting weights needs labelled (validation) predictions");
  EnsembleFit fit = fit_ensemble_weights(val);
  std::printf("fitted the weights on %lld labelled rows: log loss %.6f, within %.1e of the optimum (%d iterations%s)\n",
              static_cast<long long>(val[0].rows()), fit.log_loss, fit.gap, fit.iterations,
              fit.converged ? "" : ", stopped before the tolerance");
  print_table("validation", val_files, val, fit.weights,
              {{"ensemble, equal weights", average(val, {})}, {"ensemble, fitted weights", average(val, fit.weights)}});
  std::printf("\n");
  return fit.weights;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember-ensemble: average prediction files and score them"};
  std::vector<std::string> files, fit_on;
  std::vector<double> weights;
  bool fit_self = false;
  std::string out = "runs/ensemble";
  app.add_option("predictions", files, "prediction files written by ember-predict (two or more)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* w_opt = app.add_option("--weights", weights, "one non-negative weight per file (default: equal)")
                   ->check(ember::apps::finite_number());
  auto* fit_on_opt = app.add_option("--fit-on", fit_on,
                                    "fit the weights (least log loss, non-negative, summing to 1) on these labelled "
                                    "validation prediction files, one per positional file in the same order")
                         ->check(CLI::ExistingFile)
                         ->excludes(w_opt);
  app.add_flag("--fit", fit_self, "fit the weights on the positional files themselves (they must be labelled)")
      ->excludes(w_opt)
      ->excludes(fit_on_opt);
  app.add_option("--out", out, "output directory (ensemble.csv, submission.csv, weights.txt when fitted)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (files.size() < 2) throw ember::make_error("ember-ensemble: give at least two prediction files, got ", files.size());
    if (!fit_on.empty() && fit_on.size() != files.size())
      throw ember::make_error("ember-ensemble: --fit-on got ", fit_on.size(), " validation files for ", files.size(),
                              " prediction files; give one per member, in the same order (put --fit-on after them)");
    std::vector<Predictions> members;
    for (auto& f : files) members.push_back(read_predictions(f));
    members = align_rows(members, files);  // rows matched by file name, in the first file's order
    bool fitted = fit_self || !fit_on.empty();
    if (fitted) weights = fit_weights(fit_self ? files : fit_on);
    Predictions ens = average(members, weights);
    std::filesystem::create_directories(out);
    ember::apps::remove_stale_temp_files(out);
    write_predictions(out + "/ensemble.csv", ens);
    write_submission(out + "/submission.csv", ens);
    if (fitted) {
      std::string text;
      char line[64];
      for (double w : weights) text += (std::snprintf(line, sizeof line, "%.12g\n", w), line);
      write_file_atomic(out + "/weights.txt", text);
    }
    if (!fit_self) print_table(fitted ? "member (fitted weights)" : "member", files, members, weights, {{"ensemble", ens}});
    if (std::isnan(accuracy(ens))) std::printf("(no labels in the prediction files: accuracy and log loss unknown)\n");
    std::string also = fitted ? " and " + out + "/weights.txt" : "";
    std::printf("wrote %s/ensemble.csv and %s/submission.csv%s (%lld rows, %lld classes)\n", out.c_str(), out.c_str(),
                also.c_str(), static_cast<long long>(ens.rows()), static_cast<long long>(ens.num_classes));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-ensemble: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
