#include "chainrule/trainer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <regex>
#include <thread>

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

// A run stopped after any batch (or checkpointed at an epoch's end) and continued from its
// TrainState, in a fresh network and generator, ends bit for bit where the uninterrupted run ends:
// every optimizer, float weights, shuffling, dropout, validation, early stopping, a schedule.
template <class T>
void expect_resume_is_exact(const OptimizerOptions& optimizer) {
  Rng data(7);
  const Batch<T> X = random_batch(23, 3, data).cast<T>(), Y = random_batch(23, 2, data).cast<T>();
  const Batch<T> Xv = random_batch(9, 3, data).cast<T>(), Yv = random_batch(9, 2, data).cast<T>();
  TrainOptions o;
  o.epochs = 6;
  o.batch = 5;  // 5 batches per epoch, the last one partial
  o.dropout = 0.25;
  o.patience = 3;
  o.optimizer = optimizer;
  o.schedule = {.kind = ScheduleKind::step, .step_size = 2, .gamma = 0.5};
  const auto fresh = [](Rng& rng) {
    Network<T> net(kSpec);
    initialize(net, Init::xavier, rng);
    return net;
  };
  Rng rng(11);
  Network<T> whole = fresh(rng);
  const TrainResult full = train(whole, X, Y, Xv, Yv, o, rng);

  const int total = int(full.history.size()) * 5;  // early stopping may end it before o.epochs
  for (const int stop_after : {1, 4, 5, 6, 17, total - 1}) {
    SCOPED_TRACE("stopped after batch " + std::to_string(stop_after));
    std::atomic<bool> stop{false};
    TrainOptions so = o;
    so.stop = &stop;
    int seen = 0;
    std::optional<TrainState> state;
    TrainCallbacks cb;
    cb.on_batch = [&](const BatchProgress&) { stop = ++seen == stop_after; };
    cb.on_checkpoint = [&](const TrainState& s) { state = s; };
    Rng r1(11);
    Network<T> first = fresh(r1);
    const TrainResult part = train(first, X, Y, Xv, Yv, so, r1, cb);
    ASSERT_TRUE(part.interrupted);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->epoch * 5 + state->batch, stop_after);

    Rng r2(999);  // the state sets the generator, the weights and the optimizer
    Network<T> second(kSpec);
    const TrainResult rest = train(second, X, Y, Xv, Yv, o, r2, {}, &*state);
    EXPECT_FALSE(rest.interrupted);
    for (Index i = 0; i < whole.num_params(); ++i)
      ASSERT_EQ(second.params()[i], whole.params()[i]) << "parameter " << i;
    ASSERT_EQ(rest.history.size(), full.history.size());
    for (std::size_t e = 0; e < full.history.size(); ++e) {
      EXPECT_EQ(rest.history[e].train_loss, full.history[e].train_loss);
      EXPECT_EQ(rest.history[e].val_loss, full.history[e].val_loss);
    }
    EXPECT_EQ(rest.best_epoch, full.best_epoch);
    EXPECT_EQ(rest.stopped_early, full.stopped_early);
  }

  // Periodic checkpoints at epoch ends continue exactly too.
  TrainOptions po = o;
  po.checkpoint_every = 2;
  std::vector<TrainState> states;
  TrainCallbacks cb;
  cb.on_checkpoint = [&](const TrainState& s) { states.push_back(s); };
  Rng r3(11);
  Network<T> periodic = fresh(r3);
  train(periodic, X, Y, Xv, Yv, po, r3, cb);
  ASSERT_FALSE(states.empty());
  for (const TrainState& s : states) {
    EXPECT_EQ(s.batch, 0);
    EXPECT_EQ(s.epoch % 2, 0);
    Rng r4(0);
    Network<T> net(kSpec);
    train(net, X, Y, Xv, Yv, o, r4, {}, &s);
    for (Index i = 0; i < whole.num_params(); ++i)
      ASSERT_EQ(net.params()[i], whole.params()[i]);
  }
}

TEST(Trainer, ResumeIsExactForEveryOptimizer) {
  const std::vector<OptimizerOptions> optimizers = {
      {.kind = OptimizerKind::sgd, .lr = 0.05, .momentum = 0.9, .nesterov = true},
      {.kind = OptimizerKind::sgd, .lr = 0.05},
      {.kind = OptimizerKind::adam, .lr = 0.01},
      {.kind = OptimizerKind::adamw, .lr = 0.01},
      {.kind = OptimizerKind::rmsprop, .lr = 0.01, .momentum = 0.5},
  };
  for (const OptimizerOptions& opt : optimizers) {
    SCOPED_TRACE(std::string(to_string(opt.kind)));
    expect_resume_is_exact<float>(opt);
    expect_resume_is_exact<double>(opt);
  }
}

