#include "chainrule/network.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "../src/prefault.hpp"
#include "chainrule/error.hpp"
#include "chainrule/init.hpp"
#include "chainrule/optimizer.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"
#include "vm_flags.hpp"

namespace chainrule {
void PrintTo(Activation a, std::ostream* os) {
  *os << to_string(a);
}
namespace {

struct OutputCase {
  Activation out;
  Loss loss;
};
void PrintTo(const OutputCase& c, std::ostream* os) {
  *os << to_string(c.out) << "+" << to_string(c.loss);
}

// Every activation × loss pair that makes sense at the output.
const OutputCase kOutputs[] = {
    {Activation::identity, Loss::mse},
    {Activation::sigmoid, Loss::mse},
    {Activation::tanh, Loss::mse},
    {Activation::relu, Loss::mse},
    {Activation::leaky_relu, Loss::mse},
    {Activation::softmax, Loss::mse},
    {Activation::sigmoid, Loss::binary_cross_entropy},
    {Activation::softmax, Loss::softmax_cross_entropy},
};
const Activation kHidden[] = {Activation::sigmoid, Activation::tanh, Activation::relu,
                              Activation::leaky_relu, Activation::identity};

Batch<double> random_batch(Index rows, Index cols, Rng& rng) {
  Batch<double> B(rows, cols);
  for (Index i = 0; i < B.size(); ++i)
    B.data()[i] = rng.normal();
  return B;
}

// Targets each loss accepts: one-hot rows for softmax CE, 0/1 for BCE, anything for MSE.
Batch<double> random_targets(Loss loss, Index rows, Index cols, Rng& rng) {
  Batch<double> Y = Batch<double>::Zero(rows, cols);
  for (Index n = 0; n < rows; ++n)
    for (Index k = 0; k < cols; ++k) {
      if (loss == Loss::mse) Y(n, k) = rng.uniform(-1, 1);
      if (loss == Loss::binary_cross_entropy) Y(n, k) = double(rng.below(2));
    }
  if (loss == Loss::softmax_cross_entropy)
    for (Index n = 0; n < rows; ++n)
      Y(n, Index(rng.below(std::uint64_t(cols)))) = 1;
  return Y;
}

// Checks Network::backward against central differences of Network::loss, every parameter.
// Returns the gradient's L1 norm so callers can guard against an all-zero gradient.
double check_gradients(Network<double>& net, const Batch<double>& X, const Batch<double>& Y) {
  net.zero_grad();
  net.forward(X);
  net.backward(Y);
  const std::vector<double> g(net.grads().begin(), net.grads().end());
  const double h = 1e-6;
  // The central difference itself is only good to about ε·|L|/h (round-off in L(p ± h)).
  const double fd_noise = 100 * 2.2e-16 * std::max(1.0, std::abs(net.loss(Y))) / h;
  double norm = 0, diff = 0, fd_norm = 0;
  for (Index i = 0; i < net.num_params(); ++i) {
    double& p = net.params()[i];
    const double saved = p;
    p = saved + h;
    net.forward(X);
    const double up = net.loss(Y);
    p = saved - h;
    net.forward(X);
    const double down = net.loss(Y);
    p = saved;
    const double fd = (up - down) / (2 * h);
    // Each element: relative error below 1e-6, with the finite difference's own noise as floor.
    EXPECT_LE(std::abs(g[i] - fd), 1e-6 * std::max(std::abs(g[i]), std::abs(fd)) + fd_noise)
        << "parameter " << i << ": backprop " << g[i] << ", finite difference " << fd;
    norm += std::abs(g[i]);
    fd_norm += std::abs(fd);
    diff += std::abs(g[i] - fd);
  }
  EXPECT_LT(diff / std::max(norm, fd_norm), 1e-6);  // relative error of the whole gradient
  return norm;
}

TEST(Network, ParameterLayoutIsOneFlatBuffer) {
  Network<double> net({.inputs = 3,
                       .layers = {{4, Activation::relu}, {2, Activation::softmax}},
                       .loss = Loss::softmax_cross_entropy});
  ASSERT_EQ(net.num_params(), 3 * 4 + 4 + 4 * 2 + 2);
  EXPECT_EQ(net.grads().size(), net.params().size());
  EXPECT_EQ(net.layers()[0].offset(), 0);
  EXPECT_EQ(net.layers()[0].bias_offset(), 12);
  EXPECT_EQ(net.layers()[1].offset(), 16);
  // W(i, j) sits at offset + j·in + i: PyTorch's weight[j][i] of shape (out, in).
  net.params()[1] = 7;  // PyTorch layers.0.weight[0][1]
  EXPECT_EQ(net.layers()[0].weight(net.params().data())(1, 0), 7);
}

TEST(Network, ForwardMatchesHandComputation) {
  // 2-2-1 sigmoid with w1..w6 = 1..6, b1..b3 = 0.1, 0.2, 0.3 on x = (1, -1).
  Network<double> net({.inputs = 2,
                       .layers = {{2, Activation::sigmoid}, {1, Activation::sigmoid}},
                       .loss = Loss::mse});
  const double p[] = {1, 2, 3, 4, 0.1, 0.2, 5, 6, 0.3};
  std::copy(std::begin(p), std::end(p), net.params().begin());
  Batch<double> X(1, 2);
  X << 1, -1;
  const double h1 = 1 / (1 + std::exp(-(1 * 1 + 2 * -1 + 0.1)));
  const double h2 = 1 / (1 + std::exp(-(3 * 1 + 4 * -1 + 0.2)));
  const double o = 1 / (1 + std::exp(-(5 * h1 + 6 * h2 + 0.3)));
  EXPECT_NEAR(net.forward(X)(0, 0), o, 1e-15);
}

class GradientCheck : public ::testing::TestWithParam<std::tuple<Activation, OutputCase>> {};

TEST_P(GradientCheck, ThreeLayersRandomWeights) {
  const auto [hidden, out] = GetParam();
  Rng rng(2024);
  Network<double> net(
      {.inputs = 4, .layers = {{5, hidden}, {3, hidden}, {3, out.out}}, .loss = out.loss});
  initialize(net, Init::normal, rng);
  const Batch<double> X = random_batch(6, 4, rng);
  const Batch<double> Y = random_targets(out.loss, 6, 3, rng);
  EXPECT_GT(check_gradients(net, X, Y), 1e-3);
}

std::string name_of(const ::testing::TestParamInfo<GradientCheck::ParamType>& info) {
  const auto& [hidden, out] = info.param;
  return std::string(to_string(hidden)) + "_" + std::string(to_string(out.out)) + "_" +
         std::string(to_string(out.loss));
}

INSTANTIATE_TEST_SUITE_P(AllPairs, GradientCheck,
                         ::testing::Combine(::testing::ValuesIn(kHidden),
                                            ::testing::ValuesIn(kOutputs)),
                         name_of);

TEST(Network, SingleOutputBinaryCrossEntropyAndTutorialShape) {
  Rng rng(7);
  for (Loss loss : {Loss::mse, Loss::binary_cross_entropy}) {
    Network<double> net({.inputs = 2,
                         .layers = {{2, Activation::sigmoid}, {1, Activation::sigmoid}},
                         .loss = loss});
    initialize(net, Init::normal, rng);
    const Batch<double> X = random_batch(1, 2, rng);  // a batch of one, as in the tutorial
    Batch<double> Y(1, 1);
    Y << 1;
    EXPECT_GT(check_gradients(net, X, Y), 1e-3);
  }
}

TEST(Network, GradientsAccumulateUntilZeroed) {
  Rng rng(3);
  Network<double> net({.inputs = 3, .layers = {{4, Activation::tanh}, {2, Activation::identity}}});
  initialize(net, Init::xavier, rng);
  const Batch<double> X = random_batch(5, 3, rng), Y = random_batch(5, 2, rng);
  net.zero_grad();
  net.forward(X);
  net.backward(Y);
  const std::vector<double> once(net.grads().begin(), net.grads().end());
  net.forward(X);
  net.backward(Y);
  for (std::size_t i = 0; i < once.size(); ++i)
    EXPECT_DOUBLE_EQ(net.grads()[i], 2 * once[i]);
  net.zero_grad();
  for (double g : net.grads())
    EXPECT_EQ(g, 0.0);
}

TEST(Network, FloatAgreesWithDouble) {
  Rng rng(11);
  const NetworkSpec spec{.inputs = 6,
                         .layers = {{8, Activation::relu}, {4, Activation::softmax}},
                         .loss = Loss::softmax_cross_entropy};
  Network<double> d(spec);
  Network<float> f(spec);
  initialize(d, Init::he, rng);
  for (Index i = 0; i < d.num_params(); ++i)
    f.params()[i] = float(d.params()[i]);
  const Batch<double> X = random_batch(10, 6, rng);
  const Batch<double> Y = random_targets(spec.loss, 10, 4, rng);
  d.zero_grad();
  f.zero_grad();
  d.forward(X);
  f.forward(X.cast<float>());
  EXPECT_NEAR(f.loss(Y.cast<float>()), d.loss(Y), 1e-5);
  d.backward(Y);
  f.backward(Y.cast<float>());
  for (Index i = 0; i < d.num_params(); ++i)
    EXPECT_NEAR(f.grads()[i], d.grads()[i], 1e-5);
}

TEST(Network, StableWithHugePreActivations) {
  // Weights of 1e4 drive |z| to about 1e4: loss and gradients stay finite for every fused loss.
  for (auto [out, loss] :
       {std::pair{Activation::sigmoid, Loss::binary_cross_entropy},
        std::pair{Activation::softmax, Loss::softmax_cross_entropy},
        std::pair{Activation::sigmoid, Loss::mse}, std::pair{Activation::tanh, Loss::mse}}) {
    Network<float> net({.inputs = 1, .layers = {{2, out}}, .loss = loss});
    const float p[] = {1e4f, -1e4f, 0, 0};
    std::copy(std::begin(p), std::end(p), net.params().begin());
    Batch<float> X(1, 1), Y(1, 2);
    X << 1;
    Y << 0, 1;
    net.zero_grad();
    net.forward(X);
    EXPECT_TRUE(std::isfinite(net.loss(Y))) << to_string(loss);
    net.backward(Y);
    for (float g : net.grads())
      EXPECT_TRUE(std::isfinite(g)) << to_string(loss);
  }
}

// One sample through a small network takes plain loops (forward_one/backward_one); the same
// sample twice in a batch takes the matrix products. Same loss, outputs and gradients (the mean
// over two equal samples is the sample's), up to the order of additions.
// Every output layer and loss × hidden activation, as a small 5-7-6-3 network with Xavier
// weights, with one random sample x and its targets y: f(net, x, y).
template <class F>
void for_each_small_network(std::uint64_t seed, F f) {
  for (const OutputCase& oc : kOutputs)
    for (const Activation hidden : kHidden) {
      SCOPED_TRACE(std::string(to_string(hidden)) + " / " + std::string(to_string(oc.out)) + "+" +
                   std::string(to_string(oc.loss)));
      Rng rng(seed);
      Network<double> net(
          {.inputs = 5, .layers = {{7, hidden}, {6, hidden}, {3, oc.out}}, .loss = oc.loss});
      initialize(net, Init::xavier, rng);
      const Batch<double> x = random_batch(1, 5, rng);
      const Batch<double> y = random_targets(oc.loss, 1, 3, rng);
      f(net, x, y);
    }
}

TEST(Network, SmallNetworkPathMatchesTheMatrixPath) {
  for_each_small_network(21,
                         [](Network<double>& net, const Batch<double>& x, const Batch<double>& y) {
                           Batch<double> x2(2, 5), y2(2, 3);
                           x2 << x, x;
                           y2 << y, y;
                           net.zero_grad();
                           const Batch<double> out1 = net.forward(x);
                           const double loss1 = net.loss(y);
                           net.backward(y);
                           const std::vector<double> g1(net.grads().begin(), net.grads().end());
                           net.zero_grad();
                           const Batch<double> out2 = net.forward(x2);
                           const double loss2 = net.loss(y2);
                           net.backward(y2);
                           EXPECT_NEAR(loss1, loss2, 1e-14 * (1 + std::abs(loss2)));
                           for (Index k = 0; k < 3; ++k)
                             EXPECT_NEAR(out1(0, k), out2(1, k), 1e-15);
                           double scale = 0;
                           for (const double g : net.grads())
                             scale = std::max(scale, std::abs(g));
                           for (std::size_t i = 0; i < g1.size(); ++i)
                             ASSERT_NEAR(g1[i], net.grads()[i], 1e-13 * scale) << "parameter " << i;
                         });
}

// step_one fuses zero_grad, forward, loss and backward for one sample: the same loss, outputs and
// gradients, bit for bit, for every output layer, loss and hidden activation.
TEST(Network, StepOneEqualsTheStepsItFuses) {
  for_each_small_network(
      22, [](Network<double>& net, const Batch<double>& x, const Batch<double>& y) {
        ASSERT_TRUE(net.one_sample_path());
        net.zero_grad();
        const Batch<double> out = net.forward(x);
        const double loss = net.loss(y);
        net.backward(y);
        const std::vector<double> g(net.grads().begin(), net.grads().end());
        std::fill(net.grads().begin(), net.grads().end(), 123.0);  // set, not added to
        EXPECT_EQ(net.step_one(x.data(), y.data()), loss);
        EXPECT_TRUE((net.activation(2).array() == out.array()).all());
        for (std::size_t i = 0; i < g.size(); ++i)
          ASSERT_EQ(net.grads()[i], g[i]) << "parameter " << i;
        EXPECT_THROW(net.backward(y), ConfigError);  // step_one keeps no input
      });
  Network<double> dropped({.inputs = 2, .layers = {{2, Activation::sigmoid}, {1}}});
  dropped.set_dropout_rate(0.2);
  EXPECT_FALSE(dropped.one_sample_path());
}

// step_one_descend is step_one followed by an Sgd step without momentum, bit for bit: loss,
// gradients and updated weights, over several steps (the plan step_one keeps, reused), after a
// pass of another batch size in between (which moves the workspaces the plan points into), in a
// copy of the network (whose plan must point into its own buffers), and in parameters placed in
// memory the network does not own.
TEST(Network, StepOneDescendEqualsStepOneThenSgd) {
  for_each_small_network(
      23, [](Network<double>& net, const Batch<double>& x, const Batch<double>& y) {
        Network<double> fused = net;
        Sgd<double> sgd({.lr = 0.3});
        const auto same = [](std::span<const double> a, std::span<const double> b) {
          return std::equal(a.begin(), a.end(), b.begin(), b.end());
        };
        const Batch<double> x5 = Batch<double>::Constant(7, 5, 0.25);
        for (int step = 0; step < 4; ++step) {
          SCOPED_TRACE("step " + std::to_string(step));
          if (step == 2)  // three other batch sizes through both (the one-sample workspaces
                          // are dropped: Network keeps two spare sets), then one sample again
            for (const Index rows : {5, 6, 7}) {
              net.forward(x5.topRows(rows));
              fused.forward(x5.topRows(rows));
            }
          const double loss = net.step_one(x.data(), y.data());
          sgd.step(net.params(), net.grads());
          EXPECT_EQ(fused.step_one_descend(x.data(), y.data(), 0.3), loss);
          ASSERT_TRUE(same(fused.grads(), net.grads()));
          ASSERT_TRUE(same(fused.params(), net.params()));
          EXPECT_TRUE((fused.activation(2).array() == net.activation(2).array()).all());
        }
        // A copy steps its own weights, not the original's.
        const std::vector<double> before(fused.params().begin(), fused.params().end());
        Network<double> copy = fused, ref = net;
        copy.step_one_descend(x.data(), y.data(), 0.3);
        ref.step_one(x.data(), y.data());
        sgd.step(ref.params(), ref.grads());
        EXPECT_TRUE(same(fused.params(), before));
        EXPECT_TRUE(same(copy.params(), ref.params()));
        // Placed parameters and gradients are the ones stepped.
        std::vector<double> p(before), g(before.size(), 0.0);
        fused.place(p.data(), g.data());
        net.step_one(x.data(), y.data());
        sgd.step(net.params(), net.grads());
        fused.step_one_descend(x.data(), y.data(), 0.3);
        EXPECT_TRUE(same(p, net.params()));
        EXPECT_TRUE(same(g, net.grads()));
      });
}

// infer gives forward's outputs and loss, bit for bit (batch of one and of many, dropout set
// but not drawn), keeps no input, so a backward after it is refused; a forward makes it legal
// again.
TEST(Network, InferEqualsForwardWithoutKeepingTheInput) {
  Rng rng(8);
  Network<float> net({.inputs = 40,
                      .layers = {{30, Activation::relu}, {4, Activation::softmax}},
                      .loss = Loss::softmax_cross_entropy});
  initialize(net, Init::he, rng);
  net.set_dropout_rate(0.5);
  for (const Index n : {Index(1), Index(33)}) {
    const Batch<float> X = random_batch(n, 40, rng).cast<float>();
    const Batch<float> Y = random_targets(Loss::softmax_cross_entropy, n, 4, rng).cast<float>();
    const Batch<float> by_forward = net.forward(X);
    const double loss_forward = net.loss(Y);
    const Batch<float> by_infer = net.infer(X);
    EXPECT_EQ(net.loss(Y), loss_forward);
    ASSERT_EQ(by_infer.rows(), n);
    EXPECT_TRUE((by_infer.array() == by_forward.array()).all());
    EXPECT_THROW(net.backward(Y), ConfigError);
    net.forward(X);
    EXPECT_NO_THROW(net.backward(Y));
  }
}

// The training loop's fast path: forward_rows of rows drawn from a larger matrix equals forward
// of those rows copied out, and backward_then(Y, job, fresh) over a gradient left at 5 equals
// zero_grad, backward(Y) and the job over the whole buffer, bit for bit, on one thread and on two
// and three: 120 rows split by columns (60 and 40 rows a thread), 200 cut into blocks of rows.
// The loss backward_then computes along (on one of the threads) is loss(Y)'s, bit for bit; and
// forward_backward_then, the two in one call, gives the same bits.
TEST(Network, ForwardRowsAndBackwardThenEqualTheStepsTheyFuse) {
  Rng rng(5);
  const Batch<float> big = random_batch(300, 50, rng).cast<float>();
  for (const Index n : {Index(120), Index(200)}) {
    const Batch<float> Y = random_targets(Loss::softmax_cross_entropy, n, 3, rng).cast<float>();
    std::vector<Index> rows(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < rows.size(); ++i)
      rows[i] = Index((i * 97 + 13) % 300);  // scattered, in no order
    Batch<float> X(n, 50);
    for (std::size_t i = 0; i < rows.size(); ++i)
      X.row(Index(i)) = big.row(rows[i]);
    for (const int threads : {1, 2, 3}) {
      Network<float> a({.inputs = 50,
                        .layers = {{200, Activation::relu}, {3, Activation::softmax}},
                        .loss = Loss::softmax_cross_entropy});
      initialize(a, Init::he, rng);
      a.set_threads(threads);
      Network<float> b = a, c = a;
      a.zero_grad();
      const Batch<float> out_a = a.forward(X);
      const double loss_a = a.loss(Y);
      a.backward(Y);
      std::vector<float> want(a.params().begin(), a.params().end());
      for (std::size_t i = 0; i < want.size(); ++i)
        want[i] -= 0.1F * a.grads()[i];
      std::fill(b.grads().begin(), b.grads().end(), 5.0F);  // a `fresh` backward_then ignores it
      const Batch<float> out_b = b.forward_rows(big, rows);
      EXPECT_TRUE((out_a.array() == out_b.array()).all()) << n << " rows, " << threads;
      std::vector<int> visits(b.params().size(), 0);
      double loss_b = -1;
      auto step = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
          b.params()[i] -= 0.1F * b.grads()[i];
          ++visits[i];
        }
      };
      b.backward_then(Y,
                      {[](void* f, std::size_t from, std::size_t to) {
                         (*static_cast<decltype(step)*>(f))(from, to);
                       },
                       &step},
                      true, &loss_b);
      EXPECT_EQ(loss_b, loss_a) << n << " rows, " << threads;  // computed on one of the threads
      EXPECT_TRUE(std::all_of(visits.begin(), visits.end(), [](int v) { return v == 1; }));
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(b.params()[i], want[i]) << n << " rows, " << threads << ", parameter " << i;
      // The two in one call (on a split by columns, one dispatch): the same bits.
      std::fill(c.grads().begin(), c.grads().end(), 5.0F);
      double loss_c = -1;
      auto step_c = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i)
          c.params()[i] -= 0.1F * c.grads()[i];
      };
      c.forward_backward_then(big, rows, nullptr, Y,
                              {[](void* f, std::size_t from, std::size_t to) {
                                 (*static_cast<decltype(step_c)*>(f))(from, to);
                               },
                               &step_c},
                              true, &loss_c);
      EXPECT_EQ(loss_c, loss_a) << n << " rows, " << threads;
      EXPECT_TRUE((c.infer(X).array() == b.infer(X).array()).all()) << n << " rows, " << threads;
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(c.params()[i], want[i]) << n << " rows, " << threads << ", parameter " << i;
    }
  }
}

