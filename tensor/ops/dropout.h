// Dropout and drop path (stochastic depth), with the mask returned for the backward.
//
// dropout(x, p):   keep_i ~ Bernoulli(1 - p) independently per element,
//                  mask_i = keep_i / (1 - p),   y = x · mask      (so E[y] = x)
// drop_path(x, p): one keep_n ~ Bernoulli(1 - p) per sample n (dim 0), mask (N, 1, ..., 1)
//                  = keep_n / (1 - p), y = x · mask broadcast — a whole residual branch is
//                  dropped for that sample.
// Backward for both: dx = g · mask (broadcast for drop_path).
// p = 1 drops everything (mask all zeros). Not training, or p = 0: y = x itself, mask undefined.
//
// The mask comes from ember::bernoulli (Philox), so a given seed gives the same mask on the
// CPU and on CUDA. Written with tensor ops only, so it runs on every device.
//
// Keyed by the global sample (data parallelism). Each call takes one draw from the generator, and
// element i of the mask is element i of that draw. Under a GlobalSampleScope(first, count) — the
// samples of this forward pass are rows [first, first + count) of a global batch, as a rank's
// share is — the mask is instead elements [first·S, (first + count)·S) of the draw, S = numel /
// count the elements per sample (samples outermost: (count, ...) or (count·T, ...)). Sample s of
// the global batch then gets the same mask on whichever rank computes it: exactly the rows one
// process at the whole batch would draw, as long as every rank makes the same calls (they do: the
// same model, the same steps).
#pragma once
#include <cstdint>

#include "tensor/ops/random.h"
#include "tensor/tensor.h"

namespace ember {

struct DropoutResult {
  Tensor out;   // x's shape
  Tensor mask;  // dropout: x's shape; drop_path: (N, 1, ..., 1); undefined when nothing is dropped
};

DropoutResult dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
DropoutResult drop_path(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// The global-batch rows of this thread's forward passes while it lives (see above); scopes nest,
// the innermost counts. count must be positive and first non-negative.
class GlobalSampleScope {
 public:
  GlobalSampleScope(int64_t first, int64_t count);
  ~GlobalSampleScope();
  GlobalSampleScope(const GlobalSampleScope&) = delete;
  GlobalSampleScope& operator=(const GlobalSampleScope&) = delete;

 private:
  int64_t prev_first_, prev_count_;
};

// dx = grad · mask (mask broadcast to grad's shape); grad itself when mask is undefined.
Tensor dropout_backward(const Tensor& grad, const Tensor& mask);

}  // namespace ember
