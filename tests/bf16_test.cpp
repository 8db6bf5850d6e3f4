// bfloat16 products (src/bf16.hpp, --dtype bfloat16): the rounding by hand, every layout of the
// product against a double-precision sum of the rounded inputs, a layer's three products against
// float32 products of the rounded inputs, and training to float32's accuracy.
#include "../src/bf16.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "chainrule/dense.hpp"
#include "chainrule/error.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/network.hpp"
#include "chainrule/table.hpp"

namespace chainrule {
namespace {

using detail::round_to_bf16;
using detail::Strided;

#define SKIP_WITHOUT_BF16() \
  if (!bf16_products_available()) GTEST_SKIP() << "this CPU has no AVX512_BF16"

// bfloat16 keeps 8 significant bits: around 1 the spacing is 2^-7. 1 + 2^-8 lies halfway
// between 1 and 1 + 2^-7 and goes to the even one, 1; 1 + 3·2^-8 lies halfway between
// 1 + 2^-7 (odd) and 1 + 2^-6 (even) and goes up.
TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(round_to_bf16(1.0F + 0x1p-8F), 1.0F);
  EXPECT_EQ(round_to_bf16(1.0F + 3 * 0x1p-8F), 1.0F + 0x1p-6F);
  EXPECT_EQ(round_to_bf16(1.0F + 0x1p-8F + 0x1p-20F), 1.0F + 0x1p-7F);  // past halfway: up
  EXPECT_EQ(round_to_bf16(-2.5F), -2.5F);                               // exact
  EXPECT_EQ(round_to_bf16(0.1F), 0.10009765625F);                       // 0.1 to 8 significant bits
  EXPECT_TRUE(std::isnan(round_to_bf16(std::nanf(""))));
  EXPECT_EQ(round_to_bf16(INFINITY), INFINITY);
}

// Every combination of A, B and C row- or column-major, sizes at and around the kernel's
// blocks (6 rows, 64 columns, pairs of k, 192-row blocks), K odd and even, = and +=: each
// element within float32 rounding of the double sum of the bf16-rounded products.
TEST(Bf16, EveryLayoutMatchesADoubleSumOfTheRoundedInputs) {
  SKIP_WITHOUT_BF16();
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  for (const Index M : {1, 6, 13, 200})
    for (const Index N : {1, 64, 70})
      for (const Index K : {1, 2, 33, 130})
        for (int layout = 0; layout < 8; ++layout)
          for (const bool accumulate : {false, true}) {
            const bool a_cols = layout & 1, b_cols = layout & 2, c_cols = layout & 4;
            std::vector<float> a(std::size_t(M * K)), b(std::size_t(K * N)), c(std::size_t(M * N));
            for (float& x : a)
              x = normal(gen);
            for (float& x : b)
              x = normal(gen);
            for (float& x : c)
              x = normal(gen);
            const std::vector<float> c0 = c;
            const Strided A{a.data(), a_cols ? 1 : K, a_cols ? M : 1};
            const Strided B{b.data(), b_cols ? 1 : N, b_cols ? K : 1};
            const Index crs = c_cols ? 1 : N, ccs = c_cols ? M : 1;
            detail::gemm_bf16(M, N, K, A, B, c.data(), crs, ccs, accumulate);
            for (Index i = 0; i < M; ++i)
              for (Index j = 0; j < N; ++j) {
                const std::size_t at = std::size_t(i * crs + j * ccs);
                double want = accumulate ? c0[at] : 0, size = std::fabs(want);
                for (Index k = 0; k < K; ++k) {
                  const double p = double(round_to_bf16(A.at(i, k))) * round_to_bf16(B.at(k, j));
                  want += p;
                  size += std::fabs(p);
                }
                ASSERT_NEAR(c[at], want, 1e-6 * size + 1e-30)
                    << M << "×" << K << "·" << K << "×" << N << " layout " << layout
                    << (accumulate ? " +=" : " =") << " at (" << i << ", " << j << ")";
              }
          }
}

// A layer's forward and backward with bf16 products give what float32 products give on inputs
// rounded to bf16 first (X, W and ∂L/∂Z), to float32 rounding: the products, and nothing else,
// are bfloat16. The bias gradient stays a float32 sum of the unrounded ∂L/∂Z.
TEST(Bf16, ALayersProductsAreFloat32ProductsOfRoundedInputs) {
  SKIP_WITHOUT_BF16();
  const Index N = 37, in = 70, out = 45;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  Dense<float> layer(in, out, Activation::tanh, 0);
  std::vector<float> params(std::size_t(layer.num_params())), rounded(params.size());
  for (float& p : params)
    p = normal(gen) * 0.2F;
  for (std::size_t i = 0; i < params.size(); ++i)
    rounded[i] = i < std::size_t(in * out) ? round_to_bf16(params[i]) : params[i];
  Batch<float> X(N, in), Xr(N, in), dZ(N, out), dZr(N, out);
  for (Index i = 0; i < X.size(); ++i)
    Xr.data()[i] = round_to_bf16(X.data()[i] = normal(gen));
  for (Index i = 0; i < dZ.size(); ++i)
    dZr.data()[i] = round_to_bf16(dZ.data()[i] = normal(gen));
  using P = Dense<float>::Products;
  Batch<float> Z, A, Zr, Ar, dX, dXr;
  layer.forward(params.data(), X, Z, A, P::bf16);
  layer.forward(rounded.data(), Xr, Zr, Ar);
  EXPECT_LT((Z - Zr).cwiseAbs().maxCoeff(), 1e-5F);
  std::vector<float> g(params.size(), 0.0F), gr(params.size(), 0.0F);
  layer.backward(params.data(), g.data(), X, dZ, &dX, Dense<float>::Grads::assign, P::bf16);
  layer.backward(rounded.data(), gr.data(), Xr, dZr, &dXr, Dense<float>::Grads::assign);
  EXPECT_LT((dX - dXr).cwiseAbs().maxCoeff(), 1e-5F);
  for (Index i = 0; i < in * out; ++i)
    ASSERT_NEAR(g[std::size_t(i)], gr[std::size_t(i)], 1e-5F) << "dW element " << i;
  // ∂L/∂b: the float32 path's own sums of the unrounded ∂L/∂Z, bit for bit.
  std::vector<float> g32(params.size(), 0.0F);
  layer.backward(params.data(), g32.data(), X, dZ, nullptr, Dense<float>::Grads::assign);
  for (Index j = in * out; j < layer.num_params(); ++j)
    EXPECT_EQ(g[std::size_t(j)], g32[std::size_t(j)]);
}

// Training scikit-learn's digits (1797 images of 8×8, 10 classes) in bfloat16 reaches the
// validation accuracy float32 reaches (within 2 points, both at least 0.95); the model holds
// float32 weights and records bfloat16 as its training dtype; two runs give the same bits.
TEST(Bf16, TrainsDigitsAsWellAsFloat32) {
  SKIP_WITHOUT_BF16();
  const Table digits = read_csv(
      "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz", {.header = false});
  FitOptions o;
  o.layers = {64};
  o.activation = Activation::relu;
  o.validation = 0.25;
  o.train.epochs = 30;
  o.train.batch = 64;
  const FitResult f32 = fit(digits, o);
  o.dtype = Dtype::bfloat16;
  const FitResult b16 = fit(digits, o), again = fit(digits, o);
  const double acc32 = f32.model.metrics->validation->value;
  const double acc16 = b16.model.metrics->validation->value;
  EXPECT_GE(acc32, 0.95);
  EXPECT_GE(acc16, 0.95);
  EXPECT_NEAR(acc16, acc32, 0.02);
  EXPECT_NE(b16.model.params, f32.model.params);  // the products did change
  EXPECT_EQ(b16.model.params, again.model.params);
  EXPECT_EQ(b16.model.dtype, Dtype::float32);
  EXPECT_EQ(b16.model.training->dtype, Dtype::bfloat16);
}

TEST(Bf16, OnlyFloat32NetworksTakeIt) {
  Network<double> net({.inputs = 2, .layers = {{2, Activation::sigmoid}}, .loss = Loss::mse});
  EXPECT_THROW(net.set_bf16_products(true), ConfigError);
}

}  // namespace
}  // namespace chainrule
