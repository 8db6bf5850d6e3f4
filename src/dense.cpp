#include "chainrule/dense.hpp"

namespace chainrule {

template <class T>
void Dense<T>::forward(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A) const {
  Z.resize(X.rows(), out_);
  Z.noalias() = X * weight(params);  // (N, in)·(in, out)
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
                        Batch<T>* dX, Grads mode) const {
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
