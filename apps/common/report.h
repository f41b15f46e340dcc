// What a training run writes besides checkpoints: metrics.jsonl / metrics.csv (one row per
// epoch), SVG pictures of the training curves and the confusion matrix, and the terminal
// progress bar.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ember::apps {

// One epoch's numbers. Missing values are NaN (e.g. no validation split).
struct EpochRecord {
  int64_t epoch = 0;
  std::string phase;  // head | warmup | hold | cooldown
  double lr = 0, train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0, img_per_s = 0, seconds = 0;
};

// Appends rows to <dir>/metrics.jsonl and <dir>/metrics.csv (header written once); each row is
// flushed so a killed run keeps what it measured. Appending (a resumed run) with keep_epochs >= 0
// first drops the rows of epochs after keep_epochs (1-based), which the resumed run writes again.
class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& dir, bool append = false, int64_t keep_epochs = -1);
  void write(const EpochRecord& r);

 private:
  std::string jsonl_, csv_;
};

// Loss and accuracy per epoch, train and validation, as an SVG line chart.
void write_curves_svg(const std::string& path, const std::vector<EpochRecord>& records, const std::string& title);
// counts[true][predicted] as a heat map with class names on the axes.
void write_confusion_svg(const std::string& path, const std::vector<std::vector<int64_t>>& counts,
                         const std::vector<std::string>& class_names, const std::string& title);

// A one-line progress bar on stderr:  "epoch 3/10 [=====>    ] 120/391 loss 1.234 acc 0.567 812 img/s ETA 0:42"
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  void update(int64_t done, double loss, double acc, int64_t images);
  void set_total(int64_t total) { total_ = total; }  // the epoch's length changed (--time-budget)
  void finish();

 private:
  std::string label_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_;
};

}  // namespace ember::apps
