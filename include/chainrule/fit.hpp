// The whole pipeline as three calls: fit a model on a table, evaluate it, predict with it.
// This is what `chainrule train`, `eval` and `predict` do; the CLI only parses flags and prints.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chainrule/group.hpp"
#include "chainrule/init.hpp"
#include "chainrule/model.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {

struct FitOptions {
  PreprocessOptions data;             ///< target, dropped columns, scaling, imputation, task
  std::vector<Index> layers = {100};  ///< hidden layer sizes
  Activation activation = Activation::tanh;
  std::optional<Loss> loss;  ///< default by task: BCE (2 classes), CE, MSE (regress)
  std::optional<Init> init;  ///< default: he for relu/leaky_relu, xavier otherwise
  std::uint64_t seed = 42;
  double validation = 0.1;      ///< fraction held out, stratified for classification
  std::optional<int> patience;  ///< default: 20 with validation, off without
  Dtype dtype = Dtype::float32;
  TrainOptions train;  ///< epochs, batch, optimizer ...; its patience and metric are set by fit
  const Model* init_from = nullptr;  ///< start from this model's weights and preprocessing
  /// Continue this checkpoint's run: the options must be those it was made with (the same seed,
  /// split, optimizer, schedule ...) and the table the same data; the result is then the model an
  /// uninterrupted run gives, byte for byte.
  const Checkpoint* resume = nullptr;
  std::string settings = "{}";  ///< JSON object stored in checkpoints (Checkpoint::settings)
  /// Threads for preprocessing and training (Network::set_threads): the same count gives the
  /// same model, bit for bit.
  int threads = 1;
  /// The memory a run may take, estimated before anything large is allocated (parameters,
  /// gradients, optimizer state, kept weights, workspaces, the data matrices): a LimitError
  /// beyond. 0: available_memory() (file_io.hpp).
  std::uint64_t max_memory = 0;
  /// false: the final pass over the training rows that measures ModelMetrics::train is left out
  /// (its rows are then 0, "not measured"). scikit-learn's estimators make no such pass; the
  /// Python package's estimators skip it too. The validation split is measured either way.
  bool measure_train = true;
  /// Several processes training one model (group.hpp; an MPI job): `data` is this process's
  /// part of the rows, the parts in rank order making up the whole table (read_csv_shard,
  /// read_idx_pixels with a part). Every process calls fit with the same options and gets the same
  /// model: the one a single process gives on the whole table with the same options, up to the
  /// order of floating-point additions (docs/distributed.md). Callbacks run on every process;
  /// `group` must outlive the call. Null, or a group of one: this process holds all the rows.
  const Group* group = nullptr;
};

/// The estimate fit() checks against FitOptions::max_memory, in bytes.
std::uint64_t estimate_memory(const NetworkSpec& spec, Dtype dtype, std::size_t rows,
                              const TrainOptions& train, int threads = 1);

/// The settings fit() records in the model (Model::training) for these options and a table of
/// `rows` rows, known before training starts (a live report shows them).
TrainingSettings training_settings(const FitOptions& o, std::size_t rows);

struct FitResult {
  Model model;
  TrainResult history;
  std::size_t train_rows = 0, validation_rows = 0;
  double seconds = 0;  ///< training time
  /// Before training: the split, the preprocessing (its statistics and the matrices the network
  /// reads) and the network's initialisation.
  double prepare_seconds = 0;
  std::vector<Note> notes;  ///< what fit noticed that may be a mistake (not errors)
  /// history.interrupted: the run was stopped (FitOptions::train.stop) and `model` holds the
  /// weights of that moment without final metrics; the checkpoint was passed to on_checkpoint.
};

/// Receives checkpoints, every train.checkpoint_every epochs and when a run is stopped.
using CheckpointSink = std::function<void(const Checkpoint&)>;

/// Splits the rows, fits the preprocessing on the training split, builds, initializes and
/// trains the network, and returns the model with its settings and final metrics. Throws Error;
/// DataError when a resumed checkpoint was made on other data.
/// `data` is a Table (a CSV or IDX file) or features in memory with their targets (dataset.hpp):
/// one pipeline for both.
FitResult fit(const Dataset& data, const FitOptions& options, const TrainCallbacks& callbacks = {},
              const CheckpointSink& on_checkpoint = {});

struct Evaluation {
  std::size_t rows = 0;     ///< rows evaluated: those with a target value
  std::size_t skipped = 0;  ///< rows left out because their target is missing
  double loss = 0;          ///< the training loss, on the network's targets
  // classification
  double accuracy = 0;
  std::vector<ClassMetrics> classes;
  std::vector<std::vector<long>> confusion;  ///< [true class][predicted class]
  // regression, in the target's units
  double mse = 0, mae = 0, r2 = 0;
};

/// Loss and metrics of `model` on a table that holds the target column. Throws DataError.
/// `threads`: the network's (Network::set_threads); the results are the same for every count.
Evaluation evaluate(const Model& model, const Dataset& data, int threads = 1);

struct Predictions {
  std::vector<std::size_t> label;  ///< classification: index into model.prep.classes
  Batch<double> probabilities;     ///< classification: (rows, classes)
  std::vector<double> value;       ///< regression: in the target's units
};

/// Predictions for every row; feature columns are matched by name, the target may be absent.
/// `threads`: the network's (Network::set_threads); the results are the same for every count.
Predictions predict(const Model& model, const Dataset& data, int threads = 1);

}  // namespace chainrule
