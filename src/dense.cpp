#include "chainrule/dense.hpp"

#include <type_traits>

#include "bf16.hpp"

namespace chainrule {

namespace {

// The three products of a layer in bfloat16 (bf16.hpp): X (N, in) and the batch matrices are
// row-major, W (in, out) column-major.
using detail::Strided;

Strided strided(const BatchView<float>& M) {  // a row-major batch matrix
  return {M.data(), M.outerStride(), 1};
}

}  // namespace

template <class T>
void Dense<T>::forward(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A,
                       Products products) const {
  Z.resize(X.rows(), out_);
  if constexpr (std::is_same_v<T, float>) {
    if (products == Products::bf16)  // Z = X·W, W(i, j) at i + in·j
      detail::gemm_bf16(X.rows(), out_, in_, strided(X), {params + offset_, 1, in_}, Z.data(), out_,
                        1, false);
    else
      Z.noalias() = X * weight(params);  // (N, in)·(in, out)
  } else {
    Z.noalias() = X * weight(params);
  }
  const auto b = bias(params);
  if (activation_ == Activation::relu) {  // + b and the activation in one pass, row by row
    A.resize(Z.rows(), out_);
    for (Index n = 0; n < Z.rows(); ++n) {
      auto z = Z.row(n);
      z += b;
      A.row(n) = (z.array() > T(0)).select(z, T(0));
    }
    return;
  }
  Z.rowwise() += b;  // + b, broadcast over rows
  activate(activation_, Z, A);
}

template <class T>
void Dense<T>::backward(const T* params, T* grads, const BatchView<T>& X, const Batch<T>& dZ,
                        Batch<T>* dX, Grads mode, Products products) const {
  if constexpr (std::is_same_v<T, float>) {
    if (products == Products::bf16) {
      // ∂L/∂W = Xᵀ·∂L/∂Z into W's column-major place; ∂L/∂X = ∂L/∂Z·Wᵀ.
      detail::gemm_bf16(in_, out_, X.rows(), {X.data(), 1, X.outerStride()},
                        strided(BatchView<T>(dZ)), grads + offset_, 1, in_, mode == Grads::add);
      if (mode == Grads::add)
        bias(grads) += dZ.colwise().sum();
      else
        bias(grads) = dZ.colwise().sum();
      if (dX != nullptr) {
        dX->resize(X.rows(), in_);
        detail::gemm_bf16(X.rows(), in_, out_, strided(BatchView<T>(dZ)),
                          {params + offset_, in_, 1}, dX->data(), in_, 1, false);
      }
      return;
    }
  }
  if (mode == Grads::add) {
    weight(grads).noalias() += X.transpose() * dZ;  // ∂L/∂W = Xᵀ·∂L/∂Z      (in, out)
    bias(grads) += dZ.colwise().sum();              // ∂L/∂b = Σ_n ∂L/∂Z_n   (1, out)
  } else {
    weight(grads).noalias() = X.transpose() * dZ;
    bias(grads) = dZ.colwise().sum();
  }
  if (dX != nullptr) {
    dX->resize(X.rows(), in_);
    dX->noalias() = dZ * weight(params).transpose();  // ∂L/∂X = ∂L/∂Z·Wᵀ  (N, in)
  }
}

template class Dense<float>;
template class Dense<double>;

}  // namespace chainrule
