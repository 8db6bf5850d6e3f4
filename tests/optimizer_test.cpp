#include "chainrule/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>
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

// Adam's first step moves every parameter by lr·g/(|g| + eps): m̂ = g and sqrt(v̂) = |g|.
// Second step by hand, β1 = 0.9, β2 = 0.999, g = 0.5 then -1:
//   m2 = 0.9·0.05 - 0.1 = -0.055,  v2 = 0.999·0.00025 + 0.001 = 0.00124975
//   p2 = p1 - 0.1/(1 - 0.81) · m2 / (sqrt(v2)/sqrt(1 - 0.998001) + 1e-8)
TEST(Adam, MatchesHandComputedSteps) {
  Adam<double> adam({.lr = 0.1});
  std::vector<double> p{1.0};
  adam.step(p, std::vector<double>{0.5});
  const double p1 = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8);
  EXPECT_NEAR(p[0], p1, 1e-15);
  adam.step(p, std::vector<double>{-1.0});
  const double m2 = 0.9 * 0.05 - 0.1, v2 = 0.999 * 0.00025 + 0.001;
  const double p2 = p1 - 0.1 / (1 - 0.81) * m2 / (std::sqrt(v2) / std::sqrt(1 - 0.998001) + 1e-8);
  EXPECT_NEAR(p[0], p2, 1e-15);
  EXPECT_EQ(adam.steps(), 2);
}

// Adam adds wd·p to the gradient; AdamW first multiplies p by (1 - lr·wd).
TEST(Adam, WeightDecayCoupledAndDecoupled) {
  Adam<double> adam({.lr = 0.1, .weight_decay = 0.5});
  std::vector<double> p{2.0};
  adam.step(p, std::vector<double>{0.5});  // g = 0.5 + 0.5·2 = 1.5: a step of lr·1.5/(1.5 + eps)
  EXPECT_NEAR(p[0], 2.0 - 0.1 * 1.5 / (1.5 + 1e-8), 1e-15);
  Adam<double> adamw({.lr = 0.1, .weight_decay = 0.5, .decoupled = true});
  std::vector<double> q{2.0};
  adamw.step(q, std::vector<double>{0.5});  // q = 2·(1 - 0.05) = 1.9, then the plain Adam step
  EXPECT_NEAR(q[0], 1.9 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
}

// The library runs Adam's loop in the widest version the CPU has (AVX-512 where it is there);
// each element must still get exactly the bits of the formula as this test's own loop computes
// it in the build's baseline instructions, over three steps, for every weight decay mode, and in
// a length that leaves a remainder after every vector width. (It failed while the AVX-512
// version fused multiplies and adds.)
template <class T>
void adam_matches_one_element_at_a_time(double wd, bool decoupled) {
  const std::size_t n = 1000 + 13;
  std::vector<T> p(n), q(n), m(n, T(0)), v(n, T(0)), g(n);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = q[i] = T(std::sin(double(i) * 0.7)) * T(0.3);
  const AdamOptions o{.lr = 0.01, .weight_decay = wd, .decoupled = decoupled};
  Adam<T> adam(o);
  for (int t = 1; t <= 3; ++t) {
    for (std::size_t i = 0; i < n; ++i)
      g[i] = T(std::cos(double(i) * 1.3 + t)) * T(0.01 * t);
    adam.step(p, g);
    const T b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.eps), wdt = T(wd);
    const T step_size = T(o.lr / (1 - std::pow(o.beta1, double(t))));
    const T bc2_sqrt = T(std::sqrt(1 - std::pow(o.beta2, double(t))));
    const T decay = T(1 - o.lr * wd);
    for (std::size_t i = 0; i < n; ++i) {
      if (decoupled) q[i] *= decay;
      const T gi = decoupled || wd == 0 ? g[i] : g[i] + wdt * q[i];
      m[i] = m[i] * b1 + gi * (T(1) - b1);
      v[i] = v[i] * b2 + gi * gi * (T(1) - b2);
      const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      q[i] -= step_size * m[i] / denom;
    }
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(p[i], q[i]) << "step " << t << ", element " << i;
  }
}

TEST(Adam, EveryElementHasTheBitsOfTheFormulaInFloatAndDouble) {
  for (const auto& [wd, decoupled] : {std::pair{0.0, false}, {0.1, false}, {0.1, true}}) {
    adam_matches_one_element_at_a_time<float>(wd, decoupled);
    adam_matches_one_element_at_a_time<double>(wd, decoupled);
  }
}

// SGD runs in the widest version the CPU has too: every element gets the bits of the formula as
// this test's own loop computes it, over three steps (the first sets the velocity), with and
// without momentum, Nesterov and weight decay, in a length that leaves a remainder and in a small
// network's length (under run_wide_n's 64, the loop runs in the caller).
template <class T>
void sgd_matches_one_element_at_a_time(const SgdOptions& o, std::size_t n) {
  std::vector<T> p(n), q(n), vel(n, T(0)), g(n);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = q[i] = T(std::sin(double(i) * 0.7)) * T(0.3);
  Sgd<T> sgd(o);
  const T lr = T(o.lr), mu = T(o.momentum), wd = T(o.weight_decay);
  for (int t = 1; t <= 3; ++t) {
    for (std::size_t i = 0; i < n; ++i)
      g[i] = T(std::cos(double(i) * 1.3 + t)) * T(0.01 * t);
    sgd.step(p, g);
    for (std::size_t i = 0; i < n; ++i) {
      T gi = o.weight_decay == 0 ? g[i] : g[i] + wd * q[i];
      if (o.momentum != 0) {
        vel[i] = t == 1 ? gi : mu * vel[i] + gi;
        gi = o.nesterov ? gi + mu * vel[i] : vel[i];
      }
      q[i] -= lr * gi;
    }
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(p[i], q[i]) << "step " << t << ", element " << i;
  }
}

