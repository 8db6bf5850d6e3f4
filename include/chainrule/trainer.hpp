// The training loop: epochs of shuffled mini-batches, a learning-rate schedule, validation,
// early stopping that restores the best weights, and progress events. One object, Trainer, holds
// the loop's state (a TrainState) and runs it in steps; hooks let a front-end all-reduce the
// gradients (after_backward), draw after each epoch (on_epoch) and agree on stopping
// (decide_stop).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "chainrule/metrics.hpp"
#include "chainrule/network.hpp"
#include "chainrule/optimizer.hpp"
#include "chainrule/random.hpp"

namespace chainrule {

struct TrainOptions {
  int epochs = 200;
  Index batch = 32;     ///< samples per step; 1 is per-sample SGD; the last partial batch is used
  bool shuffle = true;  ///< reshuffle the rows every epoch (from the generator)
  int patience = 0;     ///< > 0: stop after this many epochs without a better monitored loss
                        ///< (validation loss, or training loss without validation) and
                        ///< restore the best weights
  double dropout = 0;   ///< on hidden layers, during training only
  /// scikit-learn's L2 penalty (its `alpha`): a batch of n rows adds l2/(2n)·Σw² over the
  /// weights, not the biases, to its loss (the training loss reported includes it, as
  /// scikit-learn's loss_curve_), so each weight's gradient gains (l2/n)·w before the optimizer's
  /// step (the batch's own n: a partial last batch's is smaller). 0: none. The optimizer's
  /// weight_decay is PyTorch's instead: every parameter, the same factor in every batch.
  double l2 = 0;
  /// With validation and a metric (accuracy, R²): the best epoch, its weights (restored with a
  /// patience) and the patience's count by the validation metric, higher is better, instead of
  /// the validation loss; scikit-learn's early_stopping keeps the weights of the best score.
  bool monitor_metric = false;
  OptimizerOptions optimizer;
  /// The optimizer's state to start from (its step count and moments, each empty or one value
  /// per parameter), as a run left it in TrainResult::optimizer: scikit-learn's partial_fit calls
  /// continue one optimizer. Null: a fresh optimizer. A resumed checkpoint brings its own.
  const OptimizerState* optimizer_start = nullptr;
  /// Fill TrainResult::optimizer with the optimizer's state at the end of a run that was not
  /// interrupted (a copy in double).
  bool keep_optimizer = false;
  Schedule schedule;
  Metric metric = Metric::none;
  int checkpoint_every = 0;  ///< > 0: call on_checkpoint after every this many epochs
  /// Fill TrainResult::timings: where the training steps spend their time (a few readings of the
  /// clock a step; per-sample steps are timed as a run. Nothing else changes: the same weights).
  bool timings = false;
  /// When set (by a signal handler, say), training finishes the current batch, calls
  /// on_checkpoint and returns with TrainResult::interrupted.
  const std::atomic<bool>* stop = nullptr;
  /// Several processes training one model on the parts of one data set (group.hpp): this one
  /// holds the training rows [first, first + X.rows()) of `rows` in all, and the validation
  /// rows it holds. Batches, shuffles and the optimizer are those of all `rows`; each process
  /// computes the gradient of its rows of each batch, and TrainCallbacks::after_backward and
  /// sum add the parts up. rows = 0: X holds every training row (one process).
  struct Shard {
    Index first = 0, rows = 0;
    bool lead = true;  ///< the one process whose partial sums a checkpoint keeps (rank 0)
    /// Optional, with TrainCallbacks::exchange: every process's `first` in rank order, and
    /// which of them this one is. Then each batch is balanced: a process holding more of the
    /// batch's rows than its share (Group::block of the batch) passes the extra rows to
    /// processes holding fewer, so that no process's step waits for a larger part. Which rows
    /// move depends on the batch and the number of processes only.
    std::vector<Index> starts;
    int process = 0;
  } shard;
};

struct EpochReport {
  int epoch = 0;  ///< 1-based
  int epochs = 0;
  double train_loss = 0;  ///< mean over the epoch's batches, weighted by their size
  std::optional<double> val_loss, val_metric;
  Metric metric = Metric::none;  ///< what val_metric is
  double lr = 0;
  /// Wall time of this epoch (from the last one's report when nothing ran between). Epochs
  /// under 20 µs with no callback between them are timed in groups of up to 16, each its
  /// group's mean (one reading of the clock costs about a tenth of such an epoch).
  double seconds = 0;
  bool best = false;  ///< the monitored loss improved

