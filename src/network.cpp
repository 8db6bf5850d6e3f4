#include "chainrule/network.hpp"

#include <algorithm>
#include <string>

#include "chainrule/error.hpp"
#include "chainrule/loss.hpp"
#include "chainrule/threads.hpp"

namespace chainrule {

void validate(const NetworkSpec& spec) {
  if (spec.inputs < 1)
    throw ConfigError("a network needs at least 1 input, got " + std::to_string(spec.inputs));
  if (spec.layers.empty()) throw ConfigError("a network needs at least one layer");
  for (std::size_t l = 0; l < spec.layers.size(); ++l)
    if (spec.layers[l].units < 1)
      throw ConfigError("layer " + std::to_string(l) + " has " +
                        std::to_string(spec.layers[l].units) + " units: expected at least 1");
  check_loss_output(spec.loss, spec.layers.back().activation);
}

std::string describe(const NetworkSpec& spec) {
  std::string s = std::to_string(spec.inputs) + " inputs";
  for (const LayerSpec& l : spec.layers)
    s += " → " + std::to_string(l.units) + " " + std::string(to_string(l.activation));
  return s;
}

template <class T>
Network<T>::Network(NetworkSpec spec) : spec_(std::move(spec)) {
  validate(spec_);
  detail::configure_blas_once();
  Index offset = 0, in = spec_.inputs;
  for (const LayerSpec& ls : spec_.layers) {
    layers_.emplace_back(in, ls.units, ls.activation, offset);
    offset += layers_.back().num_params();
    in = ls.units;
  }
  params_.assign(static_cast<std::size_t>(offset), T(0));
  grads_.assign(static_cast<std::size_t>(offset), T(0));
  work_.resize(layers_.size());
  // Measured (bench W1): below ~32 × 32 per layer, loops beat Eigen's product setup.
  small_ = std::all_of(layers_.begin(), layers_.end(),
                       [](const Dense<T>& l) { return l.in() * l.out() <= 1024; });
}

template <class T>
void Network<T>::forward_one(const T* x) {
  const T* p = params_.data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Dense<T>& layer = layers_[l];
    Workspace& w = work_[l];
    const Index in = layer.in(), out = layer.out();
    w.Z.resize(1, out);
    const T* W = p + layer.offset();
    const T* b = p + layer.bias_offset();
    T* z = w.Z.data();
    for (Index j = 0; j < out; ++j) {
      T sum = 0;
      for (Index i = 0; i < in; ++i)
        sum += x[i] * W[i + in * j];
      z[j] = sum + b[j];
    }
    if (layer.activation() == Activation::softmax) {
      activate(Activation::softmax, w.Z, w.A);
    } else {
      w.A.resize(1, out);
      for (Index j = 0; j < out; ++j)
        w.A.data()[j] = detail::activate_one(layer.activation(), z[j]);
    }
    x = w.A.data();
  }
}

template <class T>
void Network<T>::backward_one(const T* x0, const T* y) {
  // ∂L/∂Z of the output layer (∂L/∂A first where the loss is not fused), as loss_gradient and
  // activation_backward compute it, element by element.
  Workspace& top = work_.back();
  const Index K = outputs();
  const Activation out_act = layers_.back().activation();
  top.dZ.resize(1, K);
  const T* a = top.A.data();
  T* d = top.dZ.data();
  const T factor = T(detail::gradient_factor(spec_.loss, 1, K));
  for (Index k = 0; k < K; ++k)
    d[k] = (a[k] - y[k]) * factor;
  if (!is_fused(spec_.loss)) {
    if (out_act == Activation::softmax)
      activation_backward(out_act, top.A, top.dZ, top.dZ);
    else
      for (Index k = 0; k < K; ++k)
        d[k] = d[k] * detail::derivative_one(out_act, a[k]);
  }
  const T* p = params_.data();
  T* g = grads_.data();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const Dense<T>& layer = layers_[l];
    const Index in = layer.in(), out = layer.out();
    const T* x = l == 0 ? x0 : work_[l - 1].A.data();
    const T* dz = work_[l].dZ.data();
    T* gW = g + layer.offset();
    T* gb = g + layer.bias_offset();
    for (Index j = 0; j < out; ++j) {
      for (Index i = 0; i < in; ++i)
        gW[i + in * j] += x[i] * dz[j];
      gb[j] += dz[j];
    }
    if (l == 0) break;
    Workspace& below = work_[l - 1];
    below.dZ.resize(1, in);
    const T* W = p + layer.offset();
    const Activation act = layers_[l - 1].activation();
    for (Index i = 0; i < in; ++i) {
      T sum = 0;
      for (Index j = 0; j < out; ++j)
        sum += dz[j] * W[i + in * j];
      below.dZ.data()[i] = sum * detail::derivative_one(act, below.A.data()[i]);
    }
  }
}

