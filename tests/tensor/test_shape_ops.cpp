// cat, stack, split, chunk and pad: values against plain-loop references (negative dims,
// non-contiguous inputs), views sharing storage, gradients by finite differences, error
// messages, and CUDA against the CPU.
#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {


// Row-major multi-index helpers for references on 3-D tensors.
int64_t at3(const Shape& s, int64_t i, int64_t j, int64_t k) { return (i * s[1] + j) * s[2] + k; }

}  // namespace

TEST(ShapeOps, CatAlongEachDimMatchesReference) {
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    int64_t d = dim < 0 ? dim + 3 : dim;
    std::vector<Tensor> parts;
    std::vector<Shape> shapes;
    for (int64_t len : {2, 1, 3}) {
      Shape s{2, 3, 4};
      s[d] = len;
      shapes.push_back(s);
      Tensor t = random_tensor(s, DType::f64, -1.0, 1.0, 10 + len);
      parts.push_back(len == 3 ? non_contiguous(t) : t);
    }
    Tensor out = cat(parts, dim);
    Shape os{2, 3, 4};
    os[d] = 6;
    ASSERT_EQ(out.shape(), os);
    // reference: walk the output, find which part and where
    std::vector<double> expected(shape_numel(os));
    std::vector<std::vector<double>> pv;
    for (auto& p : parts) pv.push_back(values(p));
    for (int64_t i = 0; i < os[0]; ++i)
      for (int64_t j = 0; j < os[1]; ++j)
        for (int64_t k = 0; k < os[2]; ++k) {
          int64_t idx[3] = {i, j, k}, part = 0;
          while (idx[d] >= shapes[part][d]) idx[d] -= shapes[part++][d];
          expected[at3(os, i, j, k)] = pv[part][at3(shapes[part], idx[0], idx[1], idx[2])];
        }
    EXPECT_TRUE(all_close(out, expected, 0, 0)) << "dim " << dim;
  }
  // integer dtypes copy too
  Tensor a = arange(4).reshape({2, 2}), b = arange(2).reshape({2, 1});
  EXPECT_EQ(values(cat({a, b}, 1)), (std::vector<double>{0, 1, 0, 2, 3, 1}));
}

TEST(ShapeOps, StackAddsADim) {
  Tensor a = random_tensor({2, 3}, DType::f64, -1, 1, 21), b = random_tensor({2, 3}, DType::f64, -1, 1, 22);
  auto av = values(a), bv = values(b);
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor s = stack({a, non_contiguous(b)}, dim);
    int64_t d = dim < 0 ? dim + 3 : dim;
    Shape expect_shape{2, 3};
    expect_shape.insert(expect_shape.begin() + d, 2);
    ASSERT_EQ(s.shape(), expect_shape);
    auto sv = values(s);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t which = 0; which < 2; ++which) {
          int64_t idx[3];
          int64_t rest[2] = {i, j};
          for (int64_t k = 0, r = 0; k < 3; ++k) idx[k] = k == d ? which : rest[r++];
          EXPECT_EQ(sv[at3(expect_shape, idx[0], idx[1], idx[2])], (which ? bv : av)[i * 3 + j]);
        }
  }
}