  bool operator==(const EpochReport&) const = default;
};

struct BatchProgress {
  int epoch;
  Index batch, batches;
  double loss;  ///< running mean over this epoch so far
};

/// Where the training steps of a run spent their time on this process (TrainOptions::timings),
/// in seconds, summed over the steps. The phases do not overlap, and what runs between steps
/// (the end of an epoch: the validation pass, the stop decision, checkpoints) is in none of them.
struct StepTimings {
  long steps = 0;
  /// Forward and backward passes, the optimizer's step included where it runs inside backward's
  /// last dispatch (one process, no after_backward hook): then the other phases are 0.
  double compute = 0;
  double rows = 0;    ///< with a shard: the batch's rows from the processes that hold them
  double sums = 0;    ///< after_backward and the gradient's sums, waits for the others included
  double update = 0;  ///< the optimizer's step, when it runs after backward
  double gather = 0;  ///< with a shard: every process's updated block of the weights, to all
  double total() const { return compute + rows + sums + update + gather; }
};

struct TrainResult {
  std::vector<EpochReport> history;
  int best_epoch = 0;
  bool stopped_early = false;
  bool interrupted = false;  ///< TrainOptions::stop was set; the weights are those of that moment
  OptimizerState optimizer;  ///< with TrainOptions::keep_optimizer: the optimizer's last state
                             ///< (empty when interrupted)
  StepTimings timings;       ///< with TrainOptions::timings, this run's (not a resumed run's past)
};

/// Everything train() needs to continue a run exactly where it was: passed back to train() with
/// the same data and options, the run ends with the same weights, bit for bit, as one that was
/// never stopped. Values of a float network are exact in double. It is also the loop's own
/// state: Trainer keeps one and advances it; params, optimizer and rng, whose live values belong
/// to the network, the optimizer and the generator, are filled in by Trainer::snapshot.
struct TrainState {
  int epoch = 0;    ///< 0-based epoch to continue in
  Index batch = 0;  ///< batches of that epoch already done; 0: its shuffle is not drawn yet
  std::vector<Index> order;    ///< the row order (each epoch reshuffles the previous one)
  double loss_sum = 0;         ///< of the epoch in progress, weighted by batch size
  std::optional<double> best;  ///< the best monitored loss so far
  int since_best = 0;
  TrainResult result;  ///< history so far
  std::vector<double> params;
  std::vector<double> best_params;  ///< the best weights so far; empty without a patience
  OptimizerState optimizer;
  std::string rng;  ///< Rng::state()
};

/// Why a run stops, in increasing severity: a merge of several processes' decisions (an MPI
/// all-reduce with MAX) takes the most severe.
enum class StopReason {
  none,         ///< go on
  epochs_done,  ///< the last epoch is done
  early_stop,   ///< the monitored loss did not improve for `patience` epochs
  interrupted,  ///< TrainOptions::stop was set: checkpoint and return
  diverged,     ///< the loss or a weight is not finite: DivergenceError
};

/// The flat gradient buffer of one step, in the network's precision.
using GradientSpan = std::variant<std::span<float>, std::span<double>>;

struct TrainCallbacks {
  /// After every epoch, with its validation done and its report appended to the history: where
  /// a report draws its curves and a terminal prints a line.
  std::function<void(const EpochReport&)> on_epoch;
  std::function<void(const BatchProgress&)> on_batch;
  /// Every TrainOptions::checkpoint_every epochs and on a stop: the state to continue from.
  std::function<void(const TrainState&)> on_checkpoint;
  /// After backward, before the optimizer step, every batch: the flat gradient buffer, which the
  /// hook may change in place: the gradient of this process's `rows` samples of the batch
  /// divided by the batch's size (with one process, the batch mean; with a shard, its part of
  /// it, 0 when it holds none of the batch's rows, before reduce_scatter sums the parts).
  std::function<void(GradientSpan grads, Index rows)> after_backward;
  /// With a shard (TrainOptions::shard), all three are needed. `sum` adds values up across the
  /// processes in place (the epoch's training loss, the validation sums). Each step, after
  /// after_backward, `reduce_scatter` sums the gradient buffer's parts and returns the block
  /// [begin, end) of it that this process holds the sums of (Group::reduce_scatter); the
  /// optimizer updates those parameters only; `all_gather` then copies every process's block of
  /// the parameters (and, for a checkpoint, of the optimizer's state) to all: each process
  /// does 1/N of the optimizer's work, and all hold the same model.
  std::function<void(std::span<double> values)> sum;
  std::function<std::pair<std::size_t, std::size_t>(GradientSpan grads)> reduce_scatter;
  std::function<void(GradientSpan values)> all_gather;
  /// With a shard: the parameters lie where the other processes read them (Group::place), so
  /// the optimizer writes this process's block with streaming stores
  /// (Optimizer::update_streaming).
  bool params_shared = false;
  /// With TrainOptions::Shard::starts: Group::exchange, the rows that balance a batch (each row
  /// its inputs, then its targets).
  std::function<void(GradientSpan send, std::span<const std::size_t> send_counts, GradientSpan recv,
                     std::span<const std::size_t> recv_counts)>
      exchange;
  /// The one place every stop decision passes: after every batch (none, interrupted, diverged)
  /// and after every epoch (none, early_stop, epochs_done), with this process's decision;
  /// returns the one to act on. Several processes agree here (the most severe, say); unset,
  /// the local decision stands.
  std::function<StopReason(StopReason local)> decide_stop;
};

/// The training loop as one object: run() is the whole loop; begin_epoch, run_batch, end_epoch
/// and snapshot are its steps, over one TrainState. Throws as train() does.
/// A parameter type that takes no part in deducing T (a Batch<T> converts to a BatchView<T>).
template <class V>
using NoDeduce = std::type_identity_t<V>;

template <class T>
class Trainer {
 public:
  /// Checks the options and takes `resume` (the network's weights, the optimizer and `rng` are
  /// set from it) or starts fresh. The network, the data and `rng` must outlive the Trainer; the
  /// options and callbacks are copied (a temporary `{}` is fine).
  Trainer(Network<T>& net, BatchView<T> X, BatchView<T> Y, BatchView<T> Xv, BatchView<T> Yv,
          const TrainOptions& options, Rng& rng, const TrainCallbacks& callbacks,
          const TrainState* resume = nullptr);
  ~Trainer();

