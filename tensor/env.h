// On/off switches read from the environment (EMBER_CUDA_SYNC, EMBER_EXPECT_CUDA, ...), parsed
// one way everywhere: unset, "" and "0" are off, "1" is on, anything else is an error that names
// the variable, so a typo ("EMBER_EXPECT_CUDA=yes") cannot silently mean off.
//
// Choices (EMBER_MATMUL=auto|native|cublas, EMBER_CONV=auto|native|cudnn) are parsed one way
// too: unset and "" give the default, one of the listed words gives its index, anything else is
// an error that names the variable and lists the words.
#pragma once
#include <string>
#include <vector>

namespace ember {

// The value of a switch as written: nullptr (unset) or the text after '='.
bool parse_env_flag(const std::string& name, const char* value);

// parse_env_flag(name, getenv(name)).
bool env_flag(const char* name);

// The index in `choices` of the value as written (nullptr: unset), or `default_index`.
int parse_env_choice(const std::string& name, const char* value, const std::vector<std::string>& choices,
                     int default_index);

// parse_env_choice(name, getenv(name), ...).
int env_choice(const char* name, const std::vector<std::string>& choices, int default_index);

}  // namespace ember
