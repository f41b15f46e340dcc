#include "autograd/functions/cross_entropy.h"

#include "tensor/profiler.h"

namespace ember {

Variable cross_entropy(const Variable& logits, const Tensor& target, double label_smoothing, Reduction reduction) {
  ProfileScope prof("cross_entropy", ProfileDirection::forward);
  Tensor x = logits.data();
  CrossEntropyForward fw = cross_entropy_forward(x, target, label_smoothing, reduction);
  Tensor lse = fw.lse;  // (N,): all the backward keeps besides x and the target
  return make_result(fw.loss, {logits}, "cross_entropy",
                     [x, target, lse, label_smoothing, reduction](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? cross_entropy_backward(g, x, target, lse, label_smoothing, reduction) : Tensor()};
                     });
}

}  // namespace ember
