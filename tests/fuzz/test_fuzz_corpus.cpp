// Every fuzz target (tests/fuzz/fuzz_targets.h) on its seeds and on every input kept in
// tests/fuzz/corpus/<target>/ (inputs that once crashed a parser, or the hostile inputs of
// issue 11): each must parse or throw ember::Error, here in the ordinary build and, under the
// sanitizers, without a report.
#include <filesystem>

#include "data/image_io.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;

TEST(FuzzCorpus, EveryTargetTakesItsSeedsAndEveryKeptInput) {
  const fs::path corpus = fs::path(EMBER_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
  int kept = 0;
  for (const ember::fuzz::FuzzTarget& t : ember::fuzz::fuzz_targets()) {
    SCOPED_TRACE(t.name);
    auto seeds = t.seeds();
    EXPECT_FALSE(seeds.empty());
    for (const auto& s : seeds) EXPECT_NO_THROW(t.run(s.data(), s.size()));
    if (!fs::is_directory(corpus / t.name)) continue;
    for (const auto& e : fs::directory_iterator(corpus / t.name)) {
      std::vector<uint8_t> bytes = ember::data::read_file_bytes(e.path().string());
      EXPECT_NO_THROW(t.run(bytes.data(), bytes.size())) << e.path();
      ++kept;
    }
  }
  EXPECT_GT(kept, 0) << "no kept inputs under " << corpus;
}
