// The random fills (random_cpu.cpp, random_cuda.cu), chosen by random.cpp.
#pragma once
#include "tensor/ops/random.h"

namespace ember::cpu {
void random_fill(const Tensor& out, const RandomParams& p);  // out fresh (contiguous): element i is element p.first + i of the draw
}
namespace ember::cuda {
void random_fill(const Tensor& out, const RandomParams& p);
}
