// The training loop: epochs of shuffled mini-batches, a learning-rate schedule, validation,
// early stopping that restores the best weights, and progress events.
#pragma once

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
};

struct TrainCallbacks {
  std::function<void(const EpochReport&)> on_epoch;
  std::function<void(const BatchProgress&)> on_batch;
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
/// masks from `rng`.
template <class T>
TrainResult train(Network<T>& net, const Batch<T>& X, const Batch<T>& Y, const Batch<T>& Xv,
                  const Batch<T>& Yv, const TrainOptions& options, Rng& rng,
                  const TrainCallbacks& callbacks = {});

}  // namespace chainrule
