// Optimizers update the flat parameter buffer from the flat gradient buffer. Their state is
// indexed by position in the buffer, and the step count advances once per step().
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace chainrule {

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update of every parameter. params and grads have the same length on every call.
  virtual void step(std::span<T> params, std::span<const T> grads) = 0;
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr) { lr_ = lr; }
  /// Number of step() calls so far.
  std::int64_t steps() const { return steps_; }

 protected:
  explicit Optimizer(double lr) : lr_(lr) {}
  double lr_;
  std::int64_t steps_ = 0;
};

/// Options of SGD, as torch.optim.SGD defines them (dampening 0).
struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  bool nesterov = false;
  double weight_decay = 0;
};

/// Stochastic gradient descent, exactly torch.optim.SGD:
///   g = ∇ + wd·p;  v = μ·v + g (v = g on the first step);  g = g + μ·v if nesterov else v;
///   p = p - lr·g.
template <class T>
class Sgd final : public Optimizer<T> {
 public:
  explicit Sgd(SgdOptions options);
  void step(std::span<T> params, std::span<const T> grads) override;
  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
  std::vector<T> velocity_;  // parallel to params; empty without momentum
};

}  // namespace chainrule