// A fresh backward_then writes the gradients on every path, the one-sample path included (a
// small network, one row): over gradients left at 5 it gives zero_grad and backward's, bit for
// bit, and the job sees them.
TEST(Network, AFreshBackwardThenIgnoresOldGradientsOnOneSample) {
  Rng rng(8);
  Network<double> a({.inputs = 3,
                     .layers = {{4, Activation::sigmoid}, {2, Activation::sigmoid}},
                     .loss = Loss::mse});
  initialize(a, Init::normal, rng);  // biases too
  ASSERT_TRUE(a.one_sample_path());
  const Batch<double> X = random_batch(1, 3, rng), Y = random_batch(1, 2, rng);
  Network<double> b = a;
  a.zero_grad();
  a.forward(X);
  a.backward(Y);
  std::fill(b.grads().begin(), b.grads().end(), 5.0);
  b.forward(X);
  std::vector<double> seen(b.params().size(), -1);
  auto copy = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i)
      seen[i] = b.grads()[i];
  };
  b.backward_then(Y,
                  {[](void* f, std::size_t from, std::size_t to) {
                     (*static_cast<decltype(copy)*>(f))(from, to);
                   },
                   &copy},
                  true);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    ASSERT_EQ(b.grads()[i], a.grads()[i]) << "parameter " << i;
    ASSERT_EQ(seen[i], a.grads()[i]) << "parameter " << i;
  }
}