TEST(Trainer, ResumeRejectsAStateOfOtherData) {
  Rng rng(1);
  const Batch<double> X = random_batch(10, 3, rng), Y = random_batch(10, 2, rng);
  Network<double> net(kSpec);
  TrainState s;
  s.order.assign(7, 0);  // for 7 rows, not 10
  s.params.assign(std::size_t(net.num_params()), 0.0);
  s.best_params = s.params;
  s.rng = rng.state();
  TrainOptions o;
  EXPECT_THROW(train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng, {}, &s),
               ConfigError);
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

// One-sample steps with nothing to run between them go through Trainer's loop of steps in a row
// (run_samples); a progress callback sends them through run_batch one at a time. Both give the
// same weights and losses bit for bit, and the same stop: a flag set before the first step
// interrupts after it, a loss that blows up names its epoch and batch.
TEST(Trainer, OneSampleStepsInARowEqualStepsOneByOne) {
  Rng data_rng(3);
  const Batch<double> X = random_batch(10, 3, data_rng), Y = random_batch(10, 2, data_rng);
  TrainOptions o;
  o.batch = 1;
  o.epochs = 3;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.05, .momentum = 0.9};
  const auto run = [&](const TrainOptions& options, const TrainCallbacks& cb) {
    Rng rng(5);
    Network<double> net(kSpec);
    initialize(net, Init::xavier, rng);
    const TrainResult r =
        train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), options, rng, cb);
    return std::pair(std::vector<double>(net.params().begin(), net.params().end()), r);
  };
  int batches = 0;
  TrainCallbacks progress;
  progress.on_batch = [&](const BatchProgress&) { ++batches; };
  const auto [in_a_row, a] = run(o, {});
  const auto [one_by_one, b] = run(o, progress);
  EXPECT_EQ(batches, 30);
  EXPECT_EQ(in_a_row, one_by_one);
  ASSERT_EQ(a.history.size(), 3u);
  ASSERT_EQ(b.history.size(), 3u);
  for (std::size_t e = 0; e < 3; ++e)
    EXPECT_EQ(a.history[e].train_loss, b.history[e].train_loss);

  std::atomic<bool> stop{true};
  TrainOptions so = o;
  so.stop = &stop;
  std::optional<TrainState> state;
  TrainCallbacks keep;
  keep.on_checkpoint = [&](const TrainState& s) { state = s; };
  EXPECT_TRUE(run(so, keep).second.interrupted);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->epoch, 0);
  EXPECT_EQ(state->batch, 1);

  TrainOptions big = o;
  big.optimizer.lr = 1e6;
  big.optimizer.momentum = 0;
  const Batch<double> Y_far = Y * 1e6;
  const auto divergence = [&](const TrainCallbacks& cb) -> std::string {
    Rng rng(5);
    Network<double> net(kSpec);
    initialize(net, Init::xavier, rng);
    try {
      train(net, X, Y_far, Batch<double>(0, 3), Batch<double>(0, 2), big, rng, cb);
    } catch (const DivergenceError& e) {
      return e.what();
    }
    return "no divergence detected";
  };
  const std::string message = divergence({});
  EXPECT_TRUE(std::regex_search(
      message,
      std::regex("^training diverged at epoch \\d+, batch \\d+: the loss is (NaN|infinite)")))
      << message;
  EXPECT_EQ(message, divergence(progress));
}

