// The fuzz targets: each hands arbitrary bytes to one of ember's parsers. Every input must parse
// or throw ember::Error; a crash, a sanitizer report, a hang or any other exception is a bug.
// The libFuzzer programs fuzz_<name> (-DEMBER_FUZZ=ON, clang; scripts/fuzz runs them all) and
// test_fuzz_corpus (every ctest run: the found inputs in tests/fuzz/corpus/<name>/ and the seeds)
// both go through this table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ember::fuzz {

struct FuzzTarget {
  const char* name;
  void (*run)(const uint8_t* data, size_t size);
  std::vector<std::vector<uint8_t>> (*seeds)();  // valid inputs made by ember's own writers
};

const std::vector<FuzzTarget>& fuzz_targets();
const FuzzTarget& fuzz_target(const std::string& name);  // throws ember::Error for an unknown name

}  // namespace ember::fuzz
