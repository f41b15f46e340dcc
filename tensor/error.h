// ember::Error: the one exception type for misuse of the API and for backend failures.
// Messages name the op, what it received and what it expected, e.g.
//   "add: shapes [2, 3] and [4, 3] cannot be broadcast (dim 0: 2 vs 4)".
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: throw make_error("conv2d: ", x.shape_str(), ...).
template <class... Args>
Error make_error(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return Error(os.str());
}

}  // namespace ember

// EMBER_CHECK(cond, pieces...): throws ember::Error built from pieces when cond is false.
#define EMBER_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) throw ::ember::make_error(__VA_ARGS__);         \
  } while (0)
