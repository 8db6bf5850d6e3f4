#include "chainrule/optimizer.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "chainrule/error.hpp"

namespace chainrule {
namespace {

TEST(Sgd, PlainStepIsParamMinusLrTimesGrad) {
  Sgd<double> sgd({.lr = 0.1});
  std::vector<double> p{1.0, -2.0, 0.5};
  const std::vector<double> g{0.25, -1.0, 0.0};
  sgd.step(p, g);
  EXPECT_DOUBLE_EQ(p[0], 1.0 - 0.1 * 0.25);
  EXPECT_DOUBLE_EQ(p[1], -2.0 + 0.1);
  EXPECT_DOUBLE_EQ(p[2], 0.5);
  EXPECT_EQ(sgd.steps(), 1);
}

// Hand-computed torch.optim.SGD(lr=0.1, momentum=0.9) on one parameter with gradients 1, 2, 3:
//   v1 = 1            p1 = 1 - 0.1·1    = 0.9
//   v2 = 0.9·1 + 2    = 2.9   p2 = 0.9 - 0.29  = 0.61
//   v3 = 0.9·2.9 + 3  = 5.61  p3 = 0.61 - 0.561 = 0.049
TEST(Sgd, MomentumMatchesHandComputedSteps) {
  Sgd<double> sgd({.lr = 0.1, .momentum = 0.9});
  std::vector<double> p{1.0};
  const double expected[] = {0.9, 0.61, 0.049};
  for (int t = 0; t < 3; ++t) {
    const std::vector<double> g{double(t + 1)};
    sgd.step(p, g);
    EXPECT_NEAR(p[0], expected[t], 1e-15) << "step " << t + 1;
  }
}

// Nesterov: g' = g + μ·v. Steps with g = 1, 2:
//   v1 = 1, g' = 1 + 0.9 = 1.9, p1 = 1 - 0.19 = 0.81
//   v2 = 0.9 + 2 = 2.9, g' = 2 + 2.61 = 4.61, p2 = 0.81 - 0.461 = 0.349
TEST(Sgd, NesterovMatchesHandComputedSteps) {
  Sgd<double> sgd({.lr = 0.1, .momentum = 0.9, .nesterov = true});
  std::vector<double> p{1.0};
  sgd.step(p, std::vector<double>{1.0});
  EXPECT_NEAR(p[0], 0.81, 1e-15);
  sgd.step(p, std::vector<double>{2.0});
  EXPECT_NEAR(p[0], 0.349, 1e-15);
}

// Weight decay adds wd·p to the gradient: p = 2, g = 0.5, wd = 0.1, lr = 0.5:
//   p1 = 2 - 0.5·(0.5 + 0.2) = 1.65
TEST(Sgd, WeightDecayAddsToTheGradient) {
  Sgd<float> sgd({.lr = 0.5, .weight_decay = 0.1});
  std::vector<float> p{2.0f};
  sgd.step(p, std::vector<float>{0.5f});
  EXPECT_FLOAT_EQ(p[0], 1.65f);
}

TEST(Sgd, OutOfRangeOptionsAreRejected) {
  EXPECT_THROW(Sgd<double>({.lr = 0}), ConfigError);
  EXPECT_THROW(Sgd<double>({.lr = -1}), ConfigError);
  EXPECT_THROW(Sgd<double>({.lr = 0.1, .momentum = 1.0}), ConfigError);
  EXPECT_THROW(Sgd<double>({.lr = 0.1, .nesterov = true}), ConfigError);
  EXPECT_THROW(Sgd<double>({.lr = 0.1, .weight_decay = -0.1}), ConfigError);
}

}  // namespace
}  // namespace chainrule
