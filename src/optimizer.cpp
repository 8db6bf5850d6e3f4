#include "chainrule/optimizer.hpp"

#include <cassert>
#include <cmath>
#include <numbers>
#include <string>

#include "chainrule/error.hpp"
#include "enum_names.hpp"

namespace chainrule {

template <class T>
OptimizerState Optimizer<T>::state() {
  OptimizerState s{.steps = steps_, .buffers = {}};
  for (const std::vector<T>* b : buffers())
    s.buffers.emplace_back(b->begin(), b->end());
  return s;
}

template <class T>
void Optimizer<T>::set_state(const OptimizerState& s) {
  const std::vector<std::vector<T>*> mine = buffers();
  if (s.buffers.size() != mine.size() || s.steps < 0)
    throw ConfigError("the optimizer state has " + std::to_string(s.buffers.size()) +
                      " buffers, this optimizer keeps " + std::to_string(mine.size()));
  steps_ = s.steps;
  for (std::size_t i = 0; i < mine.size(); ++i)
    mine[i]->assign(s.buffers[i].begin(), s.buffers[i].end());
}

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
void Sgd<T>::begin_step(std::size_t n) {
  if (options_.momentum != 0 && velocity_.size() != n) velocity_.assign(n, T(0));
  first_ = this->steps_ == 0;
  ++this->steps_;
}

template <class T>
void Sgd<T>::update(std::span<T> params, std::span<const T> grads, std::size_t begin,
                    std::size_t end) {
  assert(params.size() == grads.size());
  const T lr = T(this->lr_), mu = T(options_.momentum), wd = T(options_.weight_decay);
  if (mu == T(0)) {
    T* __restrict p = params.data();
    const T* __restrict g = grads.data();
    if (wd == T(0))
      for (std::size_t i = begin; i < end; ++i)
        p[i] -= lr * g[i];
    else
      for (std::size_t i = begin; i < end; ++i)
        p[i] -= lr * (g[i] + wd * p[i]);
  } else {
    for (std::size_t i = begin; i < end; ++i) {
      T g = wd == T(0) ? grads[i] : grads[i] + wd * params[i];
      T& v = velocity_[i];
      v = first_ ? g : mu * v + g;
      g = options_.nesterov ? g + mu * v : v;
      params[i] -= lr * g;
    }
  }
}

template <class T>
Adam<T>::Adam(AdamOptions o) : Optimizer<T>(o.lr), options_(o) {
  if (!(o.lr > 0)) throw ConfigError("learning rate must be > 0, got " + std::to_string(o.lr));
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    throw ConfigError("Adam's betas must be in [0, 1)");
  if (!(o.eps > 0)) throw ConfigError("Adam's eps must be > 0");
  if (!(o.weight_decay >= 0))
    throw ConfigError("weight decay must be >= 0, got " + std::to_string(o.weight_decay));
}

template <class T>
void Adam<T>::begin_step(std::size_t n) {
  if (m_.size() != n) {
    m_.assign(n, T(0));
    v_.assign(n, T(0));
  }
  const std::int64_t t = ++this->steps_;
  const double lr = this->lr_;
  step_size_ = T(lr / (1 - std::pow(options_.beta1, double(t))));
  bc2_sqrt_ = T(std::sqrt(1 - std::pow(options_.beta2, double(t))));
  decay_ = T(1 - lr * options_.weight_decay);
}

namespace {

// Adam's elementwise update over n elements, the same operations in the same order for every
// element. Inlined into each of the versions below, so that the one the CPU can run best is
// vectorized for it.
template <class T>
[[gnu::always_inline]] inline void adam_loop(T* __restrict p, const T* __restrict gr,
                                             T* __restrict m, T* __restrict v, std::size_t n, T b1,
                                             T b2, T eps, T wd, T step_size, T bc2_sqrt, T decay,
                                             bool decoupled) {
  const auto update = [&](std::size_t i, T g) {
    m[i] = m[i] * b1 + g * (T(1) - b1);
    v[i] = v[i] * b2 + g * g * (T(1) - b2);
    const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] -= step_size * m[i] / denom;
  };
  if (decoupled) {
    for (std::size_t i = 0; i < n; ++i) {
      p[i] *= decay;
      update(i, gr[i]);
    }
  } else if (wd != T(0)) {
    for (std::size_t i = 0; i < n; ++i)
      update(i, gr[i] + wd * p[i]);
  } else {
    for (std::size_t i = 0; i < n; ++i)
      update(i, gr[i]);
  }
}

// One version per instruction set, chosen at the first call from what the CPU has: AVX-512 does
// 16 floats per instruction where the build's baseline (SSE2) does 4. Every version rounds each
// operation as IEEE does (no contraction into fused multiply-adds: -ffp-contract=off, see
// CMakeLists.txt), so all give the same bits. (Chosen by a plain check, not by target_clones:
// its ifunc resolvers run before ThreadSanitizer's runtime is up, and crashed the TSan build.)
template <class T>
using AdamFn = void (*)(T*, const T*, T*, T*, std::size_t, T, T, T, T, T, T, T, bool);

template <class T>
__attribute__((target("avx512f"))) void adam_avx512(T* p, const T* gr, T* m, T* v, std::size_t n,
                                                    T b1, T b2, T eps, T wd, T step_size,
                                                    T bc2_sqrt, T decay, bool decoupled) {
  adam_loop<T>(p, gr, m, v, n, b1, b2, eps, wd, step_size, bc2_sqrt, decay, decoupled);
}
template <class T>
__attribute__((target("avx2"))) void adam_avx2(T* p, const T* gr, T* m, T* v, std::size_t n, T b1,
                                               T b2, T eps, T wd, T step_size, T bc2_sqrt, T decay,
                                               bool decoupled) {
  adam_loop<T>(p, gr, m, v, n, b1, b2, eps, wd, step_size, bc2_sqrt, decay, decoupled);
}
template <class T>
void adam_baseline(T* p, const T* gr, T* m, T* v, std::size_t n, T b1, T b2, T eps, T wd,
                   T step_size, T bc2_sqrt, T decay, bool decoupled) {
  adam_loop<T>(p, gr, m, v, n, b1, b2, eps, wd, step_size, bc2_sqrt, decay, decoupled);
}

template <class T>
AdamFn<T> adam_wide() {
  static const AdamFn<T> chosen = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return &adam_avx512<T>;
    if (__builtin_cpu_supports("avx2")) return &adam_avx2<T>;
    return &adam_baseline<T>;
  }();
  return chosen;
}

}  // namespace

