#include "autograd/functions/dropout.h"

#include "tensor/profiler.h"

namespace ember {

namespace {

Variable masked(const Variable& x, const DropoutResult& r, const char* name) {
  if (!r.mask.defined()) return x;
  Tensor mask = r.mask;
  return make_result(r.out, {x}, name, [mask](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? dropout_backward(g, mask) : Tensor()};
  });
}

}  // namespace

Variable dropout(const Variable& x, double p, bool training, Generator* gen) {
  ProfileScope prof("dropout", ProfileDirection::forward);
  return masked(x, ember::dropout(x.data(), p, training, gen), "dropout");
}

Variable drop_path(const Variable& x, double p, bool training, Generator* gen) {
  ProfileScope prof("drop_path", ProfileDirection::forward);
  return masked(x, ember::drop_path(x.data(), p, training, gen), "drop_path");
}

}  // namespace ember