  /// Epochs until a stop decision; restores the best weights when patience is on. On a
  /// temporary (`Trainer(...).run()`), the result is moved out of the state rather than copied.
  TrainResult run() &;
  TrainResult run() &&;
  /// Sets the epoch's learning rate and, at its first batch, draws its shuffle.
  void begin_epoch();
  /// One step: forward, backward, after_backward, the optimizer step, the stop decision.
  StopReason run_batch();
  /// Validation, the best weights, on_epoch, the stop decision and a due checkpoint.
  StopReason end_epoch();
  /// The whole state to continue from (collective with a shard: the partial loss sums).
  TrainState snapshot();
  const TrainState& state() const { return s_; }

 private:
  // Forward and backward of the batch's rows; with `then`, the optimizer's step too.
  double forward_backward(Index first, Index n, const typename Network<T>::RangeJob* then);
  Index gather_local(Index first, Index n);
  std::size_t balance(Index first, Index n);
  // After the step: the loss sums, on_batch and the stop decision.
  StopReason end_batch(double loss, Index first, Index n);
  // The epoch's remaining one-sample steps while nothing runs between them (samples_in_a_row_):
  // run_batch's steps, with end_batch's usual case inline; returns at the first batch that needs
  // end_batch's decision (the epoch's last, a loss that is not finite, a stop asked for).
  StopReason run_samples();
  // The step of one sample, the batch's first row (step_one and the optimizer); its loss.
  double sample_step(Index first);
  // TrainOptions::l2 over the parameters [b, e) of a batch of n rows: (l2/n)·w added to the
  // gradient of every weight among them.
  void add_l2(std::size_t b, std::size_t e, Index n);
  // TrainOptions::l2's term of a batch of n rows' loss: l2/(2n)·Σw² of the weights now.
  double l2_penalty(Index n);
  // Whether a batch ends the usual way, decided without batch_decision: nothing to agree on with
  // other processes, a finite loss, no stop asked for, and `next` (the next batch) in the epoch.
  bool usual_batch_end(double loss, Index next) const;
  double reduce_epoch_loss();
  StopReason batch_decision(double loss);
  StopReason decide(StopReason local);
  EpochReport epoch_report();
  void interrupt();
  void loop();  // run()'s epochs