template <class T>
void Adam<T>::update(std::span<T> params, std::span<const T> grads, std::size_t begin,
                     std::size_t end) {
  assert(params.size() == grads.size());
  adam_wide<T>()(params.data() + begin, grads.data() + begin, m_.data() + begin, v_.data() + begin,
                 end - begin, T(options_.beta1), T(options_.beta2), T(options_.eps),
                 T(options_.weight_decay), step_size_, bc2_sqrt_, decay_, options_.decoupled);
}

template <class T>
Rmsprop<T>::Rmsprop(RmspropOptions o) : Optimizer<T>(o.lr), options_(o) {
  if (!(o.lr > 0)) throw ConfigError("learning rate must be > 0, got " + std::to_string(o.lr));
  if (!(o.alpha >= 0 && o.alpha < 1)) throw ConfigError("RMSprop's alpha must be in [0, 1)");
  if (!(o.momentum >= 0 && o.momentum < 1))
    throw ConfigError("momentum must be in [0, 1), got " + std::to_string(o.momentum));
  if (!(o.weight_decay >= 0)) throw ConfigError("weight decay must be >= 0");
}

template <class T>
void Rmsprop<T>::begin_step(std::size_t n) {
  if (square_avg_.size() != n) {
    square_avg_.assign(n, T(0));
    if (options_.momentum > 0) buffer_.assign(n, T(0));
  }
  ++this->steps_;
}

