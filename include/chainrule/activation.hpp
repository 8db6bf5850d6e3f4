// Activation functions, each a forward/derivative pair written side by side.
#pragma once

#include <string>
#include <string_view>

#include "chainrule/types.hpp"

namespace chainrule {

enum class Activation { identity, sigmoid, tanh, relu, leaky_relu, softmax };

/// Slope of leaky_relu for z < 0 (PyTorch's default negative_slope).
inline constexpr double kLeakySlope = 0.01;

/// "sigmoid", "tanh", ... as used on the command line and in model files.
std::string_view to_string(Activation a);
/// Inverse of to_string; throws ConfigError naming the allowed values.
Activation parse_activation(std::string_view name);
/// True for activations applied to each element on its own (all but softmax).
constexpr bool is_elementwise(Activation a) {
  return a != Activation::softmax;
}

/// Scalar forms, used by explain and by the reference tests.
namespace scalar {
/// a = f(z) for an elementwise activation.
double activate(Activation act, double z);
/// da/dz expressed through the output a (every elementwise activation here allows it).
double derivative_from_output(Activation act, double a);
}  // namespace scalar

/// A = f(Z), row by row for softmax. A may not alias Z. Shapes (N, K).
template <class T>
void activate(Activation act, const Batch<T>& Z, Batch<T>& A);

/// dZ = dA ⊙ f'(Z) (elementwise) or the softmax Jacobian-vector product, computed from A = f(Z).
/// dZ may alias dA. Shapes (N, K).
template <class T>
void activation_backward(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ);

}  // namespace chainrule
