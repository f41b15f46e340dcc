// Builds against an installed ember and checks one forward/backward.
#include <cstdio>

#include "ember/ember.h"

int main() {
  ember::Variable x(ember::from_vector<float>({1, 2, 3}, {3}), true);
  ember::Variable y = ember::mul(x, x);
  ember::Variable s = ember::add(y, y);
  s.backward(ember::ones({3}));
  auto g = s.shape().size() == 1 ? x.grad().to_vector<float>() : std::vector<float>{};
  bool ok = g.size() == 3 && g[0] == 4 && g[1] == 8 && g[2] == 12;  // d(2x²)/dx = 4x
  std::printf("consumer: %s\n", ok ? "ok" : "wrong gradient");
  return ok ? 0 : 1;
}