TEST(Sgd, EveryElementHasTheBitsOfTheFormulaInFloatAndDouble) {
  for (const SgdOptions& o :
       {SgdOptions{.lr = 0.1}, SgdOptions{.lr = 0.1, .weight_decay = 0.01},
        SgdOptions{.lr = 0.05, .momentum = 0.9},
        SgdOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01}}) {
    for (const std::size_t n : {std::size_t(1000 + 13), std::size_t(9)}) {
      sgd_matches_one_element_at_a_time<float>(o, n);
      sgd_matches_one_element_at_a_time<double>(o, n);
    }
  }
}

// RMSprop: s = 0.01·g², p -= lr·g/(sqrt(s) + eps) = lr·g/(0.1|g| + eps) on the first step.
TEST(Rmsprop, MatchesHandComputedSteps) {
  Rmsprop<double> rms({.lr = 0.01});
  std::vector<double> p{1.0};
  rms.step(p, std::vector<double>{2.0});
  EXPECT_NEAR(p[0], 1.0 - 0.01 * 2.0 / (0.2 + 1e-8), 1e-15);
  rms.step(p, std::vector<double>{1.0});  // s = 0.99·0.04 + 0.01 = 0.0496
  EXPECT_NEAR(p[0], 1.0 - 0.01 * 2.0 / (0.2 + 1e-8) - 0.01 / (std::sqrt(0.0496) + 1e-8), 1e-15);
}

// update_streaming (the block of a process whose parameters others read in place) gives update's
// bits for every optimizer, in float and double, over blocks that start and end off a 16-byte
// boundary and span several of its 4 KiB pages, and leaves the parameters outside the block
// alone: two optimizers of the same options, one updating each block one way and the other the
// other way, three steps.
template <class T>
void streaming_matches_update(const OptimizerOptions& o) {
  const std::size_t n = 5000;
  std::vector<T> p(n), q(n), g(n);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = q[i] = T(std::sin(double(i) * 0.7)) * T(0.3);
  const std::vector<T> initial = p;
  const auto plain = make_optimizer<T>(o), streamed = make_optimizer<T>(o);
  const std::pair<std::size_t, std::size_t> blocks[] = {{0, 3}, {3, 1027}, {1027, 4999}, {4999, n}};
  for (int t = 1; t <= 3; ++t) {
    for (std::size_t i = 0; i < n; ++i)
      g[i] = T(std::cos(double(i) * 1.3 + t)) * T(0.01 * t);
    plain->begin_step(n);
    streamed->begin_step(n);
    for (const auto& [b, e] : blocks) {
      const std::vector<T> before = q;
      plain->update(p, g, b, e);
      streamed->update_streaming(q, g, b, e);
      for (std::size_t i = 0; i < n; ++i)
        if (i < b || i >= e) ASSERT_EQ(q[i], before[i]) << "outside " << b << ".." << e;
    }
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(p[i], q[i]) << to_string(o.kind) << ", step " << t << ", element " << i;
    ASSERT_NE(q[n / 2], initial[n / 2]) << "the streamed update moved nothing";
  }
}

TEST(Optimizers, StreamedUpdateHasTheBitsOfUpdate) {
  for (const OptimizerKind kind :
       {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::rmsprop}) {
    OptimizerOptions o;
    o.kind = kind;
    o.lr = 0.05;
    if (kind == OptimizerKind::sgd || kind == OptimizerKind::rmsprop) o.momentum = 0.9;
    if (kind != OptimizerKind::adamw) o.weight_decay = 0.01;
    streaming_matches_update<float>(o);
    streaming_matches_update<double>(o);
  }
}

TEST(Optimizers, FactoryDefaultsFollowPyTorch) {
  OptimizerOptions o;
  o.kind = OptimizerKind::adamw;
  EXPECT_EQ(o.learning_rate(), 1e-3);
  EXPECT_EQ(o.decay(), 1e-2);
  o.kind = OptimizerKind::sgd;
  EXPECT_EQ(o.learning_rate(), 1e-2);
  EXPECT_EQ(o.decay(), 0.0);
  o.kind = OptimizerKind::adam;
  o.momentum = 0.9;
  EXPECT_THROW(make_optimizer<double>(o), ConfigError);
  EXPECT_THROW(parse_optimizer("lbfgs"), ConfigError);
}

TEST(Schedule, StepAndCosine) {
  const Schedule step{.kind = ScheduleKind::step, .step_size = 10, .gamma = 0.5};
  EXPECT_DOUBLE_EQ(step.at(0.1, 0), 0.1);
  EXPECT_DOUBLE_EQ(step.at(0.1, 9), 0.1);
  EXPECT_DOUBLE_EQ(step.at(0.1, 10), 0.05);
  EXPECT_DOUBLE_EQ(step.at(0.1, 25), 0.025);
  const Schedule cosine{.kind = ScheduleKind::cosine, .total_epochs = 100};
  EXPECT_DOUBLE_EQ(cosine.at(0.1, 0), 0.1);
  EXPECT_NEAR(cosine.at(0.1, 50), 0.05, 1e-15);
  EXPECT_NEAR(cosine.at(0.1, 100), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(Schedule{}.at(0.3, 77), 0.3);
}

}  // namespace
}  // namespace chainrule
