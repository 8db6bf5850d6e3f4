#include "chainrule/activation.hpp"

#include <cmath>
#include <string>

#include "chainrule/error.hpp"
#include "enum_names.hpp"
#include "wide.hpp"

namespace chainrule {

namespace {

using A = Activation;
constexpr detail::EnumName<A> kNames[] = {
    {A::identity, "identity"}, {A::sigmoid, "sigmoid"},       {A::tanh, "tanh"},
    {A::relu, "relu"},         {A::leaky_relu, "leaky_relu"}, {A::softmax, "softmax"}};

// ReLU and its gradient over a block of rows × n elements (rows ld apart), in the widest
// instruction set the CPU has (wide.hpp): the same values as activate_one and derivative_one
// (a = z if z > 0 else 0; da/dz · upstream as the product with 1 or 0).
template <class T>
[[gnu::always_inline]] inline void relu_row(const T* __restrict z, T* __restrict a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    a[i] = z[i] > T(0) ? z[i] : T(0);
}
// dz may be da (in place); a is neither.
template <class T>
[[gnu::always_inline]] inline void relu_backward_row(const T* __restrict a, const T* da, T* dz,
                                                     std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    dz[i] = da[i] * (a[i] > T(0) ? T(1) : T(0));
}
struct ReluBody {
  template <class T>
  [[gnu::always_inline]] static void run(const T* z, T* a, std::size_t rows, std::size_t n,
                                         std::size_t ld) {
    for (std::size_t r = 0; r < rows; ++r)
      relu_row(z + r * ld, a + r * ld, n);
  }
};
struct ReluBackwardBody {
  template <class T>
  [[gnu::always_inline]] static void run(const T* a, const T* da, T* dz, std::size_t rows,
                                         std::size_t n, std::size_t ld) {
    for (std::size_t r = 0; r < rows; ++r)
      relu_backward_row(a + r * ld, da + r * ld, dz + r * ld, n);
  }
};

}  // namespace

void detail::not_elementwise() {
  throw ConfigError("softmax is not an elementwise activation");
}

std::string_view to_string(Activation a) {
  return detail::name_of<Activation>(kNames, a);
}

Activation parse_activation(std::string_view name) {
  return detail::parse_name<Activation>(kNames, name, "activation");
}

double scalar::activate(Activation act, double z) {
  return detail::activate_one(act, z);
}
double scalar::derivative_from_output(Activation act, double a) {
  return detail::derivative_one(act, a);
}

template <class T>
void activate(Activation act, const Batch<T>& Z, Batch<T>& A) {
  A.resize(Z.rows(), Z.cols());
  if (act == Activation::softmax) return activate_rows(act, Z, A, 0, Z.rows());
  // The piecewise-linear ones as vectorized selects, with the same values as activate_one.
  if (act == Activation::relu)
    activate_span(act, Z.data(), A.data(), std::size_t(Z.size()));
  else if (act == Activation::leaky_relu)
    A = (Z.array() > T(0)).select(Z, T(kLeakySlope) * Z);
  else if (act == Activation::identity)
    A = Z;
  else
    A = Z.unaryExpr([act](T z) { return detail::activate_one(act, z); });
}

template <class T>
void activation_backward(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ) {
  if (act == Activation::softmax) {
    dZ.resize(A.rows(), A.cols());
    return activation_backward_rows(act, A, dA, dZ, 0, A.rows());
  }
  // da · f'(a), vectorized for the piecewise-linear ones (the same products as derivative_one's).
  if (act == Activation::relu) {
    dZ.resize(A.rows(), A.cols());
    activation_backward_span(act, A.data(), dA.data(), dZ.data(), std::size_t(A.size()));
  } else if (act == Activation::leaky_relu) {
    using Arr = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    dZ = (dA.array() * (A.array() > T(0))
                           .select(Arr::Constant(A.rows(), A.cols(), T(1)),
                                   Arr::Constant(A.rows(), A.cols(), T(kLeakySlope))))
             .matrix();
  } else if (act == Activation::identity)
    dZ = dA;
  else
    dZ = dA.binaryExpr(A, [act](T da, T a) { return da * detail::derivative_one(act, a); });
}

template <class T>
void activate_block(Activation act, const T* z, T* a, std::size_t rows, std::size_t n,
                    std::size_t ld) {
  if (act == Activation::relu) return detail::run_wide_n<ReluBody>(rows * n, z, a, rows, n, ld);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < n; ++i)
      a[r * ld + i] = detail::activate_one(act, z[r * ld + i]);
}