// A batch of few rows per thread is split among the threads by columns (each computes its
// share of every layer's outputs and gradients, meeting the others between layers). In double,
// the gradients equal one thread's up to the order of additions, for every kind of layer: hidden
// layers of each elementwise activation, a top layer shared among the threads through its
// activation's derivative (MSE on sigmoid) or left to the first (softmax), a layer too narrow to
// share; and the same thread count gives the same bits every time.
TEST(Network, ASplitByColumnsGivesOneThreadsGradients) {
  Rng rng(12);
  struct Case {
    Activation hidden;
    LayerSpec top;
    Loss loss;
  };
  const Case cases[] = {
      {Activation::relu, {3, Activation::softmax}, Loss::softmax_cross_entropy},
      {Activation::tanh, {48, Activation::sigmoid}, Loss::mse},
      {Activation::sigmoid, {40, Activation::identity}, Loss::mse},
      {Activation::leaky_relu, {33, Activation::sigmoid}, Loss::binary_cross_entropy},
  };
  // The hidden layers: 64 × 8 and the tops run by rows (few weights, or too narrow to share:
  // the 8-unit layer is the first thread's alone, and the 33- and 40-unit tops on 3 threads);
  // 256 × 160 and 64 × 600 by columns above the first layer, so that a step of the backward
  // pass by columns comes after one by rows and before one.
  const std::vector<Index> shapes[] = {{96, 64, 8}, {256, 160, 8}, {64, 64, 600}};
  for (const Case& c : cases)
    for (const std::vector<Index>& hidden : shapes) {
      // 60 rows of 200 inputs (enough work to split), 30 or 20 rows a thread: split by columns on 2
      // and 3 threads.
      NetworkSpec spec{.inputs = 200, .layers = {}, .loss = c.loss};
      for (const Index units : hidden)
        spec.layers.push_back({units, c.hidden});
      spec.layers.push_back(c.top);
      Network<double> one(spec);
      initialize(one, Init::he, rng);
      const Batch<double> X = random_batch(60, 200, rng);
      const Batch<double> Y = random_targets(c.loss, 60, c.top.units, rng);
      one.zero_grad();
      const Batch<double> out_one = one.forward(X);
      one.backward(Y);
      for (const int threads : {2, 3}) {
        std::vector<double> first;
        for (int run = 0; run < 2; ++run) {
          Network<double> net = one;
          net.set_threads(threads);
          net.zero_grad();
          const Batch<double> out = net.forward(X);
          ASSERT_LT((out - out_one).cwiseAbs().maxCoeff(), 1e-12) << threads;
          net.backward(Y);
          for (std::size_t i = 0; i < net.grads().size(); ++i)
            ASSERT_NEAR(net.grads()[i], one.grads()[i], 1e-12 * (1 + std::abs(one.grads()[i])))
                << to_string(c.hidden) << ", " << hidden[1] << "-unit second layer, " << threads
                << " threads, parameter " << i;
          if (run == 0)
            first.assign(net.grads().begin(), net.grads().end());
          else
            EXPECT_TRUE(std::equal(first.begin(), first.end(), net.grads().begin()));
        }
      }
    }
}

