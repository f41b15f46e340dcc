#include "tensor/cpu/parallel.h"

#include <Eigen/Core>
#include <cstdlib>

namespace ember::cpu {

static int& thread_setting() {
  static int n = [] {
    // Eigen runs single-threaded everywhere: ember splits work across threads itself (see
    // matmul_cpu.cpp for why Eigen's own GEMM threading is avoided).
    Eigen::setNbThreads(1);
    if (const char* env = std::getenv("EMBER_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) return v;
    }
    return omp_get_max_threads();
  }();
  return n;
}

int num_threads() { return thread_setting(); }

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_setting() = n;
  omp_set_num_threads(n);
}

}  // namespace ember::cpu
