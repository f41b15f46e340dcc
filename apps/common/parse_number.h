// Strict number parsing for the files the apps read (prediction CSVs, checkpoint metadata).
#pragma once
#include <charconv>
#include <string>

namespace ember::apps {

// Parses all of `text` as a T with std::from_chars: no leading spaces, '+', "0x" or trailing
// junk ("0x1", "7abc" and "0.5abc" are refused, where std::stoll and std::stod take a prefix).
// Floating types accept "nan" and "inf": check std::isfinite where they are not wanted.
template <class T>
bool parse_whole(const std::string& text, T& value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end && !text.empty();
}

}  // namespace ember::apps
