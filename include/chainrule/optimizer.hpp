// Optimizers update the flat parameter buffer from the flat gradient buffer. Their state is
// indexed by position in the buffer, and the step count advances once per step().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "chainrule/buffer.hpp"

namespace chainrule {

/// What an optimizer carries from one step() to the next, for checkpoints: the step count and its
/// buffers (momenta, moment estimates), each parallel to the parameters or empty before the first
/// step. Values of a float optimizer are exact in double.
struct OptimizerState {
  std::int64_t steps = 0;
  std::vector<std::vector<double>> buffers;
};

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update of every parameter. params and grads have the same length on every call.
  void step(std::span<T> params, std::span<const T> grads) {
    step(params, grads, 0, params.size());
  }
  /// One step that updates only parameters [begin, end) (and their state): several processes
  /// each update their block of one model (Trainer's shards). Counts as one step.
  void step(std::span<T> params, std::span<const T> grads, std::size_t begin, std::size_t end) {
    begin_step(params.size());
    update(params, grads, begin, end);
  }
  /// The two halves of a step, for threads that share one: begin_step once (it counts the step
  /// and sizes the state for n parameters), then update over disjoint ranges of [0, n), one per
  /// thread, at once. Each parameter gets exactly what step() gives it, bit for bit.
  virtual void begin_step(std::size_t n) = 0;
  void update(std::span<T> params, std::span<const T> grads, std::size_t begin, std::size_t end) {
    update_at(params.data() + begin, grads.data() + begin, begin, end - begin);
  }
  /// update(), bit for bit, with params[begin, end) written by streaming stores (to memory, past
  /// the caches): for parameters that other processes read where they lie (Group::place). A
  /// line another core has read must be taken back from it before a store to it completes, and
  /// in the caches' way that costs a round trip between the cores for every line; a streaming
  /// store only has the other copies dropped. W3's block of 3.6 MiB on 2 ranks whose cores
  /// share no cache: 0.46-0.58 ms a step against 0.67-0.87 (docs/distributed.md).
  void update_streaming(std::span<T> params, std::span<const T> grads, std::size_t begin,
                        std::size_t end);
  /// True when update() sets every parameter to p - lr·g and keeps no state (SGD without
  /// momentum or weight decay): what Network::step_one_descend does within its pass.
  virtual bool plain_descent() const { return false; }
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr) { lr_ = lr; }
  /// Number of step() calls so far.
  std::int64_t steps() const { return steps_; }

  /// A copy of the state, and its restoration: after set_state(state()) of another optimizer of
  /// the same kind and options, step() continues exactly as that one would. set_state throws
  /// ConfigError when the number of buffers does not match.
  OptimizerState state();
  void set_state(const OptimizerState& s);

 protected:
  explicit Optimizer(double lr) : lr_(lr) {}
  /// The buffers step() keeps, in a fixed order.
  virtual std::vector<Buffer<T>*> buffers() = 0;
  /// The update of the n parameters at p, parameter `at` of the buffer first (its state at
  /// index `at`), from their gradients g.
  virtual void update_at(T* p, const T* g, std::size_t at, std::size_t n) = 0;
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
  void begin_step(std::size_t n) override;
  bool plain_descent() const override {
    return options_.momentum == 0 && options_.weight_decay == 0;
  }
  const SgdOptions& options() const { return options_; }

 private:
  std::vector<Buffer<T>*> buffers() override { return {&velocity_}; }
  void update_at(T* p, const T* g, std::size_t at, std::size_t n) override;
  SgdOptions options_;
  Buffer<T> velocity_;  // parallel to params; empty without momentum
  bool first_ = false;  // this step is the first (v = g)
};

/// Options of Adam and AdamW, as torch.optim defines them.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  ///< Adam: added to the gradient (L2); AdamW: decoupled decay
  bool decoupled = false;   ///< true: AdamW
};

/// Adam / AdamW, exactly torch.optim.Adam / AdamW (bias correction counted once per step):
///   AdamW: p = p·(1 - lr·wd);   Adam: g = ∇ + wd·p
///   m = β1·m + (1 - β1)·g;  v = β2·v + (1 - β2)·g²
///   p = p - lr/(1 - β1^t) · m / (sqrt(v)/sqrt(1 - β2^t) + eps)
template <class T>
class Adam final : public Optimizer<T> {
 public:
  explicit Adam(AdamOptions options);
  void begin_step(std::size_t n) override;
  const AdamOptions& options() const { return options_; }

 private:
  std::vector<Buffer<T>*> buffers() override { return {&m_, &v_}; }
  void update_at(T* p, const T* g, std::size_t at, std::size_t n) override;
  AdamOptions options_;
  Buffer<T> m_, v_;                             // first and second moments, parallel to params
  T step_size_ = 0, bc2_sqrt_ = 1, decay_ = 1;  // this step's bias corrections and decay
};

/// Options of RMSprop, as torch.optim.RMSprop defines them (not centered).
struct RmspropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double momentum = 0;
  double weight_decay = 0;
};

/// RMSprop, exactly torch.optim.RMSprop:  g = ∇ + wd·p;  s = α·s + (1 - α)·g²;
///   without momentum p = p - lr·g/(sqrt(s) + eps); with it b = μ·b + g/(sqrt(s) + eps), p = p -
///   lr·b.
template <class T>
class Rmsprop final : public Optimizer<T> {
 public:
  explicit Rmsprop(RmspropOptions options);
  void begin_step(std::size_t n) override;

 private:
  std::vector<Buffer<T>*> buffers() override { return {&square_avg_, &buffer_}; }
  void update_at(T* p, const T* g, std::size_t at, std::size_t n) override;
  RmspropOptions options_;
  Buffer<T> square_avg_, buffer_;
};

enum class OptimizerKind { sgd, adam, adamw, rmsprop };
/// The name used on the command line and in model files.
std::string_view to_string(OptimizerKind k);
/// Inverse of to_string; throws ConfigError naming the allowed values.
OptimizerKind parse_optimizer(std::string_view name);

/// Everything the command line can say about an optimizer; unset values take PyTorch's defaults
/// (lr: SGD 0.01, Adam/AdamW 0.001, RMSprop 0.01; weight decay: AdamW 0.01, others 0).
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::adam;
  std::optional<double> lr;
  double momentum = 0;
  bool nesterov = false;
  std::optional<double> weight_decay;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double alpha = 0.99;

  double learning_rate() const;
  double decay() const;
};

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerOptions& options);

/// Learning-rate schedules, applied at the start of each epoch (as PyTorch's StepLR and
/// CosineAnnealingLR stepped once per epoch).
enum class ScheduleKind { constant, step, cosine };
/// The name used on the command line and in model files.
std::string_view to_string(ScheduleKind k);
/// Inverse of to_string; throws ConfigError naming the allowed values.
ScheduleKind parse_schedule(std::string_view name);

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  int step_size = 30;    ///< step: multiply by gamma every step_size epochs
  double gamma = 0.1;    ///< step
  int total_epochs = 1;  ///< cosine: lr(e) = lr0·(1 + cos(π·e/total))/2
  /// The learning rate of 0-based epoch `epoch` for base rate lr0.
  double at(double lr0, int epoch) const;
};

}  // namespace chainrule
