// Differentiable view ops: forwards are views with the right values, and every backward
// passes a finite-difference gradient check (f64), on contiguous and non-contiguous inputs.
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

using Fn = std::function<Variable(const std::vector<Variable>&)>;

// gradcheck on a contiguous and on a non-contiguous input of `shape`.
void check_both_layouts(const Shape& shape, const Fn& f, const char* what) {
  for (bool contiguous : {true, false}) {
    Tensor t = random_tensor(shape, DType::f64, -1.0, 1.0, 7);
    Variable x(contiguous ? t : non_contiguous(t), true);
    EXPECT_TRUE(gradcheck(f, {x})) << what << (contiguous ? " (contiguous)" : " (non-contiguous)");
  }
}

}  // namespace

TEST(ViewsGrad, ReshapeViewFlattenSqueezeUnsqueeze) {
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return reshape(in[0], {4, -1}); }, "reshape");
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return flatten(in[0], 1); }, "flatten");
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return flatten(in[0]); }, "flatten all");
  Variable x(random_tensor({2, 3, 4}, DType::f64, -1, 1, 8), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return view(in[0], {6, 4}); }, {x})) << "view";
  check_both_layouts({3, 1, 4}, [](const std::vector<Variable>& in) { return squeeze(in[0]); }, "squeeze");
  check_both_layouts({3, 1, 4}, [](const std::vector<Variable>& in) { return squeeze(in[0], -2); }, "squeeze(dim)");
  check_both_layouts({3, 4}, [](const std::vector<Variable>& in) { return unsqueeze(in[0], 1); }, "unsqueeze");
  check_both_layouts({3, 4}, [](const std::vector<Variable>& in) { return unsqueeze(in[0], -1); }, "unsqueeze(-1)");
}

TEST(ViewsGrad, PermuteTranspose) {
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return permute(in[0], {2, 0, 1}); }, "permute");
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return permute(in[0], {-1, 1, 0}); },
                     "permute negative");
  check_both_layouts({2, 3, 4}, [](const std::vector<Variable>& in) { return transpose(in[0], 0, -1); }, "transpose");
  // The gradient of a permute comes back in the input's layout.
  Variable x(random_tensor({2, 3, 4}, DType::f64, -1, 1, 9), true);
  Variable y = permute(x, {1, 2, 0});
  Tensor g = random_tensor(y.shape(), DType::f64, -1, 1, 10);
  y.backward(g);
  EXPECT_TRUE(all_close(x.grad(), g.permute({2, 0, 1}), 0, 0));
}

TEST(ViewsGrad, NarrowSliceSelect) {
  check_both_layouts({4, 5}, [](const std::vector<Variable>& in) { return narrow(in[0], 1, 1, 3); }, "narrow");
  check_both_layouts({4, 5}, [](const std::vector<Variable>& in) { return narrow(in[0], -2, -3, 2); }, "narrow neg");
  check_both_layouts({4, 7}, [](const std::vector<Variable>& in) { return slice(in[0], 1, 1, 7, 2); }, "slice step 2");
  check_both_layouts({4, 7}, [](const std::vector<Variable>& in) { return slice(in[0], 0, -3, 100); }, "slice clamp");
  check_both_layouts({4, 5}, [](const std::vector<Variable>& in) { return select(in[0], 0, 2); }, "select");
  check_both_layouts({4, 5}, [](const std::vector<Variable>& in) { return select(in[0], -1, -1); }, "select neg");
  // Exact values: ones where the view looked, zeros elsewhere.
  Variable x(random_tensor({3, 4}, DType::f64, -1, 1, 11), true);
  Variable y = slice(x, 1, 0, 4, 3);  // columns 0 and 3
  y.backward(ones(y.shape(), DType::f64));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1}));
}

TEST(ViewsGrad, ExpandSumsOverBroadcastDims) {
  check_both_layouts({3, 1}, [](const std::vector<Variable>& in) { return expand(in[0], {2, 3, 4}); }, "expand");
  check_both_layouts({1, 3}, [](const std::vector<Variable>& in) { return expand(in[0], {5, -1}); }, "expand -1");
  Variable x(random_tensor({3, 1}, DType::f64, -1, 1, 12), true);
  Variable y = expand(x, {2, 3, 4});
  EXPECT_EQ(y.data().storage(), x.data().storage());
  y.backward(ones({2, 3, 4}, DType::f64));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{8, 8, 8}));
}