// Epochs of a few µs are timed in groups (one reading of the clock costs about a tenth of such an
// epoch), each epoch its group's mean: every epoch still gets its seconds, also when a run is
// interrupted inside a group, and they add up to no more than the run.
TEST(Trainer, ShortEpochsAreTimedInGroups) {
  Rng data(4);
  const Batch<double> X = random_batch(4, 3, data), Y = random_batch(4, 2, data);
  TrainOptions o;
  o.batch = 1;
  o.epochs = 1000;
  o.shuffle = false;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.01};
  const auto run = [&](const TrainOptions& options, const TrainCallbacks& cb) {
    Rng rng(5);
    Network<double> net(kSpec);
    initialize(net, Init::xavier, rng);
    return train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), options, rng, cb);
  };
  const auto start = std::chrono::steady_clock::now();
  const TrainResult r = run(o, {});
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.history.size(), 1000u);
  double sum = 0;
  int same_as_next = 0;
  for (std::size_t e = 0; e < r.history.size(); ++e) {
    EXPECT_GT(r.history[e].seconds, 0) << "epoch " << e + 1;
    sum += r.history[e].seconds;
    same_as_next += e + 1 < r.history.size() && r.history[e].seconds == r.history[e + 1].seconds;
  }
  EXPECT_LE(sum, wall);
  // Epochs this short are grouped (15 of every 16 the same as the next); a machine too slow or
  // too busy for them to be short times them one by one.
  if (r.history[0].seconds < 5e-6) EXPECT_GT(same_as_next, 500);

  // Interrupted in the 38th epoch: the 37 before it all timed in the state handed over.
  std::atomic<bool> stop{false};
  TrainOptions so = o;
  so.stop = &stop;
  int batches = 0;
  std::optional<TrainState> state;
  TrainCallbacks cb;
  cb.on_batch = [&](const BatchProgress&) {
    if (++batches == 4 * 37 + 2) stop = true;
  };
  cb.on_checkpoint = [&](const TrainState& s) { state = s; };
  EXPECT_TRUE(run(so, cb).interrupted);
  ASSERT_TRUE(state.has_value());
  ASSERT_EQ(state->result.history.size(), 37u);
  for (const EpochReport& e : state->result.history)
    EXPECT_GT(e.seconds, 0) << "epoch " << e.epoch;
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

// The hook between backward and the optimizer step sees the gradient of each batch with its
// size, and what it leaves in the buffer is what the optimizer steps with: doubling every
// gradient under plain SGD is the step of twice the learning rate.
TEST(TrainerHooks, AfterBackwardGetsTheGradientBeforeTheStep) {
  Rng data_rng(3);
  const Batch<double> X = random_batch(10, 3, data_rng), Y = random_batch(10, 2, data_rng);
  const auto run = [&](double lr, bool doubled, std::vector<Index>* sizes) {
    Network<double> net(kSpec);
    Rng rng(5);
    initialize(net, Init::xavier, rng);
    TrainOptions o;
    o.epochs = 2;
    o.batch = 4;  // batches of 4, 4 and 2
    o.shuffle = false;
    o.optimizer = {.kind = OptimizerKind::sgd, .lr = lr};
    TrainCallbacks cb;
    cb.after_backward = [&](GradientSpan grads, Index rows) {
      auto g = std::get<std::span<double>>(grads);
      EXPECT_EQ(g.size(), std::size_t(net.num_params()));
      EXPECT_EQ(g.data(), net.grads().data());
      if (sizes) sizes->push_back(rows);
      if (doubled)
        for (double& v : g)
          v *= 2;
    };
    train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng, cb);
    return std::vector<double>(net.params().begin(), net.params().end());
  };
  std::vector<Index> sizes;
  const auto doubled = run(0.05, true, &sizes);
  EXPECT_EQ(sizes, (std::vector<Index>{4, 4, 2, 4, 4, 2}));
  const auto twice_lr = run(0.1, false, nullptr);
  ASSERT_EQ(doubled.size(), twice_lr.size());
  for (std::size_t i = 0; i < doubled.size(); ++i)
    EXPECT_NEAR(doubled[i], twice_lr[i], 1e-12) << i;
  EXPECT_NE(run(0.05, false, nullptr), twice_lr);  // the hook did change the run
}

