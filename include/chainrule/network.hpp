// A feedforward network: dense layers over ONE flat parameter buffer and ONE flat gradient buffer
// of the same length. The canonical step is zero_grad(); forward(X); backward(Y); optimizer step.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "chainrule/dense.hpp"
#include "chainrule/loss.hpp"
#include "chainrule/random.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

/// One dense layer of a NetworkSpec.
struct LayerSpec {
  Index units = 1;
  Activation activation = Activation::sigmoid;
};

/// The architecture: input width, layers (the last is the output layer) and the loss.
struct NetworkSpec {
  Index inputs = 1;
  std::vector<LayerSpec> layers;
  Loss loss = Loss::mse;
};

/// Throws ConfigError unless the spec describes a trainable network.
void validate(const NetworkSpec& spec);

/// One line: "2 inputs → 2 sigmoid → 1 sigmoid".
std::string describe(const NetworkSpec& spec);

template <class T>
class Network {
 public:
  explicit Network(NetworkSpec spec);

  const NetworkSpec& spec() const { return spec_; }
  const std::vector<Dense<T>>& layers() const { return layers_; }
  Index inputs() const { return spec_.inputs; }
  Index outputs() const { return layers_.back().out(); }
  Index num_params() const { return static_cast<Index>(params_.size()); }

  /// The flat parameter buffer: layer 0's W then b, layer 1's W then b, ...
  std::span<T> params() { return params_; }
  std::span<const T> params() const { return params_; }
  /// The flat gradient buffer, parallel to params().
  std::span<T> grads() { return grads_; }
  std::span<const T> grads() const { return grads_; }

  void zero_grad();

  /// Runs the batch X (N, inputs) through every layer; returns the output activations (N, outputs).
  /// Keeps what backward needs. Workspaces are reused while N stays the same. With `dropout`
  /// (training), hidden activations are dropped with probability dropout_rate(), drawn from it.
  const Batch<T>& forward(const BatchView<T>& X, Rng* dropout = nullptr);
  /// The outputs for X (N, outputs), as forward(X) gives them, without keeping a copy of X for
  /// a backward pass: for prediction and evaluation. loss() may follow it; backward() may not
  /// (it throws ConfigError until the next forward).
  const Batch<T>& infer(const BatchView<T>& X);
  /// One training sample: forward, loss and backward in one call, with grads() SET to the
  /// sample's gradient (as zero_grad, forward, loss and backward give it, bit for bit); returns
  /// the loss. x: inputs() values, y: outputs() values. Only where one_sample_path() holds.
  double step_one(const T* x, const T* y);
  /// True when step_one applies: every layer small (at most 1024 weights) and no dropout.
  bool one_sample_path() const { return small_ && dropout_ == 0; }
  /// Mean loss of the last forward batch against the targets Y (N, outputs).
  double loss(const BatchView<T>& Y) const;
  /// Backpropagates the loss of the last forward batch against Y; ADDS to grads().
  void backward(const BatchView<T>& Y);

  /// Inverted dropout on every hidden layer's output: kept values are scaled by 1/(1 - p).
  /// 0 <= p < 1; it only acts in a forward pass given a generator.
  void set_dropout_rate(double p);
  double dropout_rate() const { return dropout_; }

  /// Layer l's pre-activations Z and activations A from the last forward (N, units).
  const Batch<T>& pre_activation(std::size_t l) const { return work_[l].Z; }
  const Batch<T>& activation(std::size_t l) const { return work_[l].A; }

 private:
  struct Workspace {
    Batch<T> Z, A;  // (N, out)
    Batch<T> dZ;    // ∂L/∂Z (N, out); holds ∂L/∂A first where the loss is not fused
    Batch<T> mask;  // dropout: 0 or 1/(1 - p) per element (N, out)
    Batch<T> D;     // dropout: A ⊙ mask, the next layer's input (N, out)
  };

  // One sample through a small network: plain loops instead of matrix products (whose setup
  // costs more than the arithmetic at these sizes). Same results as the general path up to
  // the order of additions.
  void forward_one(const T* x);
  // x0: the input of the forward_one before; y: the targets (outputs()). Adds to grads().
  void backward_one(const T* x0, const T* y);

  // Runs X through every layer (the work of forward and infer), X being the kept input_ or not.
  const Batch<T>& run(const BatchView<T>& X, Rng* dropout);
  // The input of layer l in the last forward pass.
  const Batch<T>& layer_input(std::size_t l) const {
    if (l == 0) return input_;
    return dropped_ ? work_[l - 1].D : work_[l - 1].A;
  }

  NetworkSpec spec_;
  std::vector<Dense<T>> layers_;
  std::vector<T> params_, grads_;
  Batch<T> input_;  // the last forward batch (N, inputs)
  std::vector<Workspace> work_;
  double dropout_ = 0;
  bool dropped_ = false;  // whether the last forward applied dropout
  bool small_ = false;    // every layer small enough for forward_one/backward_one
  bool one_ = false;      // the last forward took forward_one
  bool kept_ = false;     // the last pass was forward, which keeps its input for backward
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace chainrule
