// CLI11 checks every app shares.
#pragma once
#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

namespace ember::apps {

// Every floating-point flag carries this check first: "nan", "inf" and "1e999" are refused with
// the flag's name (CLI11 prefixes it: "--dropout: 'nan' is not a finite number"), where the range
// checks after it would let NaN through (every comparison with NaN is false) and run as if unset.
inline CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "'" + text + "' is not a number";
        if (!std::isfinite(v)) return "'" + text + "' is not a finite number";
        return {};
      },
      "FINITE");
}

}  // namespace ember::apps
