// An opt-in profiler: per op and direction (forward/backward), the number of calls, total
// milliseconds, and GFLOP/s or GB/s where the op reports its work.
//
//   { ember::Profiler prof; ...train a few steps...; std::cout << prof.table(); }
// or set EMBER_PROFILE=1 to print the table when the program exits.
//
// Autograd opens a ProfileScope around each differentiable op's forward and each Node's
// backward; kernels add their FLOPs and bytes to the innermost open scope with
// profile_count(). When profiling is off a scope costs one branch. On CUDA the scope
// synchronizes the device at both ends so the time is the kernels' time.
#pragma once
#include <cstdint>
#include <string>

namespace ember {

enum class ProfileDirection { forward, backward };

bool profiling_enabled();

class ProfileScope {
 public:
  ProfileScope(const std::string& op, ProfileDirection dir);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  bool active_ = false;   // timing and counting (profiling on)
  bool tracked_ = false;  // only naming the current op (cuda::launch_sync() on, profiling off)
  std::string op_;
  ProfileDirection dir_;
  double start_ms_ = 0;
  ProfileScope* parent_ = nullptr;
  double flops_ = 0, bytes_ = 0;
  friend void profile_count(double flops, double bytes);
  friend std::string current_profile_op();
};

// Adds work to the innermost open scope (no-op when none is open).
void profile_count(double flops, double bytes);

// The innermost open scope of this thread as "conv2d, forward", or "" when none is open. Scopes
// are kept while profiling is on and, for the messages of EMBER_CUDA_SYNC=1, while
// cuda::launch_sync() is on; otherwise this is "".
std::string current_profile_op();

// Turns profiling on for its lifetime and collects a fresh table.
class Profiler {
 public:
  Profiler();
  ~Profiler();
  std::string table() const;  // columns: op, direction, calls, total ms, ms/call, GFLOP/s, GB/s
  void reset();
};

}  // namespace ember