template <class T>
void Rmsprop<T>::update(std::span<T> params, std::span<const T> grads, std::size_t begin,
                        std::size_t end) {
  const T lr = T(this->lr_), a = T(options_.alpha), eps = T(options_.eps);
  const T wd = T(options_.weight_decay), mu = T(options_.momentum);
  for (std::size_t i = begin; i < end; ++i) {
    const T g = wd == T(0) ? grads[i] : grads[i] + wd * params[i];
    square_avg_[i] = square_avg_[i] * a + g * g * (T(1) - a);
    const T avg = std::sqrt(square_avg_[i]) + eps;
    if (mu > T(0)) {
      buffer_[i] = buffer_[i] * mu + g / avg;
      params[i] -= lr * buffer_[i];
    } else {
      params[i] -= lr * g / avg;
    }
  }
}

namespace {
using K = OptimizerKind;
constexpr detail::EnumName<K> kOptimizerNames[] = {
    {K::sgd, "sgd"}, {K::adam, "adam"}, {K::adamw, "adamw"}, {K::rmsprop, "rmsprop"}};
constexpr detail::EnumName<ScheduleKind> kScheduleNames[] = {{ScheduleKind::constant, "constant"},
                                                             {ScheduleKind::step, "step"},
                                                             {ScheduleKind::cosine, "cosine"}};
}  // namespace

std::string_view to_string(OptimizerKind k) {
  return detail::name_of<OptimizerKind>(kOptimizerNames, k);
}

OptimizerKind parse_optimizer(std::string_view name) {
  return detail::parse_name<OptimizerKind>(kOptimizerNames, name, "optimizer");
}

double OptimizerOptions::learning_rate() const {
  if (lr) return *lr;
  return kind == OptimizerKind::adam || kind == OptimizerKind::adamw ? 1e-3 : 1e-2;
}

double OptimizerOptions::decay() const {
  return weight_decay.value_or(kind == OptimizerKind::adamw ? 1e-2 : 0.0);
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerOptions& o) {
  if (o.kind != OptimizerKind::sgd && o.nesterov)
    throw ConfigError("Nesterov momentum applies to the sgd optimizer only", "nesterov");
  if ((o.kind == OptimizerKind::adam || o.kind == OptimizerKind::adamw) && o.momentum != 0)
    throw ConfigError("momentum applies to the sgd and rmsprop optimizers only", "momentum");
  switch (o.kind) {
    case OptimizerKind::sgd:
      return std::make_unique<Sgd<T>>(SgdOptions{.lr = o.learning_rate(),
                                                 .momentum = o.momentum,
                                                 .nesterov = o.nesterov,
                                                 .weight_decay = o.decay()});
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      return std::make_unique<Adam<T>>(AdamOptions{.lr = o.learning_rate(),
                                                   .beta1 = o.beta1,
                                                   .beta2 = o.beta2,
                                                   .eps = o.eps,
                                                   .weight_decay = o.decay(),
                                                   .decoupled = o.kind == OptimizerKind::adamw});
    case OptimizerKind::rmsprop:
      return std::make_unique<Rmsprop<T>>(RmspropOptions{.lr = o.learning_rate(),
                                                         .alpha = o.alpha,
                                                         .eps = o.eps,
                                                         .momentum = o.momentum,
                                                         .weight_decay = o.decay()});
  }
  return nullptr;
}

std::string_view to_string(ScheduleKind k) {
  return detail::name_of<ScheduleKind>(kScheduleNames, k);
}

ScheduleKind parse_schedule(std::string_view name) {
  return detail::parse_name<ScheduleKind>(kScheduleNames, name, "schedule");
}

double Schedule::at(double lr0, int epoch) const {
  switch (kind) {
    case ScheduleKind::constant:
      return lr0;
    case ScheduleKind::step:
      return lr0 * std::pow(gamma, double(epoch / std::max(1, step_size)));
    case ScheduleKind::cosine:
      return lr0 *
             (1 + std::cos(std::numbers::pi * double(epoch) / double(std::max(1, total_epochs)))) /
             2;
  }
  return lr0;
}

template class Optimizer<float>;
template class Optimizer<double>;
template class Sgd<float>;
template class Sgd<double>;
template class Adam<float>;
template class Adam<double>;
template class Rmsprop<float>;
template class Rmsprop<double>;
template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const OptimizerOptions&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const OptimizerOptions&);

}  // namespace chainrule