template <class T>
void activation_backward_block(Activation act, const T* a, const T* da, T* dz, std::size_t rows,
                               std::size_t n, std::size_t ld) {
  if (act == Activation::relu)
    return detail::run_wide_n<ReluBackwardBody>(rows * n, a, da, dz, rows, n, ld);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < n; ++i)
      dz[r * ld + i] = da[r * ld + i] * detail::derivative_one(act, a[r * ld + i]);
}

template <class T>
void activate_span(Activation act, const T* z, T* a, std::size_t n) {
  activate_block(act, z, a, 1, n, n);
}

template <class T>
void activation_backward_span(Activation act, const T* a, const T* da, T* dz, std::size_t n) {
  activation_backward_block(act, a, da, dz, 1, n, n);
}

template <class T>
void activate_rows(Activation act, const Batch<T>& Z, Batch<T>& A, Index r0, Index r1) {
  if (act != Activation::softmax) {
    if (r1 > r0)
      activate_span(act, Z.row(r0).data(), A.row(r0).data(), std::size_t((r1 - r0) * Z.cols()));
    return;
  }
  // softmax: a_k = e^(z_k - m) / Σ_j e^(z_j - m), m = max_j z_j (so no exp overflows).
  //          ∂a_k/∂z_j = a_k (δ_kj - a_j)
  for (Index n = r0; n < r1; ++n) {
    const T m = Z.row(n).maxCoeff();
    A.row(n) = (Z.row(n).array() - m).exp();
    A.row(n) /= A.row(n).sum();
  }
}

template <class T>
void activation_backward_rows(Activation act, const Batch<T>& A, const Batch<T>& dA, Batch<T>& dZ,
                              Index r0, Index r1) {
  if (act != Activation::softmax) {
    if (r1 > r0)
      activation_backward_span(act, A.row(r0).data(), dA.row(r0).data(), dZ.row(r0).data(),
                               std::size_t((r1 - r0) * A.cols()));
    return;
  }
  // dz_j = Σ_k da_k a_k (δ_kj - a_j) = a_j (da_j - Σ_k da_k a_k)
  for (Index n = r0; n < r1; ++n) {
    const T dot = A.row(n).dot(dA.row(n));
    dZ.row(n) = A.row(n).array() * (dA.row(n).array() - dot);
  }
}

#define CHAINRULE_INSTANTIATE(T)                                                              \
  template void activate_block<T>(Activation, const T*, T*, std::size_t, std::size_t,         \
                                  std::size_t);                                               \
  template void activation_backward_block<T>(Activation, const T*, const T*, T*, std::size_t, \
                                             std::size_t, std::size_t);                       \
  template void activate_rows<T>(Activation, const Batch<T>&, Batch<T>&, Index, Index);       \
  template void activation_backward_rows<T>(Activation, const Batch<T>&, const Batch<T>&,     \
                                            Batch<T>&, Index, Index);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

template void activate_span<float>(Activation, const float*, float*, std::size_t);
template void activate_span<double>(Activation, const double*, double*, std::size_t);
template void activation_backward_span<float>(Activation, const float*, const float*, float*,
                                              std::size_t);
template void activation_backward_span<double>(Activation, const double*, const double*, double*,
                                               std::size_t);
template void activate<float>(Activation, const Batch<float>&, Batch<float>&);
template void activate<double>(Activation, const Batch<double>&, Batch<double>&);
template void activation_backward<float>(Activation, const Batch<float>&, const Batch<float>&,
                                         Batch<float>&);
template void activation_backward<double>(Activation, const Batch<double>&, const Batch<double>&,
                                          Batch<double>&);

}  // namespace chainrule
