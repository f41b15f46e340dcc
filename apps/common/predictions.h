// Prediction files: what ember-predict writes and ember-ensemble reads.
//
//   file_name,label,p0,p1,...,p{C-1}        (header line, then one line per image)
//   img_00001.jpg,7,0.0012,0.0003,...
// label is the true class when the data has one, else -1. Probabilities sum to 1 per row.
// The submission format (competition) is the same rows without the label column and without a
// header: file_name,p0,...,p{C-1}.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::apps {

struct Predictions {
  std::vector<std::string> names;
  std::vector<int64_t> labels;  // -1 where unknown
  int64_t num_classes = 0;
  std::vector<double> probs;    // rows × num_classes
  int64_t rows() const { return static_cast<int64_t>(names.size()); }
  const double* row(int64_t i) const { return probs.data() + i * num_classes; }
};

void write_predictions(const std::string& path, const Predictions& p);  // atomic (temp file + rename)
Predictions read_predictions(const std::string& path);                   // Error naming the file and line
void write_submission(const std::string& path, const Predictions& p);

// Over the rows with a known label; NaN when none has one.
double accuracy(const Predictions& p);
double log_loss(const Predictions& p);  // mean −ln p[label], p clipped to [1e-15, 1]

// Σ_k w_k·P_k / Σ w_k; every member must list the same files in the same order and class count.
Predictions average(const std::vector<Predictions>& members, const std::vector<double>& weights);

// Writes `text` to path atomically: a temporary file beside it (path.tmp.<pid>), fsync, rename.
void write_file_atomic(const std::string& path, const std::string& text);

// Removes the temporary files our atomic writers (write_file_atomic, nn::save_safetensors) left
// in `dir` when a process was killed between write and rename: names ending ".tmp.<pid>" whose
// process is gone. Those of running processes (this one included) stay. Returns how many went.
int64_t remove_stale_temp_files(const std::string& dir);

}  // namespace ember::apps
