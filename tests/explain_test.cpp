#include "chainrule/explain.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"
#include "chainrule/random.hpp"
#include "chainrule/tutorial.hpp"

namespace chainrule {
namespace {

// The tutorial's worked case: all weights 1, biases 0, the sample youge (-2, 5) with y = 1.
Explanation worked_case() {
  Network<double> net(tutorial::spec());
  const double p[] = {1, 1, 1, 1, 0, 0, 1, 1, 0};
  std::copy(std::begin(p), std::end(p), net.params().begin());
  const double x[] = {-2, 5}, y[] = {1};
  return explain(net, x, y);
}

const ParamTrace& param(const Explanation& e, const std::string& name) {
  for (const ParamTrace& p : e.params)
    if (p.name == name) return p;
  throw std::runtime_error("no parameter " + name);
}

TEST(Explain, WorkedCaseNumbers) {
  const Explanation e = worked_case();
  // Independent values (σ(3), σ(2σ(3)) and the chain of the tutorial, computed by hand in double).
  const double h1 = 0.9525741268224334, yhat = 0.8704730975500355;
  ASSERT_EQ(e.neurons.size(), 3u);
  EXPECT_EQ(e.neurons[0].name, "h1");
  EXPECT_DOUBLE_EQ(e.neurons[0].z, 3);
  EXPECT_NEAR(e.neurons[0].a, h1, 1e-15);
  EXPECT_EQ(e.neurons[2].name, "ŷ");
  EXPECT_NEAR(e.neurons[2].z, 2 * h1, 1e-15);
  EXPECT_NEAR(e.neurons[2].a, yhat, 1e-15);
  EXPECT_NEAR(e.loss_value, (1 - yhat) * (1 - yhat), 1e-15);

  const ParamTrace& w1 = param(e, "w1");
  ASSERT_EQ(w1.factors.size(), 3u);
  EXPECT_EQ(w1.factors[0].symbol, "∂L/∂ŷ");
  EXPECT_EQ(w1.factors[1].symbol, "∂ŷ/∂h1");
  EXPECT_EQ(w1.factors[2].symbol, "∂h1/∂w1");
  EXPECT_NEAR(w1.factors[0].value, -0.2590538048999289, 1e-15);
  EXPECT_NEAR(w1.factors[1].value, 0.11274968399168185, 1e-15);
  EXPECT_NEAR(w1.factors[2].value, -0.090353319461824, 1e-15);
  EXPECT_NEAR(w1.chain, 0.002639060955281471, 1e-15);
  EXPECT_NEAR(w1.finite_difference, 0.002639060955281471, 1e-10);
  EXPECT_GT(w1.chain, 0);  // raising w1 raises L: SGD lowers w1
  EXPECT_EQ(w1.reading, "positive: raising w1 raises L, so gradient descent lowers w1");
  EXPECT_EQ(w1.tensor, "layers.0.weight");
  EXPECT_EQ(w1.flat, 0);

  const ParamTrace& w5 = param(e, "w5");  // the output layer: two factors
  ASSERT_EQ(w5.factors.size(), 2u);
  EXPECT_EQ(w5.factors[1].symbol, "∂ŷ/∂w5");
  EXPECT_NEAR(w5.chain, -0.2590538048999289 * h1 * yhat * (1 - yhat), 1e-15);
  EXPECT_EQ(param(e, "b3").flat, 8);
  EXPECT_EQ(param(e, "w6").tensor, "layers.1.weight");
}

TEST(Explain, EveryChainEqualsBackpropAndFiniteDifference) {
  const Explanation e = worked_case();
  ASSERT_EQ(e.params.size(), 9u);
  for (const ParamTrace& p : e.params) {
    EXPECT_NEAR(p.chain, p.backprop, 1e-15) << p.name;
    EXPECT_LT(p.relative_error, 1e-6) << p.name;
    EXPECT_GT(std::abs(p.chain), 1e-4) << p.name;  // none of them is trivially zero
  }
}

// Deeper and wider networks: chains that pass through sums (several paths) still multiply out
// to the gradient that Network::backward computes, for every loss.
TEST(Explain, ChainsOfDeepNetworksEqualBackprop) {
  struct Case {
    std::vector<LayerSpec> layers;
    Loss loss;
  };
  const Case cases[] = {
      {{{3, Activation::tanh}, {2, Activation::sigmoid}, {1, Activation::sigmoid}}, Loss::mse},
      {{{3, Activation::tanh}, {1, Activation::leaky_relu}, {2, Activation::softmax}},
       Loss::softmax_cross_entropy},
      {{{4, Activation::sigmoid}, {3, Activation::softmax}}, Loss::mse},
      {{{2, Activation::relu}, {1, Activation::identity}, {1, Activation::sigmoid}},
       Loss::binary_cross_entropy},
  };
  Rng rng(5);
  for (const Case& c : cases) {
    Network<double> net({.inputs = 3, .layers = c.layers, .loss = c.loss});
    initialize(net, Init::normal, rng);
    const double x[] = {0.5, -1.5, 2.0};
    std::vector<double> y(std::size_t(net.outputs()), 0.0);
    y[0] = 1;
    const Explanation e = explain(net, x, y);
    ASSERT_EQ(e.params.size(), std::size_t(net.num_params()));
    double norm = 0;
    for (const ParamTrace& p : e.params) {
      EXPECT_NEAR(p.chain, p.backprop, 1e-12 * std::max(1.0, std::abs(p.backprop))) << p.name;
      EXPECT_NEAR(p.finite_difference, p.backprop, 1e-6 * std::abs(p.backprop) + 1e-9) << p.name;
      norm += std::abs(p.backprop);
    }
    EXPECT_GT(norm, 1e-3);
  }
}

TEST(Explain, SelectedParametersAndNames) {
  Network<double> net({.inputs = 3,
                       .layers = {{4, Activation::tanh}, {2, Activation::softmax}},
                       .loss = Loss::softmax_cross_entropy});
  Rng rng(9);
  initialize(net, Init::normal, rng);
  // Names: w1.. over all weights in buffer order, b1.. over all biases; tensor indices (out, in).
  EXPECT_EQ(find_param(net, "w1"), 0);
  EXPECT_EQ(find_param(net, "w13"),
            16);  // the first weight of layer 1 (12 weights, 4 biases before)
  EXPECT_EQ(find_param(net, "b5"), 16 + 8);
  EXPECT_EQ(find_param(net, "layers.0.weight[2,1]"), 2 * 3 + 1);
  EXPECT_EQ(find_param(net, "layers.1.bias[1]"), 16 + 8 + 1);
  EXPECT_THROW(find_param(net, "w21"), ConfigError);
  EXPECT_THROW(find_param(net, "layers.0.weight[4,0]"), ConfigError);
  EXPECT_THROW(find_param(net, "x"), ConfigError);

  const double x[] = {0.3, -1.0, 2.0}, y[] = {0, 1};
  const std::vector<Index> top = largest_gradients(net, x, y, 3);
  ASSERT_EQ(top.size(), 3u);
  const Explanation all = explain(net, x, y);
  double third = 0;  // the 3rd largest |gradient| bounds every unselected one
  std::vector<double> mags;
  for (const ParamTrace& p : all.params)
    mags.push_back(std::abs(p.backprop));
  std::sort(mags.rbegin(), mags.rend());
  third = mags[2];
  for (Index i : top)
    EXPECT_GE(std::abs(all.params[std::size_t(i)].backprop), third);

  ExplainOptions options;
  options.params = top;
  const Explanation some = explain(net, x, y, options);
  ASSERT_EQ(some.params.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(some.params[k].flat, top[k]);
    EXPECT_EQ(some.params[k].chain, all.params[std::size_t(top[k])].chain);
  }
}

TEST(Explain, WrongSampleSizeIsAnError) {
  Network<double> net(tutorial::spec());
  const double x[] = {1, 2, 3}, y[] = {1};
  EXPECT_THROW(explain(net, x, y), ConfigError);
}

}  // namespace
}  // namespace chainrule