// Every stop decision passes through decide_stop: after each batch (none, or an interrupt) and
// after each epoch (none, early stop, epochs done); what it returns is what the loop does.
TEST(TrainerHooks, DecideStopSeesEveryDecisionAndIsObeyed) {
  Rng data_rng(4);
  const Batch<double> X = random_batch(6, 3, data_rng), Y = random_batch(6, 2, data_rng);
  Network<double> net(kSpec);
  Rng rng(6);
  initialize(net, Init::xavier, rng);
  TrainOptions o;
  o.epochs = 3;
  o.batch = 3;
  std::vector<StopReason> seen;
  TrainCallbacks cb;
  cb.decide_stop = [&](StopReason local) {
    seen.push_back(local);
    return local;
  };
  const TrainResult r = train(net, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng, cb);
  using S = StopReason;
  EXPECT_EQ(seen, (std::vector<S>{S::none, S::none, S::none, S::none, S::none, S::none, S::none,
                                  S::none, S::epochs_done}));
  EXPECT_EQ(r.history.size(), 3u);

  // Another process asks to stop after the 4th batch (epoch 2, batch 2): this one checkpoints
  // there and returns interrupted, as with its own stop flag.
  Network<double> net2(kSpec);
  Rng rng2(6);
  initialize(net2, Init::xavier, rng2);
  int calls = 0;
  std::optional<TrainState> state;
  cb.decide_stop = [&](StopReason local) { return ++calls == 5 ? S::interrupted : local; };
  cb.on_checkpoint = [&](const TrainState& s) { state = s; };
  const TrainResult r2 = train(net2, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng2, cb);
  EXPECT_TRUE(r2.interrupted);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->epoch, 1);
  EXPECT_EQ(state->batch, 2);
  EXPECT_EQ(r2.history.size(), 1u);

  // A divergence agreed elsewhere stops this process with DivergenceError.
  Network<double> net3(kSpec);
  Rng rng3(6);
  cb = {};
  cb.decide_stop = [](StopReason local) { return local == S::none ? S::diverged : local; };
  EXPECT_THROW(train(net3, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng3, cb),
               DivergenceError);

  // Early stop decided elsewhere after epoch 1.
  Network<double> net4(kSpec);
  Rng rng4(6);
  calls = 0;
  cb.decide_stop = [&](StopReason local) { return ++calls == 3 ? S::early_stop : local; };
  const TrainResult r4 = train(net4, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng4, cb);
  EXPECT_TRUE(r4.stopped_early);
  EXPECT_EQ(r4.history.size(), 1u);
}

// The steps of Trainer, driven by hand, are train(): the same weights, bit for bit.
TEST(TrainerHooks, StepsByHandEqualTrain) {
  Rng data_rng(8);
  const Batch<double> X = random_batch(9, 3, data_rng), Y = random_batch(9, 2, data_rng);
  const Batch<double> Xv = random_batch(3, 3, data_rng), Yv = random_batch(3, 2, data_rng);
  TrainOptions o;
  o.epochs = 4;
  o.batch = 2;
  o.patience = 2;
  Network<double> a(kSpec), b(kSpec);
  Rng ra(9), rb(9);
  initialize(a, Init::xavier, ra);
  initialize(b, Init::xavier, rb);
  const TrainResult want = train(a, X, Y, Xv, Yv, o, ra);
  Trainer<double> t(b, X, Y, Xv, Yv, o, rb, {});
  int epochs = 0;
  for (StopReason stop = StopReason::none; stop == StopReason::none; ++epochs) {
    t.begin_epoch();
    while (t.state().batch < 5)
      EXPECT_EQ(t.run_batch(), StopReason::none);
    stop = t.end_epoch();
  }
  EXPECT_EQ(epochs, int(want.history.size()));
  EXPECT_EQ(t.state().result.best_epoch, want.best_epoch);
  const TrainState s = t.snapshot();
  EXPECT_EQ(s.rng, ra.state());
  if (!want.stopped_early) {  // train() then restores the best weights; compare the last ones
    EXPECT_EQ(s.params, std::vector<double>(a.params().begin(), a.params().end()));
  }
}

