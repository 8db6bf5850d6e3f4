#include "chainrule/loss.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "chainrule/error.hpp"

namespace chainrule {
namespace {

double value_of(Loss loss, Activation out, const Batch<double>& Z, const Batch<double>& Y) {
  Batch<double> A;
  activate(out, Z, A);
  return loss_value<double>(loss, Z, A, Y);
}

TEST(Loss, HandComputedValues) {
  Batch<double> Z(2, 1), A(2, 1), Y(2, 1);
  // MSE on outputs directly (identity): ((0.5 - 1)² + (2 - 0)²) / 2 = (0.25 + 4) / 2.
  Z << 0.5, 2;
  Y << 1, 0;
  EXPECT_DOUBLE_EQ(value_of(Loss::mse, Activation::identity, Z, Y), 2.125);
  // BCE at z = 0: -log(1/2) for either label.
  Z << 0, 0;
  EXPECT_DOUBLE_EQ(value_of(Loss::binary_cross_entropy, Activation::sigmoid, Z, Y), std::log(2.0));
  // Softmax cross-entropy of equal logits over 4 classes: log 4.
  Batch<double> Z4 = Batch<double>::Zero(1, 4), Y4 = Batch<double>::Zero(1, 4);
  Y4(0, 2) = 1;
  EXPECT_DOUBLE_EQ(value_of(Loss::softmax_cross_entropy, Activation::softmax, Z4, Y4),
                   std::log(4.0));
}

TEST(Loss, TutorialSingleSampleDerivative) {
  // For one sample and one output, ∂L/∂ŷ = -2 (y - ŷ).
  Batch<double> A(1, 1), Y(1, 1), G;
  A << 0.8704730975500355;
  Y << 1;
  loss_gradient<double>(Loss::mse, A, Y, G);
  EXPECT_DOUBLE_EQ(G(0, 0), -2 * (1 - 0.8704730975500355));
}

// The gradient of each loss against the central difference of its value, with respect to A for
// MSE (unfused) and Z for the fused losses.
TEST(Loss, GradientMatchesCentralDifference) {
  struct Case {
    Loss loss;
    Activation out;
  };
  Batch<double> Z(3, 4), Y(3, 4);
  Z << 0.3, -1.2, 2.0, 0.1, -0.7, 0.4, 1.5, -2.2, 1.1, 0.0, -0.3, 0.8;
  Y << 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1;  // one-hot rows: valid for every loss
  for (Case c : {Case{Loss::mse, Activation::identity},
                 Case{Loss::binary_cross_entropy, Activation::sigmoid},
                 Case{Loss::softmax_cross_entropy, Activation::softmax}}) {
    Batch<double> A, G;
    activate(c.out, Z, A);
    loss_gradient<double>(c.loss, A, Y, G);
    double norm = 0;
    const double h = 1e-6;
    for (Index i = 0; i < Z.size(); ++i) {
      Batch<double> Zp = Z, Zm = Z;
      Zp.data()[i] += h;
      Zm.data()[i] -= h;
      const double fd = (value_of(c.loss, c.out, Zp, Y) - value_of(c.loss, c.out, Zm, Y)) / (2 * h);
      EXPECT_NEAR(G.data()[i], fd, 1e-9) << to_string(c.loss) << " element " << i;
      norm += std::abs(G.data()[i]);
    }
    EXPECT_GT(norm, 1e-2) << to_string(c.loss);
  }
}

TEST(Loss, StableForHugeLogits) {
  Batch<double> Z(1, 2), Y(1, 2), A, G;
  Z << 1e4, -1e4;
  Y << 0, 1;
  // BCE: each element costs |z| = 1e4 exactly; softmax CE: logsumexp(z) - z_1 = 2e4.
  EXPECT_DOUBLE_EQ(value_of(Loss::binary_cross_entropy, Activation::sigmoid, Z, Y), 1e4);
  EXPECT_DOUBLE_EQ(value_of(Loss::softmax_cross_entropy, Activation::softmax, Z, Y), 2e4);
  activate(Activation::softmax, Z, A);
  loss_gradient<double>(Loss::softmax_cross_entropy, A, Y, G);
  EXPECT_TRUE(G.allFinite());
  EXPECT_DOUBLE_EQ(G(0, 0), 1.0);
  Batch<float> Zf = Z.cast<float>(), Af, Gf;
  const Batch<float> Yf = Y.cast<float>();
  activate(Activation::sigmoid, Zf, Af);
  EXPECT_DOUBLE_EQ((loss_value<float>(Loss::binary_cross_entropy, Zf, Af, Yf)), 1e4);
  loss_gradient<float>(Loss::binary_cross_entropy, Af, Yf, Gf);
  EXPECT_TRUE(Gf.allFinite());
}

TEST(Loss, FusedLossesNeedTheirOutputActivation) {
  EXPECT_THROW(check_loss_output(Loss::binary_cross_entropy, Activation::tanh), ConfigError);
  EXPECT_THROW(check_loss_output(Loss::softmax_cross_entropy, Activation::sigmoid), ConfigError);
  EXPECT_NO_THROW(check_loss_output(Loss::mse, Activation::softmax));
  EXPECT_EQ(parse_loss("bce"), Loss::binary_cross_entropy);
  EXPECT_THROW(parse_loss("hinge"), ConfigError);
}

}  // namespace
}  // namespace chainrule
