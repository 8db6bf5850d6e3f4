#include "chainrule/activation.hpp"

#include <cmath>
#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

namespace {

// sigmoid:  a = 1 / (1 + e^-z)            da/dz = a (1 - a)
// Written so that exp never overflows: for z < 0 use e^z / (1 + e^z).
template <class T>
T sigmoid(T z) {
  if (z >= 0) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

// tanh:     a = tanh z                    da/dz = 1 - a²
// relu:     a = max(z, 0)                 da/dz = 1 if z > 0 else 0  (= 1 if a > 0)
// leaky:    a = z if z > 0 else s·z       da/dz = 1 if z > 0 else s  (s > 0, so z > 0 ⇔ a > 0)
// identity: a = z                         da/dz = 1
template <class T>
T activate_one(Activation act, T z) {
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
  throw ConfigError("softmax is not an elementwise activation");
}

template <class T>
T derivative_one(Activation act, T a) {
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
  throw ConfigError("softmax is not an elementwise activation");
}

constexpr std::string_view kNames[] = {"identity", "sigmoid",    "tanh",
                                       "relu",     "leaky_relu", "softmax"};

}  // namespace

std::string_view to_string(Activation a) {
  return kNames[static_cast<int>(a)];
}

Activation parse_activation(std::string_view name) {
  for (int i = 0; i < 6; ++i)
    if (kNames[i] == name) return static_cast<Activation>(i);
  throw ConfigError("unknown activation '" + std::string(name) +
                    "': expected identity, sigmoid, tanh, relu, leaky_relu or softmax");
}

double scalar::activate(Activation act, double z) {
  return activate_one(act, z);
}
double scalar::derivative_from_output(Activation act, double a) {
  return derivative_one(act, a);
}

template <class T>
void activate(Activation act, const Batch<T>& Z, Batch<T>& A) {
  A.resize(Z.rows(), Z.cols());
  if (act == Activation::softmax) {
    // softmax: a_k = e^(z_k - m) / Σ_j e^(z_j - m), m = max_j z_j (so no exp overflows).
    //          ∂a_k/∂z_j = a_k (δ_kj - a_j)
    for (Index n = 0; n < Z.rows(); ++n) {
      const T m = Z.row(n).maxCoeff();
      A.row(n) = (Z.row(n).array() - m).exp();
      A.row(n) /= A.row(n).sum();
    }
    return;
  }
  A = Z.unaryExpr([act](T z) { return activate_one(act, z); });
}

template <class T>
void activation_backward(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ) {
  if (act == Activation::softmax) {
    // dz_j = Σ_k da_k a_k (δ_kj - a_j) = a_j (da_j - Σ_k da_k a_k)
    dZ.resize(A.rows(), A.cols());
    for (Index n = 0; n < A.rows(); ++n) {
      const T dot = A.row(n).dot(dA.row(n));
      dZ.row(n) = A.row(n).array() * (dA.row(n).array() - dot);
    }
    return;
  }
  dZ = dA.binaryExpr(A, [act](T da, T a) { return da * derivative_one(act, a); });
}

template void activate<float>(Activation, const Batch<float>&, Batch<float>&);
template void activate<double>(Activation, const Batch<double>&, Batch<double>&);
template void activation_backward<float>(Activation, const Batch<float>&, const Batch<float>&,
                                         Batch<float>&);
template void activation_backward<double>(Activation, const Batch<double>&, const Batch<double>&,
                                          Batch<double>&);

}  // namespace chainrule
