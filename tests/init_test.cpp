#include "chainrule/init.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "chainrule/error.hpp"

namespace chainrule {
namespace {

struct Moments {
  double mean = 0, var = 0, max_abs = 0;
};

Moments weight_moments(const Network<double>& net, std::size_t layer) {
  const auto W = net.layers()[layer].weight(net.params().data());
  Moments m;
  m.mean = W.mean();
  m.var = (W.array() - m.mean).square().mean();
  m.max_abs = W.cwiseAbs().maxCoeff();
  return m;
}

const NetworkSpec kSpec{.inputs = 300,
                        .layers = {{200, Activation::relu}, {10, Activation::identity}}};

TEST(Init, NormalDrawsWeightsAndBiasesFromStandardNormal) {
  Network<double> net(kSpec);
  Rng rng(1);
  initialize(net, Init::normal, rng);
  const Moments m = weight_moments(net, 0);  // 60,000 draws
  EXPECT_NEAR(m.mean, 0.0, 0.02);
  EXPECT_NEAR(m.var, 1.0, 0.03);
  const auto b = net.layers()[0].bias(net.params().data());
  EXPECT_GT(b.cwiseAbs().minCoeff(), 0.0);  // biases drawn too, as in the tutorial
  EXPECT_NEAR((b.array() * b.array()).mean(), 1.0, 0.3);
}

TEST(Init, XavierIsUniformWithinItsBound) {
  Network<double> net(kSpec);
  Rng rng(2);
  initialize(net, Init::xavier, rng);
  const double r = std::sqrt(6.0 / (300 + 200));
  const Moments m = weight_moments(net, 0);
  EXPECT_LE(m.max_abs, r);
  EXPECT_GT(m.max_abs, 0.99 * r);
  EXPECT_NEAR(m.var, r * r / 3, 0.03 * r * r / 3);  // variance of U(-r, r)
  EXPECT_EQ(net.layers()[0].bias(net.params().data()).cwiseAbs().maxCoeff(), 0.0);
}

TEST(Init, HeHasVarianceTwoOverFanIn) {
  Network<double> net(kSpec);
  Rng rng(3);
  initialize(net, Init::he, rng);
  EXPECT_NEAR(weight_moments(net, 0).var, 2.0 / 300, 0.03 * 2.0 / 300);
  EXPECT_NEAR(weight_moments(net, 1).var, 2.0 / 200, 0.1 * 2.0 / 200);  // 2,000 draws
}

TEST(Init, SameSeedSameParameters) {
  Network<float> a(kSpec), b(kSpec);
  Rng ra(77), rb(77);
  initialize(a, Init::he, ra);
  initialize(b, Init::he, rb);
  EXPECT_TRUE(std::equal(a.params().begin(), a.params().end(), b.params().begin()));
}

TEST(Init, Names) {
  EXPECT_EQ(parse_init("glorot"), Init::xavier);
  EXPECT_EQ(parse_init(to_string(Init::he)), Init::he);
  EXPECT_THROW(parse_init("zeros"), ConfigError);
}

}  // namespace
}  // namespace chainrule
