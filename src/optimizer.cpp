#include "chainrule/optimizer.hpp"

#include <cassert>
#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

template <class T>
Sgd<T>::Sgd(SgdOptions options) : Optimizer<T>(options.lr), options_(options) {
  if (!(options.lr > 0))
    throw ConfigError("learning rate must be > 0, got " + std::to_string(options.lr));
  if (!(options.momentum >= 0 && options.momentum < 1))
    throw ConfigError("momentum must be in [0, 1), got " + std::to_string(options.momentum));
  if (!(options.weight_decay >= 0))
    throw ConfigError("weight decay must be >= 0, got " + std::to_string(options.weight_decay));
  if (options.nesterov && options.momentum == 0) throw ConfigError("nesterov needs a momentum > 0");
}

template <class T>
void Sgd<T>::step(std::span<T> params, std::span<const T> grads) {
  assert(params.size() == grads.size());
  const T lr = T(this->lr_), mu = T(options_.momentum), wd = T(options_.weight_decay);
  if (mu == T(0)) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const T g = wd == T(0) ? grads[i] : grads[i] + wd * params[i];
      params[i] -= lr * g;
    }
  } else {
    if (velocity_.size() != params.size()) velocity_.assign(params.size(), T(0));
    const bool first = this->steps_ == 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      T g = wd == T(0) ? grads[i] : grads[i] + wd * params[i];
      T& v = velocity_[i];
      v = first ? g : mu * v + g;
      g = options_.nesterov ? g + mu * v : v;
      params[i] -= lr * g;
    }
  }
  ++this->steps_;
}

template class Sgd<float>;
template class Sgd<double>;

}  // namespace chainrule
