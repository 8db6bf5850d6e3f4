// chainrule's trainer against PyTorch (Debian's python3-torch): the same 3-layer network, the same
// starting weights and batches, float64. The trained weights agree to 1e-9 relative.
#include <gtest/gtest.h>

#include <unistd.h>
#include "temp_dir.hpp"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chainrule/init.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {
namespace {

struct Case {
  const char* name;
  OptimizerOptions optimizer;
  Loss loss;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class TorchCrossCheck : public ::testing::TestWithParam<Case> {};

TEST_P(TorchCrossCheck, TrainedWeightsEqualPyTorchs) {
  const Case& c = GetParam();
  const Index K = c.loss == Loss::binary_cross_entropy ? 1 : 3;
  const Activation out = c.loss == Loss::softmax_cross_entropy  ? Activation::softmax
                         : c.loss == Loss::binary_cross_entropy ? Activation::sigmoid
                                                                : Activation::tanh;
  const NetworkSpec spec{.inputs = 5,
                         .layers = {{8, Activation::tanh}, {6, Activation::relu}, {K, out}},
                         .loss = c.loss};
  Rng rng(11);
  Network<double> net(spec);
  initialize(net, Init::xavier, rng);
  Batch<double> X(22, 5), Y = Batch<double>::Zero(22, K);
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = rng.normal();
  for (Index n = 0; n < 22; ++n) {
    if (c.loss == Loss::mse)
      Y.row(n) = Eigen::RowVector3d(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1));
    else if (K == 1)
      Y(n, 0) = double(rng.below(2));
    else
      Y(n, Index(rng.below(3))) = 1;
  }

  using nlohmann::json;
  json layers = json::array();
  for (const auto& l : spec.layers)
    layers.push_back({{"units", l.units}, {"activation", to_string(l.activation)}});
  std::vector<std::vector<double>> xs, ys;
  for (Index n = 0; n < 22; ++n) {
    xs.emplace_back(X.row(n).begin(), X.row(n).end());
    ys.emplace_back(Y.row(n).begin(), Y.row(n).end());
  }
  const json j = {{"inputs", 5},
                  {"layers", layers},
                  {"loss", to_string(spec.loss)},
                  {"optimizer",
                   {{"kind", to_string(c.optimizer.kind)},
                    {"lr", c.optimizer.learning_rate()},
                    {"momentum", c.optimizer.momentum},
                    {"nesterov", c.optimizer.nesterov},
                    {"weight_decay", c.optimizer.decay()}}},
                  {"epochs", 4},
                  {"batch", 6},
                  {"X", xs},
                  {"Y", ys},
                  {"params", std::vector<double>(net.params().begin(), net.params().end())}};
  const std::string base = chainrule::test::temp_file(std::string("torch_") + c.name);
  std::ofstream(base + ".json") << j.dump();
  const std::string cmd = "/usr/bin/python3 " CHAINRULE_SOURCE_DIR "/tests/torch_reference.py " +
                          base + ".json " + base + ".out.json";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json torch_result = json::parse(std::ifstream(base + ".out.json"));
  const auto expected = torch_result["params"].get<std::vector<double>>();

  TrainOptions o;
  o.epochs = 4;
  o.batch = 6;  // 22 rows: batches of 6, 6, 6 and 4
  o.shuffle = false;
  o.optimizer = c.optimizer;
  const std::vector<double> start(net.params().begin(), net.params().end());
  train(net, X, Y, Batch<double>(0, 5), Batch<double>(0, K), o, rng);
  ASSERT_EQ(expected.size(), std::size_t(net.num_params()));
  double moved = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(net.params()[i], expected[i], 1e-9 * std::max(1.0, std::abs(expected[i])))
        << "parameter " << i;
    moved += std::abs(expected[i] - start[i]);
  }
  EXPECT_GT(moved, 1e-2);  // training really changed the weights
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, TorchCrossCheck,
    ::testing::Values(
        Case{"sgd_momentum",
             {.kind = OptimizerKind::sgd, .lr = 0.1, .momentum = 0.9},
             Loss::softmax_cross_entropy},
        Case{"sgd_nesterov_decay",
             {.kind = OptimizerKind::sgd,
              .lr = 0.05,
              .momentum = 0.8,
              .nesterov = true,
              .weight_decay = 0.01},
             Loss::mse},
        Case{"adam", {.kind = OptimizerKind::adam, .lr = 0.01}, Loss::softmax_cross_entropy},
        Case{"adam_decay",
             {.kind = OptimizerKind::adam, .lr = 0.01, .weight_decay = 0.1},
             Loss::binary_cross_entropy},
        Case{"adamw", {.kind = OptimizerKind::adamw, .lr = 0.01}, Loss::softmax_cross_entropy},
        Case{"rmsprop", {.kind = OptimizerKind::rmsprop, .lr = 0.01, .momentum = 0.5}, Loss::mse}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace chainrule