// Processes that train one model on parts of the rows (TrainOptions::shard), played by threads:
// the collective callbacks over memory they share, each meeting at a barrier.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), sync_(size), in_(std::size_t(size)) {}
  std::pair<std::size_t, std::size_t> block(std::size_t n, int r) const {
    return {n * std::size_t(r) / std::size_t(size_), n * std::size_t(r + 1) / std::size_t(size_)};
  }
  TrainCallbacks callbacks(int r) {
    TrainCallbacks cb;
    cb.sum = [this, r](std::span<double> v) { sum(r, v); };
    cb.reduce_scatter = [this, r](GradientSpan g) {
      const std::span<double> v = std::get<std::span<double>>(g);
      const auto [b, e] = block(v.size(), r);
      std::vector<double> part(e - b, 0.0);
      in_[std::size_t(r)].values = v.data();
      sync_.arrive_and_wait();
      for (int k = 0; k < size_; ++k)
        for (std::size_t i = b; i < e; ++i)
          part[i - b] += in_[std::size_t(k)].values[i];
      sync_.arrive_and_wait();
      std::copy(part.begin(), part.end(), v.begin() + std::ptrdiff_t(b));
      return std::pair<std::size_t, std::size_t>(b, e);
    };
    cb.all_gather = [this, r](GradientSpan g) {
      const std::span<double> v = std::get<std::span<double>>(g);
      in_[std::size_t(r)].values = v.data();
      sync_.arrive_and_wait();
      for (int k = 0; k < size_; ++k)
        if (k != r) {
          const auto [b, e] = block(v.size(), k);
          std::copy(in_[std::size_t(k)].values + b, in_[std::size_t(k)].values + e,
                    v.begin() + std::ptrdiff_t(b));
        }
      sync_.arrive_and_wait();
    };
    cb.exchange = [this, r](GradientSpan send, std::span<const std::size_t> send_counts,
                            GradientSpan recv, std::span<const std::size_t> recv_counts) {
      In& me = in_[std::size_t(r)];
      me.values = std::get<std::span<double>>(send).data();
      me.counts.assign(send_counts.begin(), send_counts.end());
      sync_.arrive_and_wait();
      double* out = std::get<std::span<double>>(recv).data();
      for (int k = 0; k < size_; ++k) {
        const In& from = in_[std::size_t(k)];
        std::size_t at = 0;  // where k's values for r start: after those for lower ranks
        for (int d = 0; d < r; ++d)
          at += from.counts[std::size_t(d)];
        EXPECT_EQ(from.counts[std::size_t(r)], recv_counts[std::size_t(k)]);
        out = std::copy_n(from.values + at, recv_counts[std::size_t(k)], out);
      }
      sync_.arrive_and_wait();
    };
    return cb;
  }

 private:
  void sum(int r, std::span<double> v) {
    std::vector<double> total(v.size(), 0.0);
    in_[std::size_t(r)].values = v.data();
    sync_.arrive_and_wait();
    for (int k = 0; k < size_; ++k)
      for (std::size_t i = 0; i < v.size(); ++i)
        total[i] += in_[std::size_t(k)].values[i];
    sync_.arrive_and_wait();
    std::copy(total.begin(), total.end(), v.begin());
  }
  struct In {
    double* values = nullptr;
    std::vector<std::size_t> counts;
  };
  int size_;
  std::barrier<> sync_;
  std::vector<In> in_;
};

// Three processes holding 10, 20 and 7 of 37 rows: every batch is balanced (each process
// computes exactly its share of it, the rows beyond a holder's share passed to the processes
// short of theirs), and the model is one process's, up to the order of additions.
TEST(TrainerShards, BalancedBatchesTrainWhatOneProcessTrains) {
  Rng data(11);
  const Batch<double> X = random_batch(37, 3, data), Y = random_batch(37, 2, data);
  TrainOptions o;
  o.epochs = 4;
  o.batch = 8;  // batches of 8, 8, 8, 8 and 5
  o.optimizer = {.kind = OptimizerKind::adam, .lr = 0.01};
  Network<double> start(kSpec);
  Rng init(3);
  initialize(start, Init::xavier, init);

  Network<double> one = start;
  Rng rng(21);
  train(one, X, Y, Batch<double>(0, 3), Batch<double>(0, 2), o, rng);

  const std::vector<Index> starts{0, 10, 30};
  const int P = 3;
  ThreadGroup group(P);
  std::vector<Network<double>> nets(static_cast<std::size_t>(P), start);
  std::vector<std::vector<Index>> rows(static_cast<std::size_t>(P));
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      const Index first = starts[std::size_t(r)];
      const Index count = (r + 1 < P ? starts[std::size_t(r) + 1] : 37) - first;
      TrainOptions mine = o;
      mine.shard.first = first;
      mine.shard.rows = 37;
      mine.shard.lead = r == 0;
      mine.shard.starts = starts;
      mine.shard.process = r;
      TrainCallbacks cb = group.callbacks(r);
      cb.after_backward = [&rows, r](GradientSpan, Index n) { rows[std::size_t(r)].push_back(n); };
      Rng same(21);  // every process draws the same shuffles
      train(nets[std::size_t(r)], X.middleRows(first, count), Y.middleRows(first, count),
            Batch<double>(0, 3), Batch<double>(0, 2), mine, same, cb);
    });
  for (std::thread& t : threads)
    t.join();

  for (int r = 0; r < P; ++r) {
    std::vector<Index> share;  // n·r/P to n·(r+1)/P of each batch's n rows
    for (int e = 0; e < o.epochs; ++e)
      for (const Index n : {8, 8, 8, 8, 5})
        share.push_back(n * (r + 1) / P - n * r / P);
    EXPECT_EQ(rows[std::size_t(r)], share) << "process " << r;
    for (Index i = 0; i < one.num_params(); ++i) {
      EXPECT_EQ(nets[std::size_t(r)].params()[i], nets[0].params()[i]);
      EXPECT_NEAR(nets[std::size_t(r)].params()[i], one.params()[i], 1e-12) << i;
    }
  }
}

}  // namespace
}  // namespace chainrule
