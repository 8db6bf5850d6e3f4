// A trained model: the network's architecture and weights, the fitted preprocessing, and what
// the training said about itself. Saved in the safetensors layout (docs/model-format.md).
#pragma once

#include <string>
#include <vector>

#include "chainrule/file_io.hpp"
#include "chainrule/network.hpp"
#include "chainrule/preprocess.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {

enum class Dtype { float32, float64 };
/// The name used on the command line and in model files.
std::string_view to_string(Dtype d);
/// Inverse of to_string; throws ConfigError naming the allowed values.
Dtype parse_dtype(std::string_view s);

struct Model {
  NetworkSpec spec;
  Dtype dtype = Dtype::float32;
  std::vector<double> params;  ///< the flat buffer (float32 values are exact in double)
  Preprocessor prep;
  std::string training = "{}";  ///< JSON object: the settings the model was trained with
  std::string metrics = "{}";   ///< JSON object: final metrics

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
