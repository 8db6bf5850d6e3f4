// A trained model: the network's architecture and weights, the fitted preprocessing, and what
// the training said about itself. Saved in the safetensors layout (docs/model-format.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chainrule/file_io.hpp"
#include "chainrule/init.hpp"
#include "chainrule/network.hpp"
#include "chainrule/preprocess.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {

/// The precision a network trains in. bfloat16: float32 weights, gradients, activations and
/// optimizer state, with the matrix products' inputs rounded to bfloat16 (CPUs with
/// AVX512_BF16; Network::set_bf16_products). A model stores, and predicts in, float32 or float64
/// only: a model trained in bfloat16 is a float32 model.
enum class Dtype { float32, float64, bfloat16 };
/// The name used on the command line and in model files.
std::string_view to_string(Dtype d);
/// The precision of the weights a run in `d` keeps and saves: float32 for bfloat16.
inline Dtype weights_dtype(Dtype d) {
  return d == Dtype::float64 ? Dtype::float64 : Dtype::float32;
}
/// Inverse of to_string; throws ConfigError naming the allowed values.
Dtype parse_dtype(std::string_view s);

/// The settings a model was trained with, as fit records them (the JSON keys in brackets,
/// model_json.hpp). Names are the enums' own (to_string).
struct TrainingSettings {
  std::size_t rows = 0;  ///< rows of the table, both splits
  std::uint64_t seed = 0;
  std::vector<Index> layers;  ///< hidden layer sizes ("100,50")
  Activation activation = Activation::tanh;
  std::optional<Init> init;  ///< empty: the weights came from a model ("from a model")
  OptimizerKind optimizer = OptimizerKind::adam;
  double lr = 0, momentum = 0;
  bool nesterov = false;
  double weight_decay = 0;
  double l2 = 0;                ///< TrainOptions::l2 (scikit-learn's alpha); in the file when > 0
  bool monitor_metric = false;  ///< TrainOptions::monitor_metric; in the file when set
  ScheduleKind schedule = ScheduleKind::constant;
  Index batch = 0;
  int epochs = 0;
  bool shuffle = true;
  double validation = 0;  ///< the fraction held out ("val")
  int patience = 0;
  double dropout = 0;
  Dtype dtype = Dtype::float32;

  bool operator==(const TrainingSettings&) const = default;
};

/// Loss and the task's metric of the final weights on one split.
struct SplitMetrics {
  double loss = 0;
  Index rows = 0;
  Metric metric = Metric::none;  ///< accuracy or r2 (its name is the JSON key of `value`)
  double value = 0;

  bool operator==(const SplitMetrics&) const = default;
};

/// What a finished training said about itself.
struct ModelMetrics {
  SplitMetrics train;
  std::optional<SplitMetrics> validation;  ///< with a validation split
  std::size_t epochs_run = 0;
  int best_epoch = 0;
  bool stopped_early = false;
  /// One report per epoch run, for curves (chainrule report). Their `seconds` are 0: wall times
  /// would make two runs of the same seed write different files.
  std::vector<EpochReport> history;

  bool operator==(const ModelMetrics&) const = default;
};

struct Model {
  NetworkSpec spec;
  Dtype dtype = Dtype::float32;
  std::vector<double> params;  ///< the flat buffer (float32 values are exact in double)
  Preprocessor prep;
  std::optional<TrainingSettings> training;  ///< empty: not recorded (the file's "{}")
  std::optional<ModelMetrics> metrics;       ///< empty: none (an interrupted run, a checkpoint)

  /// A network with this model's architecture and weights, in precision T.
  template <class T>
  Network<T> network() const;
  /// Copies a trained network's weights in.
  template <class T>
  void set_params(const Network<T>& net);
};

/// Format version written into every model file.
inline constexpr int kModelFormatVersion = 1;

/// Writes the model to `path` through a temporary file in the same directory, flushed and then
/// renamed over `path`: a failure never leaves a partial file in its place. Throws Error.
void save_model(const Model& model, const std::string& path);
/// Reads a model file. Throws ModelError naming the file and what is wrong with it.
Model load_model(const std::string& path);

/// A run stopped part way: the model of that moment and the state to continue it from. A
/// checkpoint file is a model file with the training state added (docs/model-format.md), so
/// `info`, `predict` and `--init-from` read it as a model.
struct Checkpoint {
  Model model;                  ///< architecture, preprocessing, settings; params are state.params
  TrainState state;             ///< what train() continues from
  std::uint32_t data_crc = 0;   ///< CRC-32 of the training and validation matrices
  std::string settings = "{}";  ///< JSON object the caller stores to rebuild its options
};

/// Writes a checkpoint atomically, as save_model does. Throws Error.
void save_checkpoint(const Checkpoint& checkpoint, const std::string& path);
/// Reads a checkpoint file. Throws ModelError naming the file and what is wrong with it; a model
/// file without training state is such an error.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace chainrule
