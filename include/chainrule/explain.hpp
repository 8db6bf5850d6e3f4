// Backpropagation as the chain rule, number by number: for one sample, every neuron's weighted sum
// and activation, and every parameter's gradient as a product of chain-rule factors, checked
// against a central finite difference. Works for any network and any sample (double precision).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "chainrule/network.hpp"

namespace chainrule {

/// One factor of a chain: symbol "∂ŷ/∂h1", formula "w5·σ'(z_ŷ)", and its value.
struct Factor {
  std::string symbol;
  std::string formula;
  double value = 0;
};

/// A neuron's forward pass, z = Σ_i w_i·in_i + b and a = f(z), and its backward values.
struct NeuronTrace {
  std::string name;  ///< "h1", "h2.3" (layer 2, neuron 3), "ŷ", "ŷ2"
  std::size_t layer = 0;
  Index index = 0;
  Activation activation = Activation::sigmoid;
  std::vector<std::string> inputs;   ///< names of the neurons (or inputs) feeding it
  std::vector<std::string> weights;  ///< names of the weights, parallel to inputs
  std::vector<double> input_values, weight_values;
  std::string bias;
  double bias_value = 0;
  double z = 0, a = 0;
  double grad_a = 0;  ///< ∂L/∂a (for fused output layers: not defined, left 0)
  double grad_z = 0;  ///< ∂L/∂z
};

/// One parameter's gradient: the chain of factors, their product, and the checks beside it.
struct ParamTrace {
  std::string name;      ///< "w1", "b3"
  std::string tensor;    ///< "layers.0.weight" or "layers.0.bias", as in the model file
  Index row = 0;         ///< index in that tensor, shaped (out, in) like PyTorch's nn.Linear
  Index col = -1;        ///< -1 for a bias
  Index flat = 0;        ///< position in Network::params()
  std::string from, to;  ///< the connection's source and target neuron ("1" for a bias)
  double value = 0;
  std::vector<Factor> factors;
  double chain = 0;              ///< product of the factors
  double backprop = 0;           ///< what Network::backward computed for this parameter
  double finite_difference = 0;  ///< (L(p + h) - L(p - h)) / 2h
  double relative_error = 0;     ///< |chain - fd| / max(|chain|, |fd|, the difference's resolution)
  std::string reading;           ///< one line on what the sign means
};

struct Explanation {
  std::vector<std::string> input_names;  ///< x1, x2, ...
  std::vector<double> x, y;
  std::vector<std::string> output_names;  ///< ŷ or ŷ1, ŷ2, ...
  std::vector<NeuronTrace> neurons;       ///< layer by layer
  Loss loss = Loss::mse;
  std::string loss_formula;
  double loss_value = 0;
  double fd_step = 0;
  std::vector<ParamTrace> params;  ///< in flat-buffer order
};

struct ExplainOptions {
  double fd_step = 1e-6;  ///< h of the central difference
  /// Names of the inputs; empty means x1, x2, ...
  std::vector<std::string> input_names;
  /// Positions in Network::params() of the parameters to trace; empty means all of them.
  std::vector<Index> params;
};

/// The position in Network::params() of a parameter named as explain names it ("w17", "b3") or
/// as the model file does ("layers.0.weight[2,1]" is row 2, column 1 of the (out, in) tensor;
/// "layers.1.bias[0]"). Throws ConfigError naming the allowed forms.
Index find_param(const Network<double>& net, std::string_view name);

/// The `k` parameters with the largest |∂L/∂p| on the sample (x, y), in flat-buffer order.
std::vector<Index> largest_gradients(const Network<double>& net, std::span<const double> x,
                                     std::span<const double> y, std::size_t k);

/// Explains the gradient of `net`'s loss on the single sample (x, y).
/// Throws ConfigError when x or y has the wrong length.
Explanation explain(const Network<double>& net, std::span<const double> x,
                    std::span<const double> y, const ExplainOptions& options = {});

}  // namespace chainrule