TEST(ShapeOps, SplitAndChunkAreViews) {
  Tensor x = arange(0.0, 30.0, 1.0, DType::f64).reshape({3, 10});
  auto pieces = split(x, 4, -1);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].shape(), (Shape{3, 4}));
  EXPECT_EQ(pieces[2].shape(), (Shape{3, 2}));
  EXPECT_EQ(pieces[1].storage(), x.storage());
  EXPECT_EQ(values(pieces[2]), (std::vector<double>{8, 9, 18, 19, 28, 29}));
  auto sized = split(x, std::vector<int64_t>{1, 2}, 0);
  ASSERT_EQ(sized.size(), 2u);
  EXPECT_EQ(values(sized[0]), values(x.narrow(0, 0, 1)));
  EXPECT_EQ(values(sized[1]), values(x.narrow(0, 1, 2)));
  auto ch = chunk(x, 3, 1);  // 10 in 3 chunks: 4, 4, 2
  ASSERT_EQ(ch.size(), 3u);
  EXPECT_EQ(ch[2].shape(), (Shape{3, 2}));
  EXPECT_EQ(chunk(x, 4, 0).size(), 3u);  // 3 rows in at most 4 chunks: 3 of one row
  // Splitting a non-contiguous tensor: still views, right values
  Tensor nc = non_contiguous(random_tensor({4, 6}, DType::f64, -1, 1, 31));
  auto np = split(nc, 3, 1);
  EXPECT_EQ(values(np[1]), values(nc.contiguous().narrow(1, 3, 3)));
  // cat undoes split
  EXPECT_TRUE(all_close(cat(pieces, 1), x, 0, 0));
}

TEST(ShapeOps, PadMatchesReferenceIncludingCrops) {
  Tensor x = random_tensor({2, 3, 4}, DType::f64, -1, 1, 41);
  auto xv = values(x);
  // Last dim (1, 2), middle dim (2, -1): crop the last row, add two in front.
  std::vector<int64_t> pads{1, 2, 2, -1};
  for (bool contiguous : {true, false}) {
    Tensor y = pad(contiguous ? x : non_contiguous(x), pads, 7.5);
    Shape ys{2, 4, 7};
    ASSERT_EQ(y.shape(), ys);
    auto yv = values(y);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 4; ++j)
        for (int64_t k = 0; k < 7; ++k) {
          int64_t sj = j - 2, sk = k - 1;  // source index
          bool inside = sj >= 0 && sj < 2 && sk >= 0 && sk < 4;
          double want = inside ? xv[at3({2, 3, 4}, i, sj, sk)] : 7.5;
          EXPECT_EQ(yv[at3(ys, i, j, k)], want);
        }
  }
  // Cropping on both sides of one dim; pads for every dim.
  Tensor c = pad(x, {-1, -2, 0, 0, 1, 0});
  EXPECT_EQ(c.shape(), (Shape{3, 3, 1}));
  auto cv = values(c);
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(cv[at3({3, 3, 1}, 0, j, 0)], 0.0);
    EXPECT_EQ(cv[at3({3, 3, 1}, 1, j, 0)], xv[at3({2, 3, 4}, 0, j, 1)]);
  }
  // Everything cropped away but padded back: only the fill value.
  EXPECT_EQ(values(pad(x, {-4, 2})), std::vector<double>(12, 0.0));
}

TEST(ShapeOps, Gradients) {
  // gradcheck reads .grad after one backward, so every check gets fresh leaves.
  auto leaf = [](const Shape& s, uint64_t seed, bool contiguous = true) {
    Tensor t = random_tensor(s, DType::f64, -1, 1, seed);
    return Variable(contiguous ? t : non_contiguous(t), true);
  };
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return cat(in, -1); },
                        {leaf({2, 3}, 51), leaf({2, 1}, 52), leaf({2, 2}, 53, false)}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return cat(in, 0); },
                        {leaf({1, 3}, 54), leaf({2, 3}, 55, false)}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return stack(in, 1); }, {leaf({2, 3}, 56), leaf({2, 3}, 57)}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return stack(in, -1); },
                        {leaf({2, 3}, 58, false), leaf({2, 3}, 59)}));
  // split / chunk / pad: recombine the pieces in another order so every piece's gradient matters.
  auto x = [&] { return leaf({3, 5}, 60, false); };
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) {
    auto p = split(in[0], 2, 1);
    return cat({p[2], p[0], p[1]}, 1);
  }, {x()}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) {
    auto p = split(in[0], std::vector<int64_t>{1, 2}, 0);
    return cat({p[1], p[0]}, 0);
  }, {x()}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return chunk(in[0], 2, 1)[1]; }, {x()}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return pad(in[0], {1, 2, -1, 1}, 3.0); }, {x()}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return pad(in[0], {-2, 0}); }, {x()}));
  // Only the inputs that need a gradient get one.
  Variable a = leaf({2, 3}, 61), frozen(random_tensor({2, 3}, DType::f64, -1, 1, 62));
  Variable y = cat({a, frozen}, 0);
  y.backward(ones({4, 3}, DType::f64));
  EXPECT_FALSE(frozen.grad().defined());
  EXPECT_TRUE(all_close(a.grad(), ones({2, 3}, DType::f64), 0, 0));
}

