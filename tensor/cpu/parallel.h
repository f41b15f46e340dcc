// CPU threading: OpenMP underneath, one knob for the thread count.
#pragma once
#include <cstdint>

namespace ember::cpu {

int num_threads();
void set_num_threads(int n);

// Splits [0, n) into contiguous chunks and calls fn(begin, end) for each, in parallel when
// n >= grain (the smallest chunk worth a thread).
template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn);

}  // namespace ember::cpu

#include <omp.h>

#include <algorithm>

namespace ember::cpu {
template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int threads = num_threads();
  int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  }
}
}  // namespace ember::cpu
