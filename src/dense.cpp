#include "chainrule/dense.hpp"

#include <type_traits>

#include "bf16.hpp"
#include "small_products.hpp"

namespace chainrule {

namespace {

// C (M×N) = (or +=) A·B with bfloat16 inputs and float32 sums (bf16.hpp), each matrix given by
// its pointer and its row and column strides. float32's only: Network::set_bf16_products
// refuses a float64 network, so the float64 instance is never called.
template <class T>
void product_bf16(Index M, Index N, Index K, const T* a, Index a_rs, Index a_cs, const T* b,
                  Index b_rs, Index b_cs, T* c, Index c_rs, Index c_cs, bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    detail::gemm_bf16(M, N, K, {a, a_rs, a_cs}, {b, b_rs, b_cs}, c, c_rs, c_cs, accumulate);
}

// Whether a layer's float32 products run on the library's own kernels (small_products.hpp):
// never a float64 layer's.
template <class T>
bool own_products(Index rows, Index in, Index out) {
  if constexpr (std::is_same_v<T, float>)
    return detail::small_products_fit(rows, in, out);
  else
    return false;
}

// The kernels of small_products.hpp for T = float (own_products<T> is false for any other T).
template <class T>
void own_xw(Index rows, Index n, Index K, const T* x, Index ldx, const T* w, Index ldw, T* z,
            Index ldz) {
  if constexpr (std::is_same_v<T, float>) detail::product_xw(rows, n, K, x, ldx, w, ldw, z, ldz);
}
template <class T>
void own_xtd(Index rows, Index n, Index K, const T* x, Index ldx, const T* d, Index ldd, T* g,
             Index ldg, bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    detail::product_xtd(rows, n, K, x, ldx, d, ldd, g, ldg, accumulate);
}
template <class T>
bool transposed_forward(Index rows, Index in, Index out) {
  if constexpr (std::is_same_v<T, float>)
    return detail::transposed_forward_fits(rows, in, out);
  else
    return false;
}
template <class T>
void own_transpose(Index in, Index out, const T* w, T* wt) {
  if constexpr (std::is_same_v<T, float>) detail::transpose_weights(in, out, w, wt);
}
template <class T>
void own_dwt(Index rows, Index m, Index N, const T* d, Index ldd, const T* w, Index ldw, T* e,
             Index lde) {
  if constexpr (std::is_same_v<T, float>) detail::product_dwt(rows, m, N, d, ldd, w, ldw, e, lde);
}

}  // namespace

// In the products of our own and the bfloat16 products below, X and the batch matrices are
// row-major (row stride: their outer stride) and W (in, out) column-major: W(i, j) at
// offset_ + i + in·j.

template <class T>
void Dense<T>::forward(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A,
                       Products products, Batch<T>* wt) const {
  Z.resize(X.rows(), out_);
  if (products == Products::bf16) {
    product_bf16<T>(X.rows(), out_, in_, X.data(), X.outerStride(), 1, params + offset_, 1, in_,
                    Z.data(), out_, 1, false);
  } else if (wt != nullptr && transposed_forward<T>(X.rows(), in_, out_)) {
    wt->resize(in_, out_);  // row-major: W's rows contiguous
    own_transpose<T>(in_, out_, params + offset_, wt->data());
    own_dwt<T>(X.rows(), out_, in_, X.data(), X.outerStride(), wt->data(), out_, Z.data(), out_);
  } else if (own_products<T>(X.rows(), in_, out_)) {
    own_xw<T>(X.rows(), out_, in_, X.data(), X.outerStride(), params + offset_, in_, Z.data(),
              out_);
  } else {
    Z.noalias() = X * weight(params);  // (N, in)·(in, out)
  }
  const auto b = bias(params);
  if (activation_ == Activation::relu) {  // + b and the activation in one pass, row by row
    A.resize(Z.rows(), out_);
    for (Index n = 0; n < Z.rows(); ++n) {
      auto z = Z.row(n);
      z += b;
      activate_span(Activation::relu, z.data(), A.row(n).data(), std::size_t(out_));
    }
    return;
  }
  Z.rowwise() += b;  // + b, broadcast over rows
  activate(activation_, Z, A);
}

template <class T>
void Dense<T>::backward(const T* params, T* grads, const BatchView<T>& X, const Batch<T>& dZ,
                        Batch<T>* dX, Grads mode, Products products) const {
  const bool bf16 = products == Products::bf16, add = mode == Grads::add;
  if (bf16)  // ∂L/∂W = Xᵀ·∂L/∂Z into W's column-major place
    product_bf16<T>(in_, out_, X.rows(), X.data(), 1, X.outerStride(), dZ.data(), out_, 1,
                    grads + offset_, 1, in_, add);
  else if (own_products<T>(X.rows(), in_, out_))
    own_xtd<T>(X.rows(), out_, in_, X.data(), X.outerStride(), dZ.data(), dZ.outerStride(),
               grads + offset_, in_, add);
  else if (add)
    weight(grads).noalias() += X.transpose() * dZ;  // ∂L/∂W = Xᵀ·∂L/∂Z      (in, out)
  else
    weight(grads).noalias() = X.transpose() * dZ;
  if (add)
    bias(grads) += dZ.colwise().sum();  // ∂L/∂b = Σ_n ∂L/∂Z_n   (1, out), float32 sums either way
  else
    bias(grads) = dZ.colwise().sum();
  if (dX != nullptr) {
    dX->resize(X.rows(), in_);
    if (bf16)
      product_bf16<T>(X.rows(), in_, out_, dZ.data(), out_, 1, params + offset_, in_, 1, dX->data(),
                      in_, 1, false);
    else if (own_products<T>(X.rows(), in_, out_))
      own_dwt<T>(X.rows(), in_, out_, dZ.data(), dZ.outerStride(), params + offset_, in_,
                 dX->data(), in_);
    else
      dX->noalias() = dZ * weight(params).transpose();  // ∂L/∂X = ∂L/∂Z·Wᵀ  (N, in)
  }
}

template <class T>
void Dense<T>::forward_cols(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A,
                            Index j0, Index j1) const {
  const Index n = j1 - j0;
  if (n <= 0) return;
  auto Zj = Z.middleCols(j0, n);
  if (own_products<T>(X.rows(), in_, out_))
    own_xw<T>(X.rows(), n, in_, X.data(), X.outerStride(), params + offset_ + in_ * j0, in_,
              Zj.data(), Z.outerStride());
  else
    Zj.noalias() = X * weight(params).middleCols(j0, n);
  Zj.rowwise() += bias(params).segment(j0, n);
  activate_block(activation_, Zj.data(), A.data() + j0, std::size_t(Z.rows()), std::size_t(n),
                 std::size_t(Z.cols()));
}

template <class T>
void Dense<T>::forward_rows(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A,
                            Index r0, Index r1) const {
  const Index n = r1 - r0;
  if (n <= 0) return;
  auto Zr = Z.middleRows(r0, n);
  if (own_products<T>(X.rows(), in_, out_))
    own_xw<T>(n, out_, in_, X.data() + r0 * X.outerStride(), X.outerStride(), params + offset_, in_,
              Zr.data(), Z.outerStride());
  else
    Zr.noalias() = X.middleRows(r0, n) * weight(params);
  Zr.rowwise() += bias(params);
  activate_rows(activation_, Z, A, r0, r1);
}

template <class T>
void Dense<T>::backward_weights_cols(T* grads, const BatchView<T>& X, const Batch<T>& dZ, Index j0,
                                     Index j1, Grads mode) const {
  const Index n = j1 - j0;
  if (n <= 0) return;
  const bool add = mode == Grads::add;
  if (own_products<T>(X.rows(), in_, out_))
    own_xtd<T>(X.rows(), n, in_, X.data(), X.outerStride(), dZ.data() + j0, dZ.outerStride(),
               grads + offset_ + in_ * j0, in_, add);
  else if (add)
    weight(grads).middleCols(j0, n).noalias() += X.transpose() * dZ.middleCols(j0, n);
  else
    weight(grads).middleCols(j0, n).noalias() = X.transpose() * dZ.middleCols(j0, n);
  if (add)
    bias(grads).segment(j0, n) += dZ.middleCols(j0, n).colwise().sum();
  else
    bias(grads).segment(j0, n) = dZ.middleCols(j0, n).colwise().sum();
}

template <class T>
void Dense<T>::backward_input_cols(const T* params, const Batch<T>& dZ, Batch<T>& dX, Index i0,
                                   Index i1) const {
  const Index n = i1 - i0;
  if (n <= 0) return;
  if (own_products<T>(dZ.rows(), in_, out_))
    own_dwt<T>(dZ.rows(), n, out_, dZ.data(), dZ.outerStride(), params + offset_ + i0, in_,
               dX.data() + i0, dX.outerStride());
  else
    dX.middleCols(i0, n).noalias() = dZ * weight(params).middleRows(i0, n).transpose();
}

template <class T>
void Dense<T>::backward_input_rows(const T* params, const Batch<T>& dZ, Batch<T>& dX, Index r0,
                                   Index r1) const {
  const Index n = r1 - r0;
  if (n <= 0) return;
  if (own_products<T>(dZ.rows(), in_, out_))
    own_dwt<T>(n, in_, out_, dZ.data() + r0 * dZ.outerStride(), dZ.outerStride(), params + offset_,
               in_, dX.data() + r0 * dX.outerStride(), dX.outerStride());
  else
    dX.middleRows(r0, n).noalias() = dZ.middleRows(r0, n) * weight(params).transpose();
}

template class Dense<float>;
template class Dense<double>;

}  // namespace chainrule