template <class T>
double Network<T>::step_one(const T* x, const T* y) {
  zero_grad();
  forward_one(x);
  kept_ = false;  // x is not kept: a backward() now needs a forward() first
  const Workspace& top = work_.back();
  double sum = 0;
  detail::add_sample_loss<T>(spec_.loss, top.Z.data(), top.A.data(), y, outputs(), sum);
  backward_one(x, y);
  return sum / detail::loss_count(spec_.loss, 1, outputs());
}

template <class T>
void Network<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <class T>
void Network<T>::set_dropout_rate(double p) {
  if (!(p >= 0 && p < 1)) throw ConfigError("dropout must be in [0, 1), got " + std::to_string(p));
  dropout_ = p;
}

template <class T>
const Batch<T>& Network<T>::forward(const BatchView<T>& X, Rng* dropout) {
  input_ = X;  // no allocation once N is steady
  kept_ = true;
  return run(input_, dropout);
}

template <class T>
const Batch<T>& Network<T>::infer(const BatchView<T>& X) {
  kept_ = false;
  return run(X, nullptr);
}

template <class T>
const Batch<T>& Network<T>::run(const BatchView<T>& X, Rng* dropout) {
  dropped_ = dropout != nullptr && dropout_ > 0;
  one_ = X.rows() == 1 && small_ && !dropped_;
  if (one_) {
    forward_one(X.data());
    return work_.back().A;
  }
  const T keep_scale = T(1.0 / (1.0 - dropout_));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    Workspace& w = work_[l];
    if (l == 0)
      layers_[l].forward(params_.data(), X, w.Z, w.A);
    else
      layers_[l].forward(params_.data(), layer_input(l), w.Z, w.A);
    if (dropped_ && l + 1 < layers_.size()) {
      w.mask.resize(w.A.rows(), w.A.cols());
      for (Index i = 0; i < w.mask.size(); ++i)
        w.mask.data()[i] = dropout->uniform() < dropout_ ? T(0) : keep_scale;
      w.D = w.A.cwiseProduct(w.mask);
    }
  }
  return work_.back().A;
}

template <class T>
double Network<T>::loss(const BatchView<T>& Y) const {
  return loss_value<T>(spec_.loss, work_.back().Z, work_.back().A, Y);
}

template <class T>
void Network<T>::backward(const BatchView<T>& Y) {
  if (!kept_) throw ConfigError("backward needs a forward pass before it (infer keeps no input)");
  if (one_) return backward_one(input_.data(), Y.data());
  Workspace& top = work_.back();
  loss_gradient<T>(spec_.loss, top.A, Y, top.dZ);  // ∂L/∂Z if fused, else ∂L/∂A
  if (!is_fused(spec_.loss))
    activation_backward(layers_.back().activation(), top.A, top.dZ, top.dZ);

  for (std::size_t l = layers_.size(); l-- > 0;) {
    Batch<T>* dX = l == 0 ? nullptr : &work_[l - 1].dZ;  // ∂L/∂A of the layer below
    layers_[l].backward(params_.data(), grads_.data(), layer_input(l), work_[l].dZ, dX);
    if (l == 0) break;
    if (dropped_) *dX = dX->cwiseProduct(work_[l - 1].mask);  // ∂(A ⊙ mask)/∂A = mask
    activation_backward(layers_[l - 1].activation(), work_[l - 1].A, *dX, *dX);
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace chainrule
