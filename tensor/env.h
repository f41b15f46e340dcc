// On/off switches read from the environment (EMBER_CUDA_SYNC, EMBER_EXPECT_CUDA, ...), parsed
// one way everywhere: unset, "" and "0" are off, "1" is on, anything else is an error that names
// the variable, so a typo ("EMBER_EXPECT_CUDA=yes") cannot silently mean off.
#pragma once
#include <string>

namespace ember {

// The value of a switch as written: nullptr (unset) or the text after '='.
bool parse_env_flag(const std::string& name, const char* value);

// parse_env_flag(name, getenv(name)).
bool env_flag(const char* name);

}  // namespace ember
