// Loss functions: a value and its gradient, side by side. Losses are means over the batch (and
// over the outputs for MSE and binary cross-entropy), as PyTorch's default reduction='mean'.
#pragma once

#include <string_view>

#include "chainrule/activation.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

enum class Loss { mse, binary_cross_entropy, softmax_cross_entropy };

/// The name used on the command line and in model files.
std::string_view to_string(Loss l);
/// Accepts "mse", "binary_cross_entropy" (or "bce"), "softmax_cross_entropy" (or "cross_entropy").
Loss parse_loss(std::string_view name);

/// True when the loss is fused with the output activation and its gradient is taken with respect
/// to the pre-activation z: sigmoid + binary cross-entropy and softmax + cross-entropy, both
/// ∂L/∂z = (ŷ - y) / count.
constexpr bool is_fused(Loss l) {
  return l != Loss::mse;
}

/// Throws ConfigError unless `output` can be used with `loss` (BCE needs sigmoid, softmax
/// cross-entropy needs softmax, MSE takes any output activation).
void check_loss_output(Loss loss, Activation output);

/// Mean loss of a batch. Z and A are the output layer's pre-activations and activations, Y the
/// targets, all (N, K). Accumulates in double; never overflows for any finite z.
template <class T>
double loss_value(Loss loss, const Batch<T>& Z, const Batch<T>& A, const BatchView<T>& Y);

namespace detail {
/// Adds one sample's loss terms to `sum` (z, a, y: its K outputs), in the order loss_value adds
/// them; loss_value is the sum over the batch divided by loss_count.
template <class T>
void add_sample_loss(Loss loss, const T* z, const T* a, const T* y, Index K, double& sum);
/// What the sum of a batch's loss terms is divided by: N K, or N for softmax cross-entropy.
inline double loss_count(Loss loss, Index N, Index K) {
  return loss == Loss::softmax_cross_entropy ? double(N) : double(N * K);
}
/// loss_gradient = (A - Y) · this factor: 2 / (N K) for MSE, 1 / loss_count for the fused ones.
inline double gradient_factor(Loss loss, Index N, Index K) {
  return (loss == Loss::mse ? 2.0 : 1.0) / loss_count(loss, N, K);
}
}  // namespace detail

/// Gradient that starts backpropagation: ∂L/∂A for MSE, ∂L/∂Z for the fused losses. (N, K).
template <class T>
void loss_gradient(Loss loss, const Batch<T>& A, const BatchView<T>& Y, Batch<T>& G);

}  // namespace chainrule
