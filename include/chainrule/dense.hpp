// A fully connected layer: z = x·W + b, a = f(z). Its parameters live in the network's flat
// buffer; the layer only knows where. W is (in, out) column-major, which is byte for byte
// PyTorch's nn.Linear weight of shape (out, in), so the buffer is saved without reshuffling.
#pragma once

#include "chainrule/activation.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

template <class T>
class Dense {
 public:
  using WeightMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>>;
  using ConstWeightMap =
      Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>>;
  using BiasMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;
  using ConstBiasMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;

  Dense(Index in, Index out, Activation activation, Index offset)
      : in_(in), out_(out), activation_(activation), offset_(offset) {}

  Index in() const { return in_; }
  Index out() const { return out_; }
  Activation activation() const { return activation_; }
  /// Position of W in the flat buffer; b follows at offset() + in()·out().
  Index offset() const { return offset_; }
  Index bias_offset() const { return offset_ + in_ * out_; }
  Index num_params() const { return in_ * out_ + out_; }

  /// W (in, out): W(i, j) is the weight from input i to neuron j. `base` is the flat buffer.
  WeightMap weight(T* base) const { return {base + offset_, in_, out_}; }
  ConstWeightMap weight(const T* base) const { return {base + offset_, in_, out_}; }
  /// b (1, out).
  BiasMap bias(T* base) const { return {base + bias_offset(), out_}; }
  ConstBiasMap bias(const T* base) const { return {base + bias_offset(), out_}; }

  /// The arithmetic of the matrix products: in T, or (T = float only, on a CPU with
  /// AVX512_BF16) with X, W and ∂L/∂Z rounded to bfloat16 and float32 sums, as PyTorch's CPU
  /// autocast multiplies (`--dtype bfloat16`). Sums over rows (∂L/∂b) and the activations stay
  /// in T.
  enum class Products { native, bf16 };

  /// Z = X·W + b (N, out); A = f(Z). With `wt`, a scratch matrix the caller keeps (resized here
  /// on first use), the products of a float32 layer over many rows may run on a row-major copy
  /// of W made there (small_products.hpp, transposed_forward_fits).
  void forward(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A,
               Products products = Products::native, Batch<T>* wt = nullptr) const;

  /// How backward writes dW and db into `grads`: added to them, or in place of them.
  enum class Grads { add, assign };

  /// Given dZ (N, out) and the layer input X (N, in): dW += Xᵀ·dZ, db += Σ_rows dZ (= with
  /// Grads::assign), and, when dX is not null, dX = dZ·Wᵀ (N, in).
  void backward(const T* params, T* grads, const BatchView<T>& X, const Batch<T>& dZ, Batch<T>* dX,
                Grads mode = Grads::add, Products products = Products::native) const;

  /// The same by columns (and rows), for threads that share a batch (Network's split by columns),
  /// native products and (by columns) an elementwise activation only; Z, A and dX already have
  /// their shapes.
  /// forward's columns [j0, j1): Z(:, j0:j1) = X·W(:, j0:j1) + b(j0:j1), A(:, j0:j1) = f(Z(...)).
  void forward_cols(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A, Index j0,
                    Index j1) const;
  /// forward's rows [r0, r1), for a layer whose columns are not shared (softmax included).
  void forward_rows(const T* params, const BatchView<T>& X, Batch<T>& Z, Batch<T>& A, Index r0,
                    Index r1) const;
  /// backward's dW(:, j0:j1) += Xᵀ·dZ(:, j0:j1) and db(j0:j1) += Σ_rows dZ(:, j0:j1) (= with
  /// Grads::assign).
  void backward_weights_cols(T* grads, const BatchView<T>& X, const Batch<T>& dZ, Index j0,
                             Index j1, Grads mode = Grads::add) const;
  /// backward's dX(:, i0:i1) = dZ·W(i0:i1, :)ᵀ.
  void backward_input_cols(const T* params, const Batch<T>& dZ, Batch<T>& dX, Index i0,
                           Index i1) const;
  /// backward's dX(r0:r1, :) = dZ(r0:r1, :)·Wᵀ.
  void backward_input_rows(const T* params, const Batch<T>& dZ, Batch<T>& dX, Index r0,
                           Index r1) const;

 private:
  Index in_, out_;
  Activation activation_;
  Index offset_;
};

}  // namespace chainrule
