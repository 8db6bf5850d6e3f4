#include "chainrule/optimizer.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <string>

#include "chainrule/error.hpp"
#include "enum_names.hpp"
#include "wide.hpp"

namespace chainrule {

template <class T>
OptimizerState Optimizer<T>::state() {
  OptimizerState s{.steps = steps_, .buffers = {}};
  for (const Buffer<T>* b : buffers())
    s.buffers.emplace_back(b->begin(), b->end());
  return s;
}

template <class T>
void Optimizer<T>::set_state(const OptimizerState& s) {
  const std::vector<Buffer<T>*> mine = buffers();
  if (s.buffers.size() != mine.size() || s.steps < 0)
    throw ConfigError("the optimizer state has " + std::to_string(s.buffers.size()) +
                      " buffers, this optimizer keeps " + std::to_string(mine.size()));
  steps_ = s.steps;
  for (std::size_t i = 0; i < mine.size(); ++i)
    mine[i]->assign(s.buffers[i].begin(), s.buffers[i].end());
}

namespace {

// n bytes from src to dst by streaming stores where dst is aligned (whole 64-byte lines with
// AVX-512, 16 bytes at a time with SSE2, every x86-64 CPU), plain stores at the ends.
#if defined(__SSE2__)
__attribute__((target("avx512f"))) void stream_lines(unsigned char* d, const unsigned char* s,
                                                     std::size_t n) {
  for (std::size_t i = 0; i < n; i += 64)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(d + i),
                        _mm512_loadu_si512(reinterpret_cast<const void*>(s + i)));
}
#endif

void stream_bytes(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
#if defined(__SSE2__)
  const std::size_t align = detail::cpu_width() == detail::Width::avx512 ? 64 : 16;
  const std::size_t head =
      std::min(n, (align - reinterpret_cast<std::uintptr_t>(d) % align) % align);
  std::memcpy(d, s, head);
  std::size_t i = head;
  if (align == 64) {
    const std::size_t lines = (n - i) / 64 * 64;
    stream_lines(d + i, s + i, lines);
    i += lines;
  }
  for (; i + 16 <= n; i += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
  std::memcpy(d + i, s + i, n - i);
#else
  std::memcpy(d, s, n);
#endif
}

}  // namespace

// The update runs on a copy of each 16 KiB of parameters (in the L1 cache), which is then
// streamed to its place: the same operations on the same values as update(), so the same bits.
template <class T>
void Optimizer<T>::update_streaming(std::span<T> params, std::span<const T> grads,
                                    std::size_t begin, std::size_t end) {
  constexpr std::size_t kChunk = 16384 / sizeof(T);
  alignas(64) T chunk[kChunk];
  for (std::size_t at = begin; at < end; at += kChunk) {
    const std::size_t n = std::min(kChunk, end - at);
    // The next chunk's parameters asked for now: they come from memory or another core's cache.
    const std::size_t next = std::min(end, at + kChunk), next_end = std::min(end, next + kChunk);
    for (std::size_t i = next; i < next_end; i += 64 / sizeof(T))
      __builtin_prefetch(params.data() + i);
    std::memcpy(chunk, params.data() + at, n * sizeof(T));
    update_at(chunk, grads.data() + at, at, n);
    stream_bytes(params.data() + at, chunk, n * sizeof(T));
  }
#if defined(__SSE2__)
  _mm_sfence();  // the streamed stores ordered before whatever tells the others they are done
#endif
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

namespace {

// SGD's elementwise update over n elements (with momentum: the velocity's too), the same
// operations in the same order for every element; run in the widest instruction set the CPU has.
struct SgdBody {
  template <class T>
  [[gnu::always_inline]] static void run(T* __restrict p, const T* __restrict gr, T* __restrict vel,
                                         std::size_t n, T lr, T mu, T wd, bool first,
                                         bool nesterov) {
    if (mu == T(0)) {
      if (wd == T(0))
        for (std::size_t i = 0; i < n; ++i)
          p[i] -= lr * gr[i];
      else
        for (std::size_t i = 0; i < n; ++i)
          p[i] -= lr * (gr[i] + wd * p[i]);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      T g = wd == T(0) ? gr[i] : gr[i] + wd * p[i];
      vel[i] = first ? g : mu * vel[i] + g;
      g = nesterov ? g + mu * vel[i] : vel[i];
      p[i] -= lr * g;
    }
  }
};

}  // namespace

template <class T>
void Sgd<T>::update_at(T* p, const T* g, std::size_t at, std::size_t n) {
  const T mu = T(options_.momentum);
  detail::run_wide_n<SgdBody>(n, p, g, mu == T(0) ? nullptr : velocity_.data() + at, n,
                              T(this->lr_), mu, T(options_.weight_decay), first_,
                              options_.nesterov);
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

// Adam's loop in the widest instruction set the CPU has (wide.hpp).
struct AdamBody {
  template <class... Args>
  [[gnu::always_inline]] static void run(Args... args) {
    adam_loop(args...);
  }
};

}  // namespace

template <class T>
void Adam<T>::update_at(T* p, const T* g, std::size_t at, std::size_t n) {
  detail::run_wide_n<AdamBody>(n, p, g, m_.data() + at, v_.data() + at, n, T(options_.beta1),
                               T(options_.beta2), T(options_.eps), T(options_.weight_decay),
                               step_size_, bc2_sqrt_, decay_, options_.decoupled);
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
void Rmsprop<T>::update_at(T* p, const T* gr, std::size_t at, std::size_t n) {
  const T lr = T(this->lr_), a = T(options_.alpha), eps = T(options_.eps);
  const T wd = T(options_.weight_decay), mu = T(options_.momentum);
  T* s = square_avg_.data() + at;
  T* b = mu > T(0) ? buffer_.data() + at : nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    const T g = wd == T(0) ? gr[i] : gr[i] + wd * p[i];
    s[i] = s[i] * a + g * g * (T(1) - a);
    const T avg = std::sqrt(s[i]) + eps;
    if (mu > T(0)) {
      b[i] = b[i] * mu + g / avg;
      p[i] -= lr * b[i];
    } else {
      p[i] -= lr * g / avg;
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
