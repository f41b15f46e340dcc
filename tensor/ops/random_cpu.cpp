#include <cmath>

#include "tensor/convert.h"
#include "tensor/cpu/parallel.h"
#include "tensor/philox.h"
#include "tensor/ops/random_kernels.h"

namespace ember {

namespace cpu {

// out is freshly allocated, hence contiguous: element i is element first + i of the draw.
void random_fill(const Tensor& out, const RandomParams& p) {
  dispatch_numeric(out.dtype(), "random", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.data_ptr());
    parallel_for(out.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        double v;
        switch (p.kind) {
          case RandomKind::uniform: v = p.a + (p.b - p.a) * philox_uniform(p.seed, p.offset, p.first + i); break;
          case RandomKind::normal: v = p.a + p.b * philox_normal(p.seed, p.offset, p.first + i); break;
          case RandomKind::bernoulli: v = philox_uniform(p.seed, p.offset, p.first + i) < p.a ? 1.0 : 0.0; break;
          default:
            v = p.a + std::floor(philox_uniform(p.seed, p.offset, p.first + i) * (p.b - p.a));
            if (v >= p.b) v = p.b - 1;
        }
        o[i] = convert<T>(v);
      }
    });
  });
}

}  // namespace cpu
}  // namespace ember