TEST(ShapeOps, ErrorsNameTheTensorAndDim) {
  Tensor a = zeros({2, 3}), b = zeros({2, 4}), c = zeros({3, 4});
  EXPECT_NE(error_of([&] { cat({a, b, c}, 0); })
                .find("cat: tensor 1 has shape [2, 4] but tensor 0 has [2, 3]; they must match in every dim but 0 "
                      "(dim 1: 4 vs 3)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cat({a, b, c}, 1); }).find("cat: tensor 2 has shape [3, 4]"), std::string::npos);
  EXPECT_NE(error_of([&] { cat({a, zeros({2, 3, 1})}, 0); }).find("cat: tensor 1 has 3 dims"), std::string::npos);
  EXPECT_NE(error_of([&] { cat(std::vector<Tensor>{}, 0); }).find("cat: expected at least one tensor"), std::string::npos);
  EXPECT_NE(error_of([&] { cat({a, a.to(DType::f64)}, 0); }).find("cat: tensor 1 has dtype f64 but tensor 0 has f32"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cat({a, a}, 2); }).find("cat: dim 2 out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { stack({a, b}, 0); }).find("stack: tensor 1 has shape [2, 4] but tensor 0 has [2, 3]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { split(a, std::vector<int64_t>{1, 1}, 1); })
                .find("split: sizes [1, 1] sum to 2 but dim 1 of x [2, 3] has size 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { split(a, 0, 1); }).find("split: split size must be positive"), std::string::npos);
  EXPECT_NE(error_of([&] { chunk(a, 0, 1); }).find("chunk: number of chunks must be positive"), std::string::npos);
  EXPECT_NE(error_of([&] { pad(a, {1}); }).find("pad: pads [1] must come in (left, right) pairs"), std::string::npos);
  EXPECT_NE(error_of([&] { pad(a, {1, 1, 1, 1, 1, 1}); }).find("pad: 3 (left, right) pairs for a tensor of 2 dims"),
            std::string::npos);
  EXPECT_NE(error_of([&] { pad(a, {-2, -2}); }).find("pad: dim 1 of size 3 with pads (-2, -2) would have negative size -1"),
            std::string::npos);
}

TEST(Cuda, ShapeOpsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Device dev = Device::cuda(0);
  Tensor a = random_tensor({3, 4, 5}, DType::f32, -1, 1, 61), b = random_tensor({3, 2, 5}, DType::f32, -1, 1, 62);
  EXPECT_TRUE(all_close(cat({a.to(dev), non_contiguous(b.to(dev))}, 1).cpu(), cat({a, b}, 1), 0, 0));
  EXPECT_TRUE(all_close(stack({a.to(dev), a.to(dev)}, -1).cpu(), stack({a, a}, -1), 0, 0));
  EXPECT_TRUE(all_close(pad(a.to(dev), {2, -1, 1, 1}, -3.0).cpu(), pad(a, {2, -1, 1, 1}, -3.0), 0, 0));
  auto pc = split(a, 2, 1);
  auto pd = split(a.to(dev), 2, 1);
  ASSERT_EQ(pc.size(), pd.size());
  for (size_t i = 0; i < pc.size(); ++i) EXPECT_TRUE(all_close(pd[i].cpu(), pc[i], 0, 0));
  Variable v(random_tensor({2, 3}, DType::f64, -1, 1, 63, dev), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return pad(cat({in[0], in[0]}, 0), {1, 1}); }, {v}));
}
