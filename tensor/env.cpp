#include "tensor/env.h"

#include <cstdlib>

#include "tensor/error.h"

namespace ember {

bool parse_env_flag(const std::string& name, const char* value) {
  if (value == nullptr) return false;
  const std::string v(value);
  if (v.empty() || v == "0") return false;
  if (v == "1") return true;
  throw make_error(name, "='", v, "' is not a switch (expected 1 for on, 0 or unset for off)");
}

bool env_flag(const char* name) { return parse_env_flag(name, std::getenv(name)); }

}  // namespace ember