  Network<T>& net_;
  const BatchView<T> X_, Y_, Xv_, Yv_;  // matrices of the caller's (or its memory, mapped)
  const TrainOptions o_;
  Rng& rng_;
  const TrainCallbacks cb_;
  std::unique_ptr<Optimizer<T>> optimizer_;
  double lr0_;
  Index N_, B_, batches_;
  bool one_sample_;
  bool sharded_;
  std::vector<std::pair<std::size_t, std::size_t>> weights_;  // with l2: each layer's W range
  bool samples_in_a_row_;  // one-sample steps with no hook, shard, progress or agreed decision
  bool descend_;           // sample_step's update within the pass (Network::step_one_descend)
  Index local_n_ = 0;      // this process's rows in the current batch
  double local_rows_ = 0;  // and in the epoch so far (the progress line's running mean)
  Batch<T> Yb_;            // the batch's targets (the network gathers its inputs)
  std::vector<Index> local_rows_of_batch_;  // with a shard: this process's rows of the batch
  // With a balanced shard: the plan of a batch (each position's process, and this process's
  // counts of values to send to and receive from each), the rows that move, and the batch's
  // inputs when rows came in.
  bool balanced_ = false;
  std::vector<int> owner_;
  std::vector<Index> have_, want_;
  std::vector<std::size_t> send_counts_, recv_counts_;
  std::vector<T> send_, recv_;
  Batch<T> Xb_;
  std::optional<Rng> dropout_rng_;  // with a shard: this process's dropout masks
  std::chrono::steady_clock::time_point epoch_start_;
  std::chrono::steady_clock::time_point lap_;  // TrainOptions::timings: the last phase's end
  void lap(double StepTimings::*phase);        // adds the time since lap_ to it, and moves lap_
  bool start_known_ = false;  // epoch_start_ is the last epoch's end and the next one's start
  // Epochs of a few µs are timed in groups (epoch_report): the reports at the end of the history
  // still without their seconds, and the last measured epoch's seconds.
  int untimed_ = 0;
  double last_seconds_ = 1;
  void time_untimed(std::chrono::steady_clock::time_point end, int epochs_to_now);
  std::string divergence_;  // why this process diverged
  TrainState s_;
};

/// The sums a split's loss and metric come from, so that the parts of a split held by several
/// processes add up (Group::sum over `values`) to the scores of the whole:
/// [loss × rows, rows, accuracy × rows or Σ(y - p)², then Σy and Σy² of each output].
struct ScoreSums {
  Metric metric = Metric::none;
  std::vector<double> values;
  double rows() const { return values[1]; }
  double loss() const { return values[0] / values[1]; }
  /// Accuracy, or R² = 1 - Σ(y - p)² / Σ(y - ȳ)² (0 when the targets do not vary).
  double metric_value() const;
};
/// This process's ScoreSums of `net` on (X, Y) (zeros when X has no rows).
template <class T>
ScoreSums score_sums(Network<T>& net, const BatchView<T>& X, const BatchView<T>& Y, Metric metric);

/// Trains `net` on (X, Y), validating on (Xv, Yv) when Xv has rows: Trainer(...).run(). Draws
/// shuffles and dropout masks from `rng`. With `resume`, continues that state instead: the
/// network's weights, the optimizer and `rng` are set from it. Throws ConfigError on options out
/// of range or a state that does not fit, DivergenceError when the loss or a weight stops being
/// finite.
template <class T>
TrainResult train(Network<T>& net, NoDeduce<BatchView<T>> X, NoDeduce<BatchView<T>> Y,
                  NoDeduce<BatchView<T>> Xv, NoDeduce<BatchView<T>> Yv, const TrainOptions& options,
                  Rng& rng, const TrainCallbacks& callbacks = {},
                  const TrainState* resume = nullptr);

}  // namespace chainrule