// Where the threads of a split by columns write: each its columns (a multiple of 16 floats) of
// every row of each layer's Z and A, and its ranges of the parameters and gradients. They share
// no cache line only if those matrices and buffers start on one (64 bytes): with Eigen's default
// alignment (16 bytes) each row had a line written by both threads, which then moved between
// the cores at every write (docs/design-notes.md, "Threads").
TEST(Network, WhatThreadsWriteStartsOnACacheLine) {
  Rng rng(3);
  Network<float> net({.inputs = 100,
                      .layers = {{64, Activation::relu},
                                 {48, Activation::tanh},
                                 {32, Activation::relu},
                                 {10, Activation::softmax}},
                      .loss = Loss::softmax_cross_entropy});
  initialize(net, Init::he, rng);
  net.set_threads(2);
  const Batch<float> X = random_batch(64, 100, rng).cast<float>();
  const Batch<float> Y = random_targets(Loss::softmax_cross_entropy, 64, 10, rng).cast<float>();
  net.zero_grad();
  net.forward(X);
  net.backward(Y);
  const auto line = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64; };
  EXPECT_EQ(line(net.params().data()), 0u);
  EXPECT_EQ(line(net.grads().data()), 0u);
  for (std::size_t l = 0; l < 4; ++l) {
    EXPECT_EQ(line(net.pre_activation(l).data()), 0u) << "layer " << l;
    EXPECT_EQ(line(net.activation(l).data()), 0u) << "layer " << l;
  }
}

