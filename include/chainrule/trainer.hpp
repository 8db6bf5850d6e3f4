// The training loop: epochs of shuffled mini-batches, a learning-rate schedule, validation,
// early stopping that restores the best weights, and progress events.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "chainrule/network.hpp"
#include "chainrule/optimizer.hpp"
#include "chainrule/random.hpp"

namespace chainrule {

/// What validation reports besides the loss.
enum class Metric { none, accuracy, r2 };

struct TrainOptions {
  int epochs = 200;
  Index batch = 200;    ///< samples per step; 1 is per-sample SGD; the last partial batch is used
  bool shuffle = true;  ///< reshuffle the rows every epoch (from the generator)
  int patience = 0;     ///< > 0: stop after this many epochs without a better monitored loss
                        ///< (validation loss, or training loss without validation) and
                        ///< restore the best weights
  double dropout = 0;   ///< on hidden layers, during training only
  OptimizerOptions optimizer;
  Schedule schedule;
  Metric metric = Metric::none;
  int checkpoint_every = 0;  ///< > 0: call on_checkpoint after every this many epochs
  /// When set (by a signal handler, say), training finishes the current batch, calls
  /// on_checkpoint and returns with TrainResult::interrupted.
  const std::atomic<bool>* stop = nullptr;
};

struct EpochReport {
  int epoch = 0;  ///< 1-based
  int epochs = 0;
  double train_loss = 0;  ///< mean over the epoch's batches, weighted by their size
  std::optional<double> val_loss, val_metric;
  Metric metric = Metric::none;  ///< what val_metric is
  double lr = 0;
  double seconds = 0;  ///< wall time of this epoch
  bool best = false;   ///< the monitored loss improved
};

struct BatchProgress {
  int epoch;
  Index batch, batches;
  double loss;  ///< running mean over this epoch so far
};

struct TrainResult {
  std::vector<EpochReport> history;
  int best_epoch = 0;
  bool stopped_early = false;
  bool interrupted = false;  ///< TrainOptions::stop was set; the weights are those of that moment
};

/// Everything train() needs to continue a run exactly where it was: passed back to train() with
/// the same data and options, the run ends with the same weights, bit for bit, as one that was
/// never stopped. Values of a float network are exact in double.
struct TrainState {
  int epoch = 0;    ///< 0-based epoch to continue in
  Index batch = 0;  ///< batches of that epoch already done; 0: its shuffle is not drawn yet
  std::vector<Index> order;    ///< the row order (each epoch reshuffles the previous one)
  double loss_sum = 0;         ///< of the epoch in progress, weighted by batch size
  std::optional<double> best;  ///< the best monitored loss so far
  int since_best = 0;
  TrainResult result;  ///< history so far
  std::vector<double> params, best_params;
  OptimizerState optimizer;
  std::string rng;  ///< Rng::state()
};

struct TrainCallbacks {
  std::function<void(const EpochReport&)> on_epoch;
  std::function<void(const BatchProgress&)> on_batch;
  /// Every TrainOptions::checkpoint_every epochs and on a stop: the state to continue from.
  std::function<void(const TrainState&)> on_checkpoint;
};

/// "accuracy", "r2" or "none".
std::string_view to_string(Metric m);

/// Accuracy of outputs P against targets Y: argmax for several outputs, threshold 0.5 for one.
template <class T>
double accuracy(const Batch<T>& P, const BatchView<T>& Y);
/// Coefficient of determination R² = 1 - Σ(y - p)² / Σ(y - ȳ)², over all outputs.
template <class T>
double r2_score(const Batch<T>& P, const BatchView<T>& Y);

/// Trains `net` on (X, Y), validating on (Xv, Yv) when Xv has rows. Draws shuffles and dropout
/// masks from `rng`. With `resume`, continues that state instead: the network's weights, the
/// optimizer and `rng` are set from it. Throws ConfigError on options out of range or a state
/// that does not fit, DivergenceError when the loss or a weight stops being finite.
template <class T>
TrainResult train(Network<T>& net, const Batch<T>& X, const Batch<T>& Y, const Batch<T>& Xv,
                  const Batch<T>& Yv, const TrainOptions& options, Rng& rng,
                  const TrainCallbacks& callbacks = {}, const TrainState* resume = nullptr);

}  // namespace chainrule
