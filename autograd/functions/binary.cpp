#include "autograd/functions/binary.h"

#include "tensor/ops/reduce.h"
#include "tensor/ops/unary.h"
#include "tensor/profiler.h"

namespace ember {

namespace {
Tensor scalar_like(double v, const Tensor& t) { return scalar_tensor(v, t.dtype(), t.device()); }
}  // namespace

Variable add(const Variable& a, const Variable& b) {
  ProfileScope prof("add", ProfileDirection::forward);
  Shape sa = a.shape(), sb = b.shape();
  return make_result(ember::add(a.data(), b.data()), {a, b}, "add", [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(g, sb) : Tensor()};
  });
}

Variable sub(const Variable& a, const Variable& b) {
  ProfileScope prof("sub", ProfileDirection::forward);
  Shape sa = a.shape(), sb = b.shape();
  return make_result(ember::sub(a.data(), b.data()), {a, b}, "sub", [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(neg(g), sb) : Tensor()};
  });
}

Variable mul(const Variable& a, const Variable& b) {
  ProfileScope prof("mul", ProfileDirection::forward);
  Tensor ta = a.data(), tb = b.data();
  return make_result(ember::mul(ta, tb), {a, b}, "mul", [ta, tb](const Tensor& g, const std::vector<bool>& need) {
    // A broadcast operand's gradient is Σ g·(other) over the broadcast dims: mul_sum_to does
    // that without storing the full product where it can.
    auto grad_of = [&](const Tensor& other, const Shape& shape) {
      return other.shape() == g.shape() ? mul_sum_to(g, other, shape) : sum_to(ember::mul(g, other), shape);
    };
    return std::vector<Tensor>{need[0] ? grad_of(tb, ta.shape()) : Tensor(), need[1] ? grad_of(ta, tb.shape()) : Tensor()};
  });
}

Variable div(const Variable& a, const Variable& b) {
  ProfileScope prof("div", ProfileDirection::forward);
  Tensor ta = a.data(), tb = b.data();
  Tensor out = ember::div(ta, tb);
  return make_result(out, {a, b}, "div", [ta, tb, out](const Tensor& g, const std::vector<bool>& need) {
    Tensor gb;
    if (need[1]) gb = sum_to(neg(ember::div(ember::mul(g, out), tb)), tb.shape());  // -g·a/b² = -g·out/b
    return std::vector<Tensor>{need[0] ? sum_to(ember::div(g, tb), ta.shape()) : Tensor(), gb};
  });
}

Variable pow(const Variable& a, const Variable& b) {
  ProfileScope prof("pow", ProfileDirection::forward);
  Tensor ta = a.data(), tb = b.data();
  Tensor out = ember::pow(ta, tb);
  return make_result(out, {a, b}, "pow", [ta, tb, out](const Tensor& g, const std::vector<bool>& need) {
    Tensor ga, gb;
    if (need[0]) ga = sum_to(ember::mul(g, ember::mul(tb, ember::pow(ta, ember::sub(tb, 1.0)))), ta.shape());
    if (need[1]) gb = sum_to(ember::mul(g, ember::mul(out, log(ta))), tb.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

static Variable min_max(const Variable& a, const Variable& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  ProfileScope prof(name, ProfileDirection::forward);
  Tensor ta = a.data(), tb = b.data();
  Tensor out = is_max ? ember::maximum(ta, tb) : ember::minimum(ta, tb);
  return make_result(out, {a, b}, name, [ta, tb, is_max](const Tensor& g, const std::vector<bool>& need) {
    Tensor pick_a = (is_max ? ge(ta, tb) : le(ta, tb)).to(g.dtype());  // ties go to a
    Tensor ga, gb;
    if (need[0]) ga = sum_to(ember::mul(g, pick_a), ta.shape());
    if (need[1]) gb = sum_to(ember::mul(g, ember::sub(ones_like(pick_a), pick_a)), tb.shape());
    return std::vector<Tensor>{ga, gb};
  });
}
Variable maximum(const Variable& a, const Variable& b) { return min_max(a, b, true); }
Variable minimum(const Variable& a, const Variable& b) { return min_max(a, b, false); }

Variable add(const Variable& a, double b) { return add(a, Variable(scalar_like(b, a.data()))); }
Variable sub(const Variable& a, double b) { return sub(a, Variable(scalar_like(b, a.data()))); }
Variable mul(const Variable& a, double b) { return mul(a, Variable(scalar_like(b, a.data()))); }
Variable div(const Variable& a, double b) { return div(a, Variable(scalar_like(b, a.data()))); }
Variable pow(const Variable& a, double b) { return pow(a, Variable(scalar_like(b, a.data()))); }
Variable rsub(double a, const Variable& b) { return sub(Variable(scalar_like(a, b.data())), b); }

}  // namespace ember
