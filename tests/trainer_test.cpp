#include "chainrule/trainer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"

namespace chainrule {
namespace {

Batch<double> random_batch(Index rows, Index cols, Rng& rng) {
  Batch<double> B(rows, cols);
  for (Index i = 0; i < B.size(); ++i)
    B.data()[i] = rng.normal();
  return B;
}

const NetworkSpec kSpec{
    .inputs = 3, .layers = {{5, Activation::tanh}, {2, Activation::identity}}, .loss = Loss::mse};

// Full-batch, unshuffled training is the canonical loop written out.
TEST(Trainer, EqualsTheCanonicalLoop) {
  Rng rng(1);
  const Batch<double> X = random_batch(12, 3, rng), Y = random_batch(12, 2, rng);
  Network<double> a(kSpec);
  initialize(a, Init::xavier, rng);
  Network<double> b = a;
  TrainOptions o;
  o.epochs = 7;
  o.batch = 5;  // batches of 5, 5 and the partial 2
  o.shuffle = false;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.05, .momentum = 0.9};
  Rng unused(0);
  const TrainResult r = train(a, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, unused);
  EXPECT_EQ(r.history.size(), 7u);

  Sgd<double> sgd({.lr = 0.05, .momentum = 0.9});
  for (int e = 0; e < 7; ++e)
    for (Index first = 0; first < 12; first += 5) {
      const Index n = std::min<Index>(5, 12 - first);
      b.zero_grad();
      b.forward(X.middleRows(first, n));
      b.backward(Y.middleRows(first, n));
      sgd.step(b.params(), b.grads());
    }
  for (Index i = 0; i < a.num_params(); ++i)
    EXPECT_EQ(a.params()[i], b.params()[i]);
}

TEST(Trainer, SameSeedSameModelAndShufflingMatters) {
  Rng data(2);
  const Batch<double> X = random_batch(30, 3, data), Y = random_batch(30, 2, data);
  auto run = [&](std::uint64_t seed, bool shuffle) {
    Rng rng(seed);
    Network<double> net(kSpec);
    initialize(net, Init::xavier, rng);
    TrainOptions o;
    o.epochs = 5;
    o.batch = 4;
    o.shuffle = shuffle;
    o.dropout = 0.2;
    train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng);
    return std::vector<double>(net.params().begin(), net.params().end());
  };
  EXPECT_EQ(run(5, true), run(5, true));
  EXPECT_NE(run(5, true), run(5, false));
  EXPECT_NE(run(5, true), run(6, true));
}

// Early stopping: with a learning rate that makes validation worse after a while, training stops
// `patience` epochs after the best one and the kept weights are the best epoch's.
TEST(Trainer, EarlyStoppingRestoresTheBestWeights) {
  Rng rng(3);
  const Batch<double> X = random_batch(20, 3, rng), Y = random_batch(20, 2, rng);
  const Batch<double> Xv = random_batch(10, 3, rng), Yv = random_batch(10, 2, rng);
  Network<double> net(kSpec);
  initialize(net, Init::xavier, rng);
  TrainOptions o;
  o.epochs = 500;
  o.batch = 20;
  o.patience = 5;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.3};
  std::vector<std::vector<double>> snapshots;
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochReport&) {
    snapshots.emplace_back(net.params().begin(), net.params().end());
  };
  const TrainResult r = train(net, X, Y, Xv, Yv, o, rng, cb);
  ASSERT_TRUE(r.stopped_early);  // random targets: validation stops improving
  EXPECT_EQ(r.history.size(), std::size_t(r.best_epoch + 5));
  double best = 1e300;
  for (const auto& h : r.history)
    best = std::min(best, *h.val_loss);
  EXPECT_EQ(*r.history[std::size_t(r.best_epoch - 1)].val_loss, best);
  EXPECT_EQ(std::vector<double>(net.params().begin(), net.params().end()),
            snapshots[std::size_t(r.best_epoch - 1)]);
  net.forward(Xv);
  EXPECT_DOUBLE_EQ(net.loss(Yv), best);
}

