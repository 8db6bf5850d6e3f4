#include "chainrule/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

std::string_view to_string(Metric m) {
  return m == Metric::accuracy ? "accuracy" : m == Metric::r2 ? "r2" : "none";
}

template <class T>
double accuracy(const Batch<T>& P, const BatchView<T>& Y) {
  Index correct = 0;
  for (Index n = 0; n < P.rows(); ++n) {
    if (P.cols() == 1) {
      correct += (P(n, 0) >= T(0.5)) == (Y(n, 0) >= T(0.5));
    } else {
      Index p, y;
      P.row(n).maxCoeff(&p);
      Y.row(n).maxCoeff(&y);
      correct += p == y;
    }
  }
  return P.rows() == 0 ? 0.0 : double(correct) / double(P.rows());
}

template <class T>
double r2_score(const Batch<T>& P, const BatchView<T>& Y) {
  double sse = 0, sst = 0;
  for (Index k = 0; k < Y.cols(); ++k) {
    const double mean = Y.col(k).template cast<double>().mean();
    for (Index n = 0; n < Y.rows(); ++n) {
      sse += std::pow(double(Y(n, k)) - double(P(n, k)), 2);
      sst += std::pow(double(Y(n, k)) - mean, 2);
    }
  }
  return sst == 0 ? 0.0 : 1 - sse / sst;
}

