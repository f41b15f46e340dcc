// ember-ensemble: averages prediction files (optionally weighted), prints each member's and the
// ensemble's accuracy and log loss (on rows with a known label), and writes the ensemble's
// predictions and a submission CSV in the competition's format.
//
//   ember-ensemble runs/effnet/predictions.csv runs/vit/predictions.csv --weights 1 1 --out runs/ensemble
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/common/predictions.h"
#include "tensor/error.h"

using namespace ember::apps;

int main(int argc, char** argv) {
  CLI::App app{"ember-ensemble: average prediction files and score them"};
  std::vector<std::string> files;
  std::vector<double> weights;
  std::string out = "runs/ensemble";
  app.add_option("predictions", files, "prediction files written by ember-predict (two or more)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--weights", weights, "one non-negative weight per file (default: equal)");
  app.add_option("--out", out, "output directory (ensemble.csv, submission.csv)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (files.size() < 2) throw ember::make_error("ember-ensemble: give at least two prediction files, got ", files.size());
    std::vector<Predictions> members;
    for (auto& f : files) members.push_back(read_predictions(f));
    Predictions ens = average(members, weights);
    std::filesystem::create_directories(out);
    write_predictions(out + "/ensemble.csv", ens);
    write_submission(out + "/submission.csv", ens);
    std::printf("%-40s %8s %8s %9s\n", "member", "weight", "accuracy", "log loss");
    for (size_t k = 0; k < members.size(); ++k)
      std::printf("%-40s %8.3g %8.4f %9.4f\n", files[k].c_str(), weights.empty() ? 1.0 : weights[k],
                  accuracy(members[k]), log_loss(members[k]));
    std::printf("%-40s %8s %8.4f %9.4f\n", "ensemble", "", accuracy(ens), log_loss(ens));
    if (std::isnan(accuracy(ens))) std::printf("(no labels in the prediction files: accuracy and log loss unknown)\n");
    std::printf("wrote %s/ensemble.csv and %s/submission.csv (%lld rows, %lld classes)\n", out.c_str(), out.c_str(),
                static_cast<long long>(ens.rows()), static_cast<long long>(ens.num_classes));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-ensemble: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
