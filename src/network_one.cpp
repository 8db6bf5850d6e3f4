// The per-sample path of a small network (Network::forward_one, backward_one, step_one): plain
// loops, compiled in a file of their own without vectorization (CMakeLists.txt). At these sizes
// (a few units per layer) a vectorized loop's checks and remainder cost more than they save: the
// tutorial's forward and backward took 567 instructions a step instead of 647 (callgrind,
// `chainrule_bench w1`).
#include <type_traits>

#include "chainrule/loss.hpp"
#include "chainrule/network.hpp"

namespace chainrule {

namespace {

// Calls f(std::integral_constant<Activation, act>{}): the per-sample loops below are compiled
// once per activation, so no switch runs per element.
template <class F>
void with_activation(Activation act, F&& f) {
  using A = Activation;
  switch (act) {
    case A::identity:
      return f(std::integral_constant<A, A::identity>{});
    case A::sigmoid:
      return f(std::integral_constant<A, A::sigmoid>{});
    case A::tanh:
      return f(std::integral_constant<A, A::tanh>{});
    case A::relu:
      return f(std::integral_constant<A, A::relu>{});
    case A::leaky_relu:
      return f(std::integral_constant<A, A::leaky_relu>{});
    case A::softmax:
      return f(std::integral_constant<A, A::softmax>{});
  }
}

// One layer, one sample: z = x W + b, then a = f(z) when f is elementwise (softmax is the
// caller's). W (in, out) column-major.
template <Activation Act, class T>
void layer_forward_one(const T* __restrict x, const T* __restrict W, const T* __restrict b,
                       T* __restrict z, T* __restrict a, Index in, Index out) {
  for (Index j = 0; j < out; ++j) {
    const T* w = W + in * j;
    T sum = 0;
    for (Index i = 0; i < in; ++i)
      sum += x[i] * w[i];
    z[j] = sum + b[j];
    if constexpr (Act != Activation::softmax) a[j] = detail::activate_one(Act, z[j]);
  }
}

// One layer's gradients for one sample from its dz: gW (+)= xᵀ dz, gb (+)= dz (Add: added to
// what is there; otherwise 0 + the term, the same bits as adding to zeroed gradients). When dx
// is given, dx = (dz Wᵀ) ⊙ f'(a) of the layer below, whose output a is.
template <Activation Below, bool Add, class T>
void layer_backward_one(const T* __restrict x, const T* __restrict dz, const T* __restrict W,
                        T* __restrict gW, T* __restrict gb, const T* __restrict a, T* __restrict dx,
                        Index in, Index out) {
  for (Index j = 0; j < out; ++j) {
    T* g = gW + in * j;
    const T d = dz[j];
    for (Index i = 0; i < in; ++i)
      g[i] = (Add ? g[i] : T(0)) + x[i] * d;
    gb[j] = (Add ? gb[j] : T(0)) + d;
  }
  if (!dx) return;
  if constexpr (Below == Activation::softmax) {
    detail::not_elementwise();  // a softmax below the top layer has no elementwise derivative
  } else {
    for (Index i = 0; i < in; ++i) {
      T sum = 0;
      for (Index j = 0; j < out; ++j)
        sum += dz[j] * W[i + in * j];
      dx[i] = sum * detail::derivative_one(Below, a[i]);
    }
  }
}

}  // namespace

template <class T>
void Network<T>::forward_one(const T* x) {
  const T* p = params_.data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& layer = layers_[l];
    Workspace& w = work_[l];
    const Index in = layer.in(), out = layer.out();
    if (w.Z.rows() != 1 || w.Z.cols() != out) w.Z.resize(1, out);
    if (w.A.rows() != 1 || w.A.cols() != out) w.A.resize(1, out);
    with_activation(layer.activation(), [&](auto act) {
      layer_forward_one<act()>(x, p + layer.offset(), p + layer.bias_offset(), w.Z.data(),
                               w.A.data(), in, out);
    });
    if (layer.activation() == Activation::softmax) activate(Activation::softmax, w.Z, w.A);
    x = w.A.data();
  }
}

template <class T>
template <bool Add>
void Network<T>::backward_one(const T* x0, const T* y) {
  // ∂L/∂Z of the output layer (∂L/∂A first where the loss is not fused), as loss_gradient and
  // activation_backward compute it, element by element.
  Workspace& top = work_.back();
  const Index K = outputs();
  const Activation out_act = layers_.back().activation();
  if (top.dZ.rows() != 1 || top.dZ.cols() != K) top.dZ.resize(1, K);
  const T* a = top.A.data();
  T* d = top.dZ.data();
  const T factor = T(detail::gradient_factor(spec_.loss, loss_rows_ > 0 ? loss_rows_ : 1, K));
  for (Index k = 0; k < K; ++k)
    d[k] = (a[k] - y[k]) * factor;
  if (!is_fused(spec_.loss)) {
    if (out_act == Activation::softmax)
      activation_backward(out_act, top.A, top.dZ, top.dZ);
    else
      with_activation(out_act, [&](auto act) {
        for (Index k = 0; k < K; ++k)
          d[k] = d[k] * detail::derivative_one(act(), a[k]);
      });
  }
  const T* p = params_.data();
  T* g = grads_.data();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const Dense<T>& layer = layers_[l];
    const Index in = layer.in(), out = layer.out();
    const T* x = l == 0 ? x0 : work_[l - 1].A.data();
    T* dx = nullptr;
    const T* below_a = nullptr;
    Activation below = Activation::identity;
    if (l > 0) {
      Workspace& w = work_[l - 1];
      if (w.dZ.rows() != 1 || w.dZ.cols() != in) w.dZ.resize(1, in);
      dx = w.dZ.data();
      below_a = w.A.data();
      below = layers_[l - 1].activation();
    }
    with_activation(below, [&](auto act) {
      layer_backward_one<act(), Add>(x, work_[l].dZ.data(), p + layer.offset(), g + layer.offset(),
                                     g + layer.bias_offset(), below_a, dx, in, out);
    });
  }
}

template <class T>
double Network<T>::step_one(const T* x, const T* y) {
  use_work_for(1, true);
  forward_one(x);
  kept_ = false;  // x is not kept: a backward() now needs a forward() first
  const Workspace& top = work_.back();
  double sum = 0;
  detail::add_sample_loss<T>(spec_.loss, top.Z.data(), top.A.data(), y, outputs(), sum);
  backward_one<false>(x, y);  // written over the gradients, as zero_grad and adding would
  return sum / detail::loss_count(spec_.loss, 1, outputs());
}

#define CHAINRULE_INSTANTIATE(T)                                     \
  template void Network<T>::forward_one(const T*);                   \
  template void Network<T>::backward_one<true>(const T*, const T*);  \
  template void Network<T>::backward_one<false>(const T*, const T*); \
  template double Network<T>::step_one(const T*, const T*);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