template <class T>
TrainResult train(Network<T>& net, const Batch<T>& X, const Batch<T>& Y, const Batch<T>& Xv,
                  const Batch<T>& Yv, const TrainOptions& o, Rng& rng,
                  const TrainCallbacks& callbacks, const TrainState* resume) {
  if (o.epochs < 1) throw ConfigError("epochs must be at least 1, got " + std::to_string(o.epochs));
  if (o.batch < 1)
    throw ConfigError("batch size must be at least 1, got " + std::to_string(o.batch));
  if (o.patience < 0) throw ConfigError("patience must be >= 0");
  if (X.rows() == 0) throw ConfigError("no training rows");
  net.set_dropout_rate(o.dropout);
  auto optimizer = make_optimizer<T>(o.optimizer);
  const double lr0 = o.optimizer.learning_rate();
  const Index N = X.rows(), B = std::min(o.batch, N);
  const Index batches = (N + B - 1) / B;
  const bool validate = Xv.rows() > 0;

  // The loop's state: fresh, or taken from `resume`.
  std::vector<Index> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), Index(0));
  TrainResult result;
  double best = std::numeric_limits<double>::infinity();
  std::vector<T> best_params(net.params().begin(), net.params().end());
  int since_best = 0, first_epoch = 0;
  Index first_batch = 0;
  double resumed_loss_sum = 0;
  if (resume) {
    const TrainState& s = *resume;
    const auto n_params = std::size_t(net.num_params());
    if (s.order.size() != order.size() || s.params.size() != n_params ||
        s.best_params.size() != n_params || s.epoch < 0 || s.batch < 0 || s.batch > batches ||
        std::any_of(s.order.begin(), s.order.end(), [&](Index i) { return i < 0 || i >= N; }))
      throw ConfigError("the saved training state does not fit these data and this network");
    order = s.order;
    std::copy(s.params.begin(), s.params.end(), net.params().begin());
    best_params.assign(s.best_params.begin(), s.best_params.end());
    optimizer->set_state(s.optimizer);
    rng.set_state(s.rng);
    result = s.result;
    result.interrupted = false;
    best = s.best.value_or(std::numeric_limits<double>::infinity());
    since_best = s.since_best;
    first_epoch = s.epoch;
    first_batch = s.batch;
    resumed_loss_sum = s.loss_sum;
  }
  const auto snapshot = [&](int epoch, Index batch, double loss_sum) {
    TrainState s;
    s.epoch = epoch;
    s.batch = batch;
    s.order = order;
    s.loss_sum = loss_sum;
    if (std::isfinite(best)) s.best = best;
    s.since_best = since_best;
    s.result = result;
    s.params.assign(net.params().begin(), net.params().end());
    s.best_params.assign(best_params.begin(), best_params.end());
    s.optimizer = optimizer->state();
    s.rng = rng.state();
    return s;
  };

  const auto check_weights = [&](int epoch) {
    for (const T p : net.params())
      if (!std::isfinite(p))
        throw DivergenceError("training diverged in epoch " + std::to_string(epoch + 1) +
                              ": a weight is no longer finite; try a lower learning rate (--lr)");
  };

  // Per-sample steps through a small network without dropout take Network::step_one.
  const bool one_sample = B == 1 && net.one_sample_path();
  Batch<T> Xb(B, X.cols()), Yb(B, Y.cols());
  for (int epoch = first_epoch; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    optimizer->set_learning_rate(o.schedule.at(lr0, epoch));
    const bool resuming = epoch == first_epoch && resume;
    const Index b0 = resuming ? first_batch : 0;
    if (o.shuffle && b0 == 0)
      for (std::size_t i = order.size(); i > 1; --i)  // Fisher–Yates from the one generator
        std::swap(order[i - 1], order[rng.below(i)]);
    double loss_sum = resuming ? resumed_loss_sum : 0;
    for (Index b = b0; b < batches; ++b) {
      const Index first = b * B, n = std::min(B, N - first);
      double loss;
      if (one_sample) {  // the same step as below, in one call, with no row copies
        const Index r = order[std::size_t(first)];
        loss = net.step_one(&X(r, 0), &Y(r, 0));
      } else {
        if (Xb.rows() != n) {
          Xb.resize(n, X.cols());
          Yb.resize(n, Y.cols());
        }
        for (Index i = 0; i < n; ++i) {
          Xb.row(i) = X.row(order[std::size_t(first + i)]);
          Yb.row(i) = Y.row(order[std::size_t(first + i)]);
        }
        net.zero_grad();
        net.forward(Xb, &rng);
        loss = net.loss(Yb);
        net.backward(Yb);
      }
      if (!std::isfinite(loss))
        throw DivergenceError("training diverged at epoch " + std::to_string(epoch + 1) +
                              ", batch " + std::to_string(b + 1) + ": the loss is " +
                              (std::isnan(loss) ? "NaN" : "infinite") +
                              "; try a lower learning rate (--lr)");
      loss_sum += loss * double(n);
      optimizer->step(net.params(), net.grads());
      if (callbacks.on_batch)
        callbacks.on_batch({epoch + 1, b + 1, batches, loss_sum / double(first + n)});
      if (o.stop && o.stop->load(std::memory_order_relaxed)) {
        check_weights(epoch);
        if (callbacks.on_checkpoint) callbacks.on_checkpoint(snapshot(epoch, b + 1, loss_sum));
        result.interrupted = true;
        return result;
      }
    }

    check_weights(epoch);

    EpochReport r;
    r.epoch = epoch + 1;
    r.epochs = o.epochs;
    r.metric = o.metric;
    r.train_loss = loss_sum / double(N);
    r.lr = optimizer->learning_rate();
    if (validate) {
      const Batch<T>& P = net.infer(Xv);
      r.val_loss = net.loss(Yv);
      if (o.metric == Metric::accuracy) r.val_metric = accuracy<T>(P, Yv);
      if (o.metric == Metric::r2) r.val_metric = r2_score<T>(P, Yv);
    }
    const double monitored = validate ? *r.val_loss : r.train_loss;
    if (monitored < best) {
      best = monitored;
      result.best_epoch = r.epoch;
      since_best = 0;
      r.best = true;
      if (o.patience > 0) best_params.assign(net.params().begin(), net.params().end());
    } else {
      ++since_best;
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(r);
    if (callbacks.on_epoch) callbacks.on_epoch(r);
    if (o.patience > 0 && since_best >= o.patience) {
      result.stopped_early = epoch + 1 < o.epochs;
      break;
    }
    if (o.checkpoint_every > 0 && (epoch + 1) % o.checkpoint_every == 0 && epoch + 1 < o.epochs &&
        callbacks.on_checkpoint)
      callbacks.on_checkpoint(snapshot(epoch + 1, 0, 0));
  }
  if (o.patience > 0) std::copy(best_params.begin(), best_params.end(), net.params().begin());
  return result;
}

#define CHAINRULE_INSTANTIATE(T)                                                                   \
  template double accuracy<T>(const Batch<T>&, const BatchView<T>&);                               \
  template double r2_score<T>(const Batch<T>&, const BatchView<T>&);                               \
  template TrainResult train<T>(Network<T>&, const Batch<T>&, const Batch<T>&, const Batch<T>&,    \
                                const Batch<T>&, const TrainOptions&, Rng&, const TrainCallbacks&, \
                                const TrainState*);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
