#include "chainrule/tutorial.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "chainrule/init.hpp"
#include "chainrule/random.hpp"

namespace chainrule {
namespace {

double sigmoid(double z) {
  return 1 / (1 + std::exp(-z));
}
double dsigmoid(double z) {
  return sigmoid(z) * (1 - sigmoid(z));
}

// The tutorial's network written out scalar by scalar, with its three bugs fixed: feedforward
// returns o1; w3, w4, b2 use ∂ŷ/∂h2 = w6·σ'(z_o1); w5, w6, b3 carry no extra ∂ŷ/∂h1.
struct ScalarTutorial {
  double w1, w2, w3, w4, b1, b2, w5, w6, b3;  // the flat-buffer order

  double feedforward(double x1, double x2) const {
    const double h1 = sigmoid(w1 * x1 + w2 * x2 + b1);
    const double h2 = sigmoid(w3 * x1 + w4 * x2 + b2);
    return sigmoid(w5 * h1 + w6 * h2 + b3);
  }

  void train_one(double x1, double x2, double y, double lr) {
    const double sum_h1 = w1 * x1 + w2 * x2 + b1, h1 = sigmoid(sum_h1);
    const double sum_h2 = w3 * x1 + w4 * x2 + b2, h2 = sigmoid(sum_h2);
    const double sum_o1 = w5 * h1 + w6 * h2 + b3, o1 = sigmoid(sum_o1);
    const double d_L_d_ypred = -2 * (y - o1);
    const double d_ypred_d_w5 = h1 * dsigmoid(sum_o1), d_ypred_d_w6 = h2 * dsigmoid(sum_o1);
    const double d_ypred_d_b3 = dsigmoid(sum_o1);
    const double d_ypred_d_h1 = w5 * dsigmoid(sum_o1), d_ypred_d_h2 = w6 * dsigmoid(sum_o1);
    const double d_h1_d_w1 = x1 * dsigmoid(sum_h1), d_h1_d_w2 = x2 * dsigmoid(sum_h1);
    const double d_h1_d_b1 = dsigmoid(sum_h1);
    const double d_h2_d_w3 = x1 * dsigmoid(sum_h2), d_h2_d_w4 = x2 * dsigmoid(sum_h2);
    const double d_h2_d_b2 = dsigmoid(sum_h2);
    w1 -= lr * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_w1;
    w2 -= lr * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_w2;
    b1 -= lr * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_b1;
    w3 -= lr * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_w3;
    w4 -= lr * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_w4;
    b2 -= lr * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_b2;
    w5 -= lr * d_L_d_ypred * d_ypred_d_w5;
    w6 -= lr * d_L_d_ypred * d_ypred_d_w6;
    b3 -= lr * d_L_d_ypred * d_ypred_d_b3;
  }
};

TEST(Tutorial, PeopleMatchTheShippedCsv) {
  std::ifstream in(std::string(CHAINRULE_SOURCE_DIR) + "/examples/people.csv");
  ASSERT_TRUE(in) << "examples/people.csv is missing";
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "name,weight,height,gender");
  for (const auto& p : tutorial::people()) {
    ASSERT_TRUE(std::getline(in, line));
    std::ostringstream expected;
    expected << p.name << ',' << p.weight << ',' << p.height << ',' << p.gender;
    EXPECT_EQ(line, expected.str());
  }
}

TEST(Tutorial, LibraryTrainingEqualsTheScalarTutorial) {
  const tutorial::Options options;  // default seed, lr 0.1, 1000 epochs
  Network<double> init(tutorial::spec());
  Rng rng(options.seed);
  initialize(init, Init::normal, rng);
  ScalarTutorial s;
  std::copy(init.params().begin(), init.params().end(), &s.w1);
  for (int epoch = 0; epoch < options.epochs; ++epoch)
    for (const auto& p : tutorial::people())
      s.train_one(p.weight, p.height, p.gender, options.lr);

  const tutorial::Result r = tutorial::train(options);
  const double* expected = &s.w1;
  for (int i = 0; i < 9; ++i)
    EXPECT_NEAR(r.net.params()[i], expected[i], 1e-9 * std::max(1.0, std::abs(expected[i])))
        << "parameter " << i;
  double loss = 0;
  for (const auto& p : tutorial::people())
    loss += std::pow(p.gender - s.feedforward(p.weight, p.height), 2) / 4;
  EXPECT_NEAR(r.final_loss, loss, 1e-12);
}

TEST(Tutorial, DefaultSeedConvergesAndClassifiesEveryone) {
  std::vector<std::pair<int, double>> reports;
  tutorial::Result r =
      tutorial::train({}, [&](int epoch, double loss) { reports.emplace_back(epoch, loss); });
  EXPECT_LT(r.final_loss, 0.01);
  ASSERT_EQ(reports.size(), 100u);  // epochs 0, 10, ..., 990
  EXPECT_EQ(reports.front().first, 0);
  EXPECT_EQ(reports.back().first, 990);
  EXPECT_GT(reports.front().second, reports.back().second);
  for (const auto& p : tutorial::people()) {
    Batch<double> x(1, 2);
    x << p.weight, p.height;
    EXPECT_EQ(r.net.forward(x)(0, 0) >= 0.5, p.gender == 1) << p.name;
  }
  const auto& [emily, frank] = tutorial::newcomers();
  Batch<double> x(1, 2);
  x << emily.weight, emily.height;
  EXPECT_GT(r.net.forward(x)(0, 0), 0.5);
  x << frank.weight, frank.height;
  EXPECT_LT(r.net.forward(x)(0, 0), 0.5);
}

// The figure quoted in docs/backprop.md and README.md: seeds 1..100, the tutorial's recipe.
TEST(Tutorial, HalfOfOneHundredSeedsConverge) {
  int converged = 0;
  for (std::uint64_t seed = 1; seed <= 100; ++seed)
    converged += tutorial::train({.seed = seed}).final_loss < 0.01;
  EXPECT_EQ(converged, 50);
}

// The tutorial's second bug: updating w3 with ∂ŷ/∂h1 (= w5·σ') instead of ∂ŷ/∂h2 (= w6·σ').
// Against a finite difference, only the corrected chain is right whenever w5 ≠ w6.
TEST(Tutorial, TheTutorialsW3UpdateIsWrong) {
  ScalarTutorial s{0.3, -0.8, 1.2, 0.4, 0.1, -0.2, 1.5, -0.7, 0.05};
  const double x1 = -2, x2 = 5, y = 1;
  auto loss = [&](const ScalarTutorial& t) { return std::pow(y - t.feedforward(x1, x2), 2); };
  const double h = 1e-6;
  ScalarTutorial up = s, down = s;
  up.w3 += h;
  down.w3 -= h;
  const double fd = (loss(up) - loss(down)) / (2 * h);

  const double sum_h2 = s.w3 * x1 + s.w4 * x2 + s.b2;
  const double h1 = sigmoid(s.w1 * x1 + s.w2 * x2 + s.b1), h2 = sigmoid(sum_h2);
  const double sum_o1 = s.w5 * h1 + s.w6 * h2 + s.b3;
  const double dL = -2 * (y - sigmoid(sum_o1));
  const double correct = dL * s.w6 * dsigmoid(sum_o1) * x1 * dsigmoid(sum_h2);
  const double buggy = dL * s.w5 * dsigmoid(sum_o1) * x1 * dsigmoid(sum_h2);
  EXPECT_NEAR(correct, fd, 1e-8 * std::abs(fd));
  EXPECT_GT(std::abs(buggy - fd), 0.5 * std::abs(fd));
}

}  // namespace
}  // namespace chainrule
