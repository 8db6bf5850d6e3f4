// Activation functions, each a forward/derivative pair written side by side.
#pragma once

#include <cmath>
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

namespace detail {
[[noreturn]] void not_elementwise();

// sigmoid:  a = 1 / (1 + e^-z)            da/dz = a (1 - a)
// Written so that exp never overflows: for z < 0 use e^z / (1 + e^z).
template <class T>
inline T sigmoid(T z) {
  if (z >= 0) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

// tanh:     a = tanh z                    da/dz = 1 - a²
// relu:     a = max(z, 0)                 da/dz = 1 if z > 0 else 0  (= 1 if a > 0)
// leaky:    a = z if z > 0 else s·z       da/dz = 1 if z > 0 else s  (s > 0, so z > 0 ⇔ a > 0)
// identity: a = z                         da/dz = 1
template <class T>
inline T activate_one(Activation act, T z) {
  switch (act) {
    case Activation::identity:
      return z;
    case Activation::sigmoid:
      return sigmoid(z);
    case Activation::tanh:
      return std::tanh(z);
    case Activation::relu:
      return z > 0 ? z : T(0);
    case Activation::leaky_relu:
      return z > 0 ? z : T(kLeakySlope) * z;
    case Activation::softmax:
      break;
  }
  not_elementwise();
}

template <class T>
inline T derivative_one(Activation act, T a) {
  switch (act) {
    case Activation::identity:
      return T(1);
    case Activation::sigmoid:
      return a * (T(1) - a);
    case Activation::tanh:
      return T(1) - a * a;
    case Activation::relu:
      return a > 0 ? T(1) : T(0);
    case Activation::leaky_relu:
      return a > 0 ? T(1) : T(kLeakySlope);
    case Activation::softmax:
      break;
  }
  not_elementwise();
}
}  // namespace detail

/// A = f(Z), row by row for softmax. A may not alias Z. Shapes (N, K).
template <class T>
void activate(Activation act, const Batch<T>& Z, Batch<T>& A);

/// a[i] = f(z[i]) for i < n, f elementwise (not softmax): the values activate gives.
template <class T>
void activate_span(Activation act, const T* z, T* a, std::size_t n);
/// dz[i] = da[i] · f'(a[i]) for i < n, f elementwise (dz may be da): activation_backward's values.
template <class T>
void activation_backward_span(Activation act, const T* a, const T* da, T* dz, std::size_t n);

/// The same over a block: rows × n elements, each row ld elements after the one before.
template <class T>
void activate_block(Activation act, const T* z, T* a, std::size_t rows, std::size_t n,
                    std::size_t ld);
template <class T>
void activation_backward_block(Activation act, const T* a, const T* da, T* dz, std::size_t rows,
                               std::size_t n, std::size_t ld);
/// Rows [r0, r1) of activate (A already shaped like Z).
template <class T>
void activate_rows(Activation act, const Batch<T>& Z, Batch<T>& A, Index r0, Index r1);
/// Rows [r0, r1) of activation_backward (dZ already shaped like A; it may be dA).
template <class T>
void activation_backward_rows(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ,
                              Index r0, Index r1);

/// dZ = dA ⊙ f'(Z) (elementwise) or the softmax Jacobian-vector product, computed from A = f(Z).
/// dZ may alias dA. Shapes (N, K).
template <class T>
void activation_backward(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ);

}  // namespace chainrule
