#include "chainrule/trainer.hpp"

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
                  const TrainCallbacks& callbacks) {
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

  std::vector<Index> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), Index(0));
  Batch<T> Xb(B, X.cols()), Yb(B, Y.cols());
  TrainResult result;
  double best = std::numeric_limits<double>::infinity();
  std::vector<T> best_params(net.params().begin(), net.params().end());
  int since_best = 0;

  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    optimizer->set_learning_rate(o.schedule.at(lr0, epoch));
    if (o.shuffle)
      for (std::size_t i = order.size(); i > 1; --i)  // Fisher–Yates from the one generator
        std::swap(order[i - 1], order[rng.below(i)]);
    double loss_sum = 0;
    for (Index b = 0; b < batches; ++b) {
      const Index first = b * B, n = std::min(B, N - first);
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
      const double loss = net.loss(Yb);
      if (!std::isfinite(loss))
        throw DivergenceError("training diverged at epoch " + std::to_string(epoch + 1) +
                              ", batch " + std::to_string(b + 1) + ": the loss is " +
                              (std::isnan(loss) ? "NaN" : "infinite") +
                              "; try a lower learning rate (--lr)");
      loss_sum += loss * double(n);
      net.backward(Yb);
      optimizer->step(net.params(), net.grads());
      if (callbacks.on_batch)
        callbacks.on_batch({epoch + 1, b + 1, batches, loss_sum / double(first + n)});
    }

    for (const T p : net.params())
      if (!std::isfinite(p))
        throw DivergenceError("training diverged in epoch " + std::to_string(epoch + 1) +
                              ": a weight is no longer finite; try a lower learning rate (--lr)");

    EpochReport r;
    r.epoch = epoch + 1;
    r.epochs = o.epochs;
    r.metric = o.metric;
    r.train_loss = loss_sum / double(N);
    r.lr = optimizer->learning_rate();
    if (validate) {
      const Batch<T>& P = net.forward(Xv);
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
  }
  if (o.patience > 0) std::copy(best_params.begin(), best_params.end(), net.params().begin());
  return result;
}

#define CHAINRULE_INSTANTIATE(T)                                                                \
  template double accuracy<T>(const Batch<T>&, const BatchView<T>&);                            \
  template double r2_score<T>(const Batch<T>&, const BatchView<T>&);                            \
  template TrainResult train<T>(Network<T>&, const Batch<T>&, const Batch<T>&, const Batch<T>&, \
                                const Batch<T>&, const TrainOptions&, Rng&,                     \
                                const TrainCallbacks&);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