TEST(Network, OneThreadByDefault) {
  Network<float> net({.inputs = 1, .layers = {{1, Activation::identity}}});
  EXPECT_EQ(net.threads(), 1);
  EXPECT_THROW(net.set_threads(0), ConfigError);
  EXPECT_THROW(net.set_threads(Network<float>::kMaxThreads + 1), ConfigError);
  net.set_threads(2);
  EXPECT_EQ(net.threads(), 2);
  EXPECT_EQ(Network<float>(net).threads(), 2);  // a copy keeps the count (with threads of its own)
}

// run_spans runs every span exactly once, span 0 on the calling thread, and returns only when
// all are done; the others run at the same time (each waits until all have started).
TEST(Threads, RunSpansRunsEachSpanOnceAtTheSameTime) {
  for (const std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(5)}) {
    std::vector<std::atomic<int>> runs(n);
    std::atomic<std::size_t> started{0}, together{0};
    std::thread::id first;
    detail::run_spans(n, [&](std::size_t i) {
      if (i == 0) first = std::this_thread::get_id();
      ++started;
      // Every span waits (10 s at most) until all have started: spans run one after another
      // would leave the first waiting in vain.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started.load() < n && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      together += started.load() == n;
      ++runs[i];
    });
    EXPECT_EQ(together.load(), n);
    for (std::size_t i = 0; i < n; ++i)
      EXPECT_EQ(runs[i].load(), 1) << "span " << i;
    if (n > 0) EXPECT_EQ(first, std::this_thread::get_id());
  }
}