// Dropout: kept activations are scaled by 1/(1 - p), and backward goes through the same mask
// (central differences with the same mask, redrawn from a copy of the generator).
TEST(Trainer, DropoutGradientMatchesFiniteDifferences) {
  Rng rng(4);
  Network<double> net(
      {.inputs = 4,
       .layers = {{6, Activation::sigmoid}, {6, Activation::relu}, {3, Activation::softmax}},
       .loss = Loss::softmax_cross_entropy});
  initialize(net, Init::normal, rng);
  net.set_dropout_rate(0.5);
  const Batch<double> X = random_batch(5, 4, rng);
  Batch<double> Y = Batch<double>::Zero(5, 3);
  for (Index n = 0; n < 5; ++n)
    Y(n, n % 3) = 1;
  const Rng masks = rng;
  Rng r0 = masks;
  net.zero_grad();
  net.forward(X, &r0);
  net.backward(Y);
  int zeros = 0;
  double norm = 0;
  for (Index i = 0; i < net.num_params(); ++i) {
    const double saved = net.params()[i], h = 1e-6;
    Rng up_rng = masks, down_rng = masks;
    net.params()[i] = saved + h;
    net.forward(X, &up_rng);
    const double up = net.loss(Y);
    net.params()[i] = saved - h;
    net.forward(X, &down_rng);
    const double down = net.loss(Y);
    net.params()[i] = saved;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(net.grads()[i], fd, 1e-6 * std::abs(fd) + 1e-9) << i;
    zeros += net.grads()[i] == 0;
    norm += std::abs(net.grads()[i]);
  }
  EXPECT_GT(norm, 1e-3);
  EXPECT_GT(zeros, 0);  // dropped units pass no gradient to their incoming weights
}

TEST(Trainer, MetricsByHand) {
  Batch<double> P(4, 1), Y(4, 1);
  P << 0.9, 0.2, 0.6, 0.4;
  Y << 1, 0, 0, 0;
  EXPECT_DOUBLE_EQ(accuracy<double>(P, Y), 0.75);
  Batch<double> P3(2, 3), Y3(2, 3);
  P3 << 0.1, 0.7, 0.2, 0.5, 0.3, 0.2;
  Y3 << 0, 1, 0, 0, 0, 1;
  EXPECT_DOUBLE_EQ(accuracy<double>(P3, Y3), 0.5);
  Batch<double> Pr(3, 1), Yr(3, 1);
  Pr << 1, 2, 4;
  Yr << 1, 2, 3;  // SSE 1, SST 2
  EXPECT_DOUBLE_EQ(r2_score<double>(Pr, Yr), 0.5);
}

TEST(Trainer, DivergenceStopsWithEpochAndBatch) {
  Rng rng(1);
  const Batch<double> X = random_batch(16, 3, rng) * 100.0, Y = random_batch(16, 2, rng) * 100.0;
  Network<double> net({.inputs = 3, .layers = {{8, Activation::relu}, {2, Activation::identity}}});
  initialize(net, Init::he, rng);
  TrainOptions o;
  o.batch = 4;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 10};  // far too large: the weights blow up
  try {
    train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng);
    FAIL() << "no divergence detected";
  } catch (const DivergenceError& e) {
    EXPECT_TRUE(std::regex_search(
        std::string(e.what()),
        std::regex("^training diverged at epoch \\d+, batch \\d+: the loss is (NaN|infinite)")))
        << e.what();
    EXPECT_NE(std::string(e.what()).find("try a lower learning rate"), std::string::npos);
  }
}

TEST(Trainer, OutOfRangeOptionsAreRejected) {
  Network<double> net(kSpec);
  Rng rng(1);
  const Batch<double> X = Batch<double>::Zero(2, 3), Y = Batch<double>::Zero(2, 2);
  TrainOptions o;
  o.batch = 0;
  EXPECT_THROW(train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng), ConfigError);
  o.batch = 1;
  o.epochs = 0;
  EXPECT_THROW(train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng), ConfigError);
  o.epochs = 1;
  o.dropout = 1.0;
  EXPECT_THROW(train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng), ConfigError);
}

}  // namespace
}  // namespace chainrule
