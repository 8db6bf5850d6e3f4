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
// is given, dx = (dz Wᵀ) ⊙ f'(a) of the layer below, whose output a is, computed first: with
// Descend, each weight is then updated, W -= lr · gW and b -= lr · gb (Sgd's update, bit for bit).
template <Activation Below, bool Add, bool Descend, class T>
void layer_backward_one(const T* __restrict x, const T* __restrict dz, T* __restrict W,
                        T* __restrict b, T* __restrict gW, T* __restrict gb, const T* __restrict a,
                        T* __restrict dx, Index in, Index out, T lr) {
  if (dx) {
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
  for (Index j = 0; j < out; ++j) {
    T* g = gW + in * j;
    T* w = W + in * j;
    const T d = dz[j];
    for (Index i = 0; i < in; ++i) {
      g[i] = (Add ? g[i] : T(0)) + x[i] * d;
      if constexpr (Descend) w[i] -= lr * g[i];
    }
    gb[j] = (Add ? gb[j] : T(0)) + d;
    if constexpr (Descend) b[j] -= lr * gb[j];
  }
}

// A layer's loops in step_one's plan (L: Network<T>::OneLayer), compiled for its activation.
template <Activation Act, class L, class T>
void planned_forward(const T* x, const L& l) {
  layer_forward_one<Act>(x, l.W, l.b, l.z, l.a, l.in, l.out);
  if constexpr (Act == Activation::softmax) activate(Activation::softmax, *l.Zb, *l.Ab);
}

// The output layer's ∂L/∂Z for one sample (∂L/∂A first where the loss is not fused), as
// loss_gradient and activation_backward compute it, element by element; Fused: the loss's
// gradient is already ∂L/∂Z.
template <Activation Act, bool Fused, class L, class T>
void planned_top(const L& l, const T* __restrict y, T factor) {
  const T* __restrict a = l.a;
  T* __restrict d = l.dz;
  for (Index k = 0; k < l.out; ++k)
    d[k] = (a[k] - y[k]) * factor;
  if constexpr (Fused) return;
  if constexpr (Act == Activation::softmax) {
    activation_backward(Act, *l.Ab, *l.dZb, *l.dZb);
  } else {
    for (Index k = 0; k < l.out; ++k)
      d[k] = d[k] * detail::derivative_one(Act, a[k]);
  }
}

template <Activation Below, bool Add, bool Descend, class L, class T>
void planned_backward(const T* x, const L& l, T lr) {
  layer_backward_one<Below, Add, Descend>(x, l.dz, l.W, l.b, l.gW, l.gb, l.below_a, l.dx, l.in,
                                          l.out, lr);
}

}  // namespace

template <class T>
void Network<T>::forward_one(const T* x) {
  if (one_plan_.layers.empty()) make_one_plan();
  for (const OneLayer& l : one_plan_.layers) {
    l.forward(x, l);
    x = l.a;
  }
}

template <class T>
void Network<T>::backward_one(const T* x0, const T* y, OneBackward how, T lr) {
  if (one_plan_.layers.empty()) make_one_plan();
  const std::vector<OneLayer>& plan = one_plan_.layers;
  one_plan_.top(plan.back(), y, one_plan_.factor);
  for (std::size_t l = plan.size(); l-- > 0;)
    plan[l].backward[how](l == 0 ? x0 : plan[l - 1].a, plan[l], lr);
}

template <class T>
void Network<T>::make_one_plan() {
  one_plan_.layers.clear();
  T* p = params_.data();
  T* g = grads_.data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& layer = layers_[l];
    Workspace& w = work_[l];
    const Index in = layer.in(), out = layer.out();
    for (Batch<T>* m : {&w.Z, &w.A, &w.dZ})
      if (m->rows() != 1 || m->cols() != out) m->resize(1, out);
    OneLayer one{};
    one.W = p + layer.offset();
    one.b = p + layer.bias_offset();
    one.gW = g + layer.offset();
    one.gb = g + layer.bias_offset();
    one.z = w.Z.data();
    one.a = w.A.data();
    one.dz = w.dZ.data();
    one.Zb = &w.Z;
    one.Ab = &w.A;
    one.dZb = &w.dZ;
    one.in = in;
    one.out = out;
    if (l > 0) {  // sized in the iteration before
      one.dx = work_[l - 1].dZ.data();
      one.below_a = work_[l - 1].A.data();
    }
    with_activation(layer.activation(),
                    [&](auto act) { one.forward = &planned_forward<act(), OneLayer, T>; });
    with_activation(l > 0 ? layers_[l - 1].activation() : Activation::identity, [&](auto act) {
      one.backward[write] = &planned_backward<act(), false, false, OneLayer, T>;
      one.backward[descend] = &planned_backward<act(), false, true, OneLayer, T>;
      one.backward[add] = &planned_backward<act(), true, false, OneLayer, T>;
    });
    one_plan_.layers.push_back(one);
  }
  with_activation(layers_.back().activation(), [&](auto act) {
    if (is_fused(spec_.loss))
      one_plan_.top = &planned_top<act(), true, OneLayer, T>;
    else
      one_plan_.top = &planned_top<act(), false, OneLayer, T>;
  });
  one_plan_.factor =
      T(detail::gradient_factor(spec_.loss, loss_rows_ > 0 ? loss_rows_ : 1, outputs()));
}

template <class T>
double Network<T>::step_one_planned(const T* x, const T* y, OneBackward how, T lr) {
  use_work_for(1, true);  // clears the plan when the workspaces change
  forward_one(x);
  kept_ = false;  // x is not kept: a backward() now needs a forward() first
  const OneLayer& top = one_plan_.layers.back();
  double sum = 0;
  detail::add_sample_loss<T>(spec_.loss, top.z, top.a, y, top.out, sum);
  backward_one(x, y, how, lr);  // written over the gradients, as zero_grad and adding would
  return sum / detail::loss_count(spec_.loss, 1, top.out);
}

template <class T>
double Network<T>::step_one(const T* x, const T* y) {
  return step_one_planned(x, y, write, T(0));
}

template <class T>
double Network<T>::step_one_descend(const T* x, const T* y, T lr) {
  return step_one_planned(x, y, descend, lr);
}

#define CHAINRULE_INSTANTIATE(T)                                              \
  template void Network<T>::forward_one(const T*);                            \
  template void Network<T>::backward_one(const T*, const T*, OneBackward, T); \
  template double Network<T>::step_one(const T*, const T*);                   \
  template double Network<T>::step_one_descend(const T*, const T*, T);        \
  template void Network<T>::make_one_plan();                                  \
  template double Network<T>::step_one_planned(const T*, const T*, OneBackward, T);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
