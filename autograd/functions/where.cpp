#include "autograd/functions/where.h"

#include "tensor/profiler.h"

namespace ember {

Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  ProfileScope prof("where", ProfileDirection::forward);
  Shape sa = a.shape(), sb = b.shape();
  return make_result(ember::where(cond, a.data(), b.data()), {a, b}, "where",
                     [cond, sa, sb](const Tensor& g, const std::vector<bool>& need) {
                       // g has the output's shape, which cond broadcasts to.
                       Tensor ga, gb;
                       if (need[0]) ga = sum_to(ember::where(cond, g, 0.0), sa);
                       if (need[1]) gb = sum_to(ember::where(cond, 0.0, g), sb);
                       return std::vector<Tensor>{ga, gb};
                     });
}

}  // namespace ember
