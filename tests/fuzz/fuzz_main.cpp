// One libFuzzer program per target: fuzz_<EMBER_FUZZ_TARGET> (see fuzz_targets.h). With
// EMBER_FUZZ_SEEDS=DIR set it first writes the target's seeds (ember's own writers) into DIR.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_targets.h"

namespace {
const ember::fuzz::FuzzTarget& target() {
  static const ember::fuzz::FuzzTarget& t = ember::fuzz::fuzz_target(EMBER_FUZZ_TARGET);
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("EMBER_FUZZ_SEEDS")) {
    int i = 0;
    for (const auto& seed : target().seeds()) {
      const std::string path = std::string(dir) + "/seed-" + std::to_string(i++);
      if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(seed.data(), 1, seed.size(), f);
        std::fclose(f);
      }
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  target().run(data, size);
  return 0;
}
