// Dataset basics, subsets and train/val splits.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "data/rng.h"

namespace ember::data {

void Dataset::check_index(int64_t i, const char* op) const {
  EMBER_CHECK(i >= 0 && i < size(), op, ": index ", i, " out of range for a dataset of ", size(), " samples");
}

SubsetDataset::SubsetDataset(DatasetPtr base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  EMBER_CHECK(base_ != nullptr, "SubsetDataset: null base dataset");
  const int64_t n = base_->size();
  for (int64_t i : indices_)
    EMBER_CHECK(i >= 0 && i < n, "SubsetDataset: index ", i, " out of range for a base dataset of ", n, " samples");
}

Sample SubsetDataset::get(int64_t i) const {
  check_index(i, "SubsetDataset::get");
  return base_->get(indices_[i]);
}

int64_t SubsetDataset::label(int64_t i) const {
  check_index(i, "SubsetDataset::label");
  return base_->label(indices_[i]);
}

TrainValSplit split(DatasetPtr dataset, double val_fraction, uint64_t seed, bool stratified) {
  EMBER_CHECK(dataset != nullptr, "split: null dataset");
  EMBER_CHECK(val_fraction >= 0.0 && val_fraction <= 1.0, "split: val_fraction must be in [0, 1], got ",
              val_fraction);
  const int64_t n = dataset->size();
  // Groups of indices that are split separately: one per class, or one for everything.
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < n; ++i) groups[stratified ? dataset->label(i) : 0].push_back(i);

  std::vector<int64_t> train, val;
  Rng rng(mix64(seed), 0x5b117);
  for (auto& [label, members] : groups) {
    rng.shuffle(members);
    const auto n_val = static_cast<size_t>(std::llround(val_fraction * static_cast<double>(members.size())));
    val.insert(val.end(), members.begin(), members.begin() + n_val);
    train.insert(train.end(), members.begin() + n_val, members.end());
  }
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  return {std::make_shared<SubsetDataset>(dataset, std::move(train)),
          std::make_shared<SubsetDataset>(dataset, std::move(val))};
}

}  // namespace ember::data