// The large flat buffers (parameters, gradients, an optimizer's state) lie in whole 2 MiB blocks
// that ask for huge pages (MADV_HUGEPAGE: "hg" in the mapping's VmFlags), from 1 MiB up, where
// the kernel has the free blocks; and they are still plain vectors: values, copies, growth.
TEST(Memory, LargeBuffersAskForHugePages) {
  if (detail::free_huge_blocks() < 32) GTEST_SKIP() << "the kernel has no free 2 MiB blocks now";
  constexpr std::uintptr_t kBlock = std::uintptr_t(2) << 20;
  const auto whole_blocks = [&](const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) % kBlock == 0 &&
           vm_flags_of(p).find(" hg") != std::string::npos;
  };
  Buffer<float> big(300000, 1.5f);  // 1.2 MB
  EXPECT_TRUE(whole_blocks(big.data())) << vm_flags_of(big.data());
  EXPECT_EQ(std::count(big.begin(), big.end(), 1.5f), 300000);
  Buffer<float> copy = big;
  copy.resize(700000, 2.5f);  // grows into a new buffer of its own
  EXPECT_TRUE(whole_blocks(copy.data()));
  EXPECT_EQ(copy[299999], 1.5f);
  EXPECT_EQ(copy[699999], 2.5f);
  const Buffer<double> small(1000, 3.0);  // under 1 MiB: operator new's
  EXPECT_EQ(small[999], 3.0);

  // A 784-512-10 network: 407,050 parameters, 1.6 MB each of weights and gradients.
  Network<float> net(NetworkSpec{
      784, {{512, Activation::relu}, {10, Activation::softmax}}, Loss::softmax_cross_entropy});
  EXPECT_TRUE(whole_blocks(net.params().data())) << vm_flags_of(net.params().data());
  EXPECT_TRUE(whole_blocks(net.grads().data())) << vm_flags_of(net.grads().data());
}