TEST(ViewsGrad, ContiguousAndTo) {
  check_both_layouts({3, 4}, [](const std::vector<Variable>& in) { return contiguous(in[0]); }, "contiguous");
  check_both_layouts({3, 4}, [](const std::vector<Variable>& in) { return to(in[0], Device::cpu()); }, "to(cpu)");
  check_both_layouts({3, 4}, [](const std::vector<Variable>& in) { return to(in[0], DType::f64); }, "to(f64)");
  // to(dtype): the gradient is converted back to the input's dtype.
  Variable x(random_tensor({5}, DType::f64, -1, 1, 13), true);
  Variable y = to(x, DType::f32);
  EXPECT_EQ(y.dtype(), DType::f32);
  Tensor g = random_tensor({5}, DType::f32, -1, 1, 14);
  y.backward(g);
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_TRUE(all_close(x.grad(), g, 0, 0));
}

TEST(ViewsGrad, ChainsOfViews) {
  // A ViT-style reshuffle: (B, T, 3·H·d) -> qkv split -> (3, B, H, T, d) and back.
  check_both_layouts({2, 3, 12}, [](const std::vector<Variable>& in) {
    Variable y = reshape(in[0], {2, 3, 3, 2, 2});  // (B, T, 3, H, d)
    y = permute(y, {2, 0, 3, 1, 4});              // (3, B, H, T, d)
    Variable k = select(y, 0, 1);                  // (B, H, T, d)
    return flatten(transpose(k, 1, 2), 2);         // (B, T, H·d)
  }, "vit qkv");
  // The same input used by two views: the gradients add.
  Variable x(random_tensor({4, 4}, DType::f64, -1, 1, 15), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) {
    return add(narrow(in[0], 0, 0, 2), transpose(narrow(in[0], 1, 2, 2), 0, 1));
  }, {x}));
}

TEST(ViewsGrad, ForwardsAreViewsAndErrorsPassThrough) {
  Variable x(random_tensor({2, 3, 4}, DType::f64, -1, 1, 16), true);
  EXPECT_EQ(reshape(x, {6, 4}).data().storage(), x.data().storage());
  EXPECT_EQ(permute(x, {2, 1, 0}).data().storage(), x.data().storage());
  EXPECT_EQ(select(x, 1, 0).data().storage(), x.data().storage());
  EXPECT_TRUE(all_close(narrow(x, 2, 1, 2).data(), x.data().narrow(2, 1, 2), 0, 0));
  EXPECT_THROW(view(permute(x, {2, 1, 0}), {24}), Error);
  EXPECT_THROW(permute(x, {0, 0, 1}), Error);
  EXPECT_THROW(narrow(x, 0, 1, 5), Error);
  // Nothing is recorded when no input requires grad.
  Variable c(random_tensor({2, 3}, DType::f64, -1, 1, 17));
  EXPECT_FALSE(transpose(c, 0, 1).requires_grad());
}

TEST(Cuda, ViewGradsAndDeviceTransfer) {
  EMBER_REQUIRE_CUDA();
  Variable x(random_tensor({3, 4}, DType::f64, -1, 1, 18), true);
  Variable y = to(x, Device::cuda(0));
  EXPECT_TRUE(y.device().is_cuda());
  Tensor g = random_tensor({3, 4}, DType::f64, -1, 1, 19, Device::cuda(0));
  y.backward(g);
  EXPECT_TRUE(x.grad().device().is_cpu());
  EXPECT_TRUE(all_close(x.grad(), g.cpu(), 0, 0));
  Variable d(random_tensor({3, 4}, DType::f64, -1, 1, 20, Device::cuda(0)), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) {
    return expand(unsqueeze(slice(permute(in[0], {1, 0}), 0, 1, 4, 2), 0), {2, -1, -1});
  }, {d}));
}
TEST(ViewsGrad, IntermediatesHeldOnlyByTheGraphSurviveBackward) {
  // transpose's result is owned only by flatten's Node; the engine must keep it alive after
  // flatten's Node has run and released its inputs.
  Variable x(random_tensor({2, 2, 3, 2}, DType::f64, -1, 1, 21), true);
  Variable y = flatten(transpose(x, 1, 2), 2);
  Tensor g = random_tensor(y.shape(), DType::f64, -1, 1, 22);
  y.backward(g);
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(all_close(x.grad(), g.reshape({2, 3, 2, 2}).transpose(1, 2), 0, 0));
}
