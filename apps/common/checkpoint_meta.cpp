#include "apps/common/checkpoint_meta.h"

#include <cmath>

#include "apps/common/parse_number.h"
#include "data/dataset.h"
#include "tensor/error.h"

namespace ember::apps {

namespace {

enum class Kind { text, integer, unsigned_integer, real };

struct KeySpec {
  const char* name;
  Kind kind;
  double lo, hi;  // integer and real keys: the closed range allowed
};

// The schema (keep the table in checkpoint_meta.h in step).
constexpr KeySpec kSchema[] = {
    {"format", Kind::text, 0, 0},
    {"model", Kind::text, 0, 0},
    {"num_classes", Kind::integer, 1, static_cast<double>(data::CompetitionDataset::kMaxClasses)},
    {"resolution", Kind::integer, 1, 16384},
    {"epoch", Kind::integer, 0, 1e6},
    {"iteration", Kind::integer, 0, 1e15},
    {"best_val_acc", Kind::real, -1, 1},
    {"rng_offset", Kind::unsigned_integer, 0, 0},
    {"budget_hold_iters", Kind::integer, 0, 1e15},
    {"budget_cooldown_iters", Kind::integer, 0, 1e15},
    {"budget_fixed", Kind::integer, 0, 1},
    {"budget_elapsed_s", Kind::real, 0, 1e9},
    {"budget_cooldown_knot_iters", Kind::integer, 1, 1e15},
    {"budget_cooldown_knot_progress", Kind::real, 0, 1},
};

const KeySpec& spec_of(const std::string& key, Kind kind) {
  for (const KeySpec& s : kSchema)
    if (key == s.name) {
      EMBER_CHECK(s.kind == kind, "CheckpointMeta: key '", key, "' is read with the wrong type");
      return s;
    }
  throw make_error("CheckpointMeta: key '", key, "' is not in the schema (apps/common/checkpoint_meta.cpp)");
}

}  // namespace

const std::string& CheckpointMeta::raw(const std::string& key) const {
  auto it = meta_.find(key);
  if (it == meta_.end())
    throw make_error("'", path_, "': no '", key,
                     "' in the checkpoint's metadata (is it a checkpoint written by ember-effnet or ember-vit?)");
  return it->second;
}

const std::string& CheckpointMeta::text(const std::string& key) const {
  spec_of(key, Kind::text);
  const std::string& v = raw(key);
  EMBER_CHECK(!v.empty(), "'", path_, "': metadata '", key, "' is empty");
  return v;
}

int64_t CheckpointMeta::integer(const std::string& key) const {
  const KeySpec& s = spec_of(key, Kind::integer);
  const std::string& v = raw(key);
  int64_t x = 0;
  EMBER_CHECK(parse_whole(v, x), "'", path_, "': metadata '", key, "' = '", v, "' is not an integer");
  EMBER_CHECK(static_cast<double>(x) >= s.lo && static_cast<double>(x) <= s.hi, "'", path_, "': metadata '", key,
              "' = ", x, " is out of range [", static_cast<int64_t>(s.lo), ", ", static_cast<int64_t>(s.hi), "]");
  return x;
}

uint64_t CheckpointMeta::unsigned_integer(const std::string& key) const {
  spec_of(key, Kind::unsigned_integer);
  const std::string& v = raw(key);
  uint64_t x = 0;
  EMBER_CHECK(parse_whole(v, x), "'", path_, "': metadata '", key, "' = '", v,
              "' is not an integer in [0, 18446744073709551615]");
  return x;
}

double CheckpointMeta::real(const std::string& key) const {
  const KeySpec& s = spec_of(key, Kind::real);
  const std::string& v = raw(key);
  double x = 0;
  EMBER_CHECK(parse_whole(v, x) && std::isfinite(x), "'", path_, "': metadata '", key, "' = '", v,
              "' is not a finite number");
  EMBER_CHECK(x >= s.lo && x <= s.hi, "'", path_, "': metadata '", key, "' = ", x, " is out of range [", s.lo, ", ",
              s.hi, "]");
  return x;
}

}  // namespace ember::apps