// A network placed in memory it does not own (as a Group shares between processes) takes the
// parameters found there, writes its gradients there, and leaves the memory to its owner; a copy
// of it gets memory of its own.
TEST(Network, PlacedInMemoryItDoesNotOwn) {
  const NetworkSpec spec{3, {{4, Activation::tanh}, {2, Activation::identity}}, Loss::mse};
  Network<double> net(spec);
  Rng rng(5);
  initialize(net, Init::xavier, rng);
  const std::size_t n = net.params().size();
  std::vector<double> params(net.params().begin(), net.params().end());
  params[0] = 0.25;  // the placed memory's values win over the network's own
  std::vector<double> grads(n, 7.0);
  net.place(params.data(), grads.data());
  EXPECT_EQ(net.params().data(), params.data());
  EXPECT_EQ(net.grads().data(), grads.data());
  EXPECT_EQ(net.params()[0], 0.25);
  EXPECT_EQ(grads[1], 0.0);  // the network's gradients (zero) moved in
  Batch<double> X(2, 3), Y(2, 2);
  X << 0.1, -0.2, 0.3, 0.5, 0.4, -0.6;
  Y << 1, 0, 0, 1;
  Network<double> copy = net;  // memory of its own, the same values
  EXPECT_NE(copy.params().data(), params.data());
  EXPECT_TRUE(std::equal(copy.params().begin(), copy.params().end(), params.begin()));
  net.zero_grad();
  net.forward(X);
  net.backward(Y);
  copy.zero_grad();
  copy.forward(X);
  copy.backward(Y);
  EXPECT_TRUE(std::equal(copy.grads().begin(), copy.grads().end(), grads.begin()));
  EXPECT_NE(grads[0], 0.0);
  params[0] = -1.0;  // a write to the memory is a write to the network
  EXPECT_EQ(net.params()[0], -1.0);
}

TEST(Network, InvalidSpecsAreRejected) {
  EXPECT_THROW(Network<double>({.inputs = 0, .layers = {{1, Activation::sigmoid}}}), ConfigError);
  EXPECT_THROW(Network<double>({.inputs = 2, .layers = {}}), ConfigError);
  EXPECT_THROW(
      Network<double>({.inputs = 2, .layers = {{0, Activation::relu}, {1, Activation::sigmoid}}}),
      ConfigError);
  EXPECT_THROW(
      Network<double>(
          {.inputs = 2, .layers = {{3, Activation::relu}}, .loss = Loss::softmax_cross_entropy}),
      ConfigError);
}

}  // namespace
}  // namespace chainrule
