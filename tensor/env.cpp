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

int parse_env_choice(const std::string& name, const char* value, const std::vector<std::string>& choices,
                     int default_index) {
  if (value == nullptr || *value == '\0') return default_index;
  const std::string v(value);
  std::string listed;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (v == choices[i]) return static_cast<int>(i);
    listed += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
  }
  throw make_error(name, "='", v, "' is not one of the choices (expected ", listed, ")");
}

int env_choice(const char* name, const std::vector<std::string>& choices, int default_index) {
  return parse_env_choice(name, std::getenv(name), choices, default_index);
}

}  // namespace ember
