// A checkpoint's metadata read through one schema: every key the apps read, its type and its
// range, so a missing, non-numeric or out-of-range value (a crafted "epoch" of 2^63 − 1 would
// make --resume train for ever) is an Error naming the file and the key instead of "map::at" or
// "stoll".
//
//   key           type      range                  written by
//   format        text      "ember-checkpoint-1"   save_checkpoint (trainer.cpp)
//   model         text      non-empty              the recipe apps
//   num_classes   integer   [1, 100000]            (data::CompetitionDataset::kMaxClasses)
//   resolution    integer   [1, 16384]
//   epoch         integer   [0, 1000000]           0-based epoch the checkpoint ends
//   iteration     integer   [0, 10^15]
//   best_val_acc  real      [-1, 1]                −1: no validation yet
//   rng_offset    integer   [0, 2^64 − 1]
//   budget_hold_iters      integer [0, 10^15]   the trainer, with --time-budget (time_budget.h):
//   budget_cooldown_iters  integer [0, 10^15]   the planned hold and cooldown, whether the hold
//   budget_fixed           integer [0, 1]       is final (the cooldown has begun) and the seconds
//   budget_elapsed_s       real    [0, 10^9]    the run had spent when it wrote the checkpoint
//   budget_cooldown_knot_iters    integer [1, 10^15]  where a re-planned cooldown's knot is
//   budget_cooldown_knot_progress real    [0, 1]      (optim/schedule.h; absent: no knot)
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace ember::apps {

class CheckpointMeta {
 public:
  CheckpointMeta(std::string path, std::map<std::string, std::string> metadata)
      : path_(std::move(path)), meta_(std::move(metadata)) {}

  bool has(const std::string& key) const { return meta_.count(key) != 0; }
  // The value of a key of the schema, checked against its type and range; an Error naming the
  // file and the key when it is missing, malformed or out of range.
  const std::string& text(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  uint64_t unsigned_integer(const std::string& key) const;  // rng_offset
  double real(const std::string& key) const;

 private:
  const std::string& raw(const std::string& key) const;
  std::string path_;
  std::map<std::string, std::string> meta_;
};

}  // namespace ember::apps
