#include "chainrule/trainer.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "chainrule/error.hpp"
#include "gather.hpp"
#include "wide.hpp"

namespace chainrule {

namespace {

void check_options(const TrainOptions& o, Index rows) {
  if (o.epochs < 1) throw ConfigError("epochs must be at least 1, got " + std::to_string(o.epochs));
  if (o.batch < 1)
    throw ConfigError("batch size must be at least 1, got " + std::to_string(o.batch));
  if (o.patience < 0) throw ConfigError("patience must be >= 0");
  if (!(o.l2 >= 0) || !std::isfinite(o.l2))
    throw ConfigError("l2 must be a finite number >= 0, got " + std::to_string(o.l2));
  if (rows == 0) throw ConfigError("no training rows");
}

// g += c·p over n elements (TrainOptions::l2), in the widest instruction set the CPU has: the
// same rounding in every version.
struct L2Body {
  template <class T>
  [[gnu::always_inline]] static void run(T* __restrict g, const T* __restrict p, std::size_t n,
                                         T c) {
    for (std::size_t i = 0; i < n; ++i)
      g[i] += c * p[i];
  }
};

// Σ p² over n elements into *out: sixteen running sums in the network's precision, element i
// into sum i mod 16 (one vector register of floats), added up in order in double at the end; the
// same bits in every instruction set (no reassociation).
struct SumOfSquaresBody {
  template <class T>
  [[gnu::always_inline]] static void run(const T* __restrict p, std::size_t n, double* out) {
    constexpr std::size_t k = 16;
    T acc[k] = {};
    std::size_t i = 0;
    for (; i + k <= n; i += k)
      for (std::size_t j = 0; j < k; ++j)
        acc[j] += p[i + j] * p[i + j];
    for (std::size_t j = 0; i + j < n; ++j)
      acc[j] += p[i + j] * p[i + j];
    double sum = 0;
    for (const T a : acc)
      sum += double(a);
    *out = sum;
  }
};

template <class T>
bool finite(std::span<const T> values) {
  return std::all_of(values.begin(), values.end(), [](T v) { return std::isfinite(v); });
}

}  // namespace

template <class T>
Trainer<T>::Trainer(Network<T>& net, BatchView<T> X, BatchView<T> Y, BatchView<T> Xv,
                    BatchView<T> Yv, const TrainOptions& o, Rng& rng,
                    const TrainCallbacks& callbacks, const TrainState* resume)
    : net_(net), X_(X), Y_(Y), Xv_(Xv), Yv_(Yv), o_(o), rng_(rng), cb_(callbacks) {
  sharded_ = o.shard.rows > 0;
  if (sharded_ && (o.shard.first < 0 || o.shard.first + X.rows() > o.shard.rows || !callbacks.sum ||
                   !callbacks.reduce_scatter || !callbacks.all_gather))
    throw ConfigError(
        "a shard must lie within its rows and come with sum, reduce_scatter and all_gather");
  N_ = sharded_ ? o.shard.rows : X.rows();
  check_options(o, N_);
  net.set_dropout_rate(o.dropout);
  optimizer_ = make_optimizer<T>(o.optimizer);
  lr0_ = o.optimizer.learning_rate();
  if (o.l2 > 0)
    for (const Dense<T>& l : net.layers())
      weights_.emplace_back(std::size_t(l.offset()), std::size_t(l.bias_offset()));
  B_ = std::min(o.batch, N_);
  batches_ = (N_ + B_ - 1) / B_;
  // Per-sample steps through a small network without dropout take Network::step_one.
  one_sample_ = B_ == 1 && net.one_sample_path();
  balanced_ = sharded_ && !o.shard.starts.empty() && callbacks.exchange && !one_sample_ &&
              B_ <= Index(INT_MAX) / (X.cols() + Y.cols());  // Group::exchange's counts
  if (balanced_) {
    const std::vector<Index>& starts = o.shard.starts;
    const auto P = Index(starts.size());
    const int me = o.shard.process;
    if (me < 0 || me >= P || starts[0] != 0 || starts[std::size_t(me)] != o.shard.first ||
        !std::is_sorted(starts.begin(), starts.end()) || starts.back() > o.shard.rows ||
        (me + 1 < P ? starts[std::size_t(me) + 1] : o.shard.rows) != o.shard.first + X.rows())
      throw ConfigError("a shard's starts must be every process's first row, in order");
    owner_.reserve(std::size_t(B_));
    have_.resize(std::size_t(P));
    want_.resize(std::size_t(P));
    send_counts_.resize(std::size_t(P));
    recv_counts_.resize(std::size_t(P));
  }
  descend_ = one_sample_ && weights_.empty() && optimizer_->plain_descent();
  samples_in_a_row_ = one_sample_ && !sharded_ && !callbacks.after_backward &&
                      !callbacks.on_batch && !callbacks.decide_stop;
  if (sharded_)
    local_rows_of_batch_.reserve(std::size_t(B_));
  else
    Yb_.resize(B_, Y.cols());
  if (o.optimizer_start && !resume) {
    for (const std::vector<double>& b : o.optimizer_start->buffers)
      if (!b.empty() && b.size() != std::size_t(net.num_params()))
        throw ConfigError("the optimizer state to start from does not fit this network (" +
                          std::to_string(b.size()) + " values for " +
                          std::to_string(net.num_params()) + " parameters)");
    optimizer_->set_state(*o.optimizer_start);
  }
  if (!resume) {
    s_.order.resize(std::size_t(N_));
    std::iota(s_.order.begin(), s_.order.end(), Index(0));
    // The best weights so far, kept only where a patience restores them (a copy in double of
    // every parameter: 14 MiB for W3's network, faulted in page by page).
    if (o.patience > 0) s_.best_params.assign(net.params().begin(), net.params().end());
    return;
  }
  const TrainState& r = *resume;
  const auto n_params = std::size_t(net.num_params());
  if (r.order.size() != std::size_t(N_) || r.params.size() != n_params ||
      (r.best_params.size() != n_params && !(r.best_params.empty() && o.patience == 0)) ||
      r.epoch < 0 || r.batch < 0 || r.batch > batches_ ||
      std::any_of(r.order.begin(), r.order.end(), [&](Index i) { return i < 0 || i >= N_; }))
    throw ConfigError("the saved training state does not fit these data and this network");
  s_ = r;
  if (sharded_ && !o.shard.lead) s_.loss_sum = 0;  // the partial epoch's sum is the lead's
  std::copy(r.params.begin(), r.params.end(), net.params().begin());
  optimizer_->set_state(r.optimizer);
  rng.set_state(r.rng);
  s_.result.interrupted = false;
  s_.result.timings = {};  // this run's
  s_.params.clear();       // live in the network, the optimizer and the generator
  s_.optimizer = {};
  s_.rng.clear();
}

template <class T>
Trainer<T>::~Trainer() = default;

template <class T>
void Trainer<T>::lap(double StepTimings::*phase) {
  const auto now = std::chrono::steady_clock::now();
  s_.result.timings.*phase += std::chrono::duration<double>(now - lap_).count();
  lap_ = now;
}

template <class T>
void Trainer<T>::loop() {
  // The history's room at once (up to 4096 epochs, 320 KiB): grown by doubling, a run of many
  // short epochs spent more time in the page faults of its copies than in its steps (the
  // tutorial: 1000 epochs of 4 samples).
  s_.result.history.reserve(std::size_t(std::min(o_.epochs, 4096)));
  while (s_.epoch < o_.epochs) {
    begin_epoch();
    while (s_.batch < batches_)
      if ((samples_in_a_row_ ? run_samples() : run_batch()) == StopReason::interrupted)
        return interrupt();
    const StopReason stop = end_epoch();
    if (stop == StopReason::interrupted) return interrupt();
    if (stop != StopReason::none) break;
  }
  if (o_.patience > 0)
    std::copy(s_.best_params.begin(), s_.best_params.end(), net_.params().begin());
  if (o_.keep_optimizer) s_.result.optimizer = optimizer_->state();
}

template <class T>
TrainResult Trainer<T>::run() & {
  loop();
  return s_.result;
}

// A Trainer that ends with its run (train()) hands over its result: no copy of the history, which
// for the tutorial's 1000 short epochs was a quarter of the run's time in the page faults of
// memory allocated, freed and returned to the system at every run.
template <class T>
TrainResult Trainer<T>::run() && {
  loop();
  return std::move(s_.result);
}

template <class T>
void Trainer<T>::begin_epoch() {
  // An epoch starts where the one before ended when nothing ran between them (end_epoch): one
  // reading of the clock per epoch instead of two, which shows in epochs of a few steps.
  if (!start_known_) epoch_start_ = std::chrono::steady_clock::now();
  start_known_ = false;
  optimizer_->set_learning_rate(o_.schedule.at(lr0_, s_.epoch));
  if (o_.shuffle && s_.batch == 0) shuffle(std::span(s_.order), rng_);
}

// With a shard: this process's rows of the batch (positions first .. first + n - 1 of the
// order) in local_rows_of_batch_, their targets copied into Yb_; returns how many. Balanced, the
// rows that come in from other processes (balance) follow its own in Xb_ (after a copy of its
// own rows) and in Yb_.
template <class T>
Index Trainer<T>::gather_local(Index first, Index n) {
  local_rows_of_batch_.clear();
  std::size_t incoming = 0;  // values that came in: rows of X_.cols() inputs and Y_.cols() targets
  if (balanced_) {
    incoming = balance(first, n);
  } else {
    const Index lo = o_.shard.first, hi = lo + X_.rows();
    for (Index i = 0; i < n; ++i) {
      const Index k = s_.order[std::size_t(first + i)];
      if (k >= lo && k < hi) local_rows_of_batch_.push_back(k - lo);
    }
  }
  const Index w = X_.cols() + Y_.cols();
  const auto own = Index(local_rows_of_batch_.size()), m = own + Index(incoming) / w;
  if (Yb_.rows() != m) Yb_.resize(m, Y_.cols());
  detail::gather_rows<T>(Y_, local_rows_of_batch_, Yb_.data(), Yb_.cols());
  if (m == own) return m;
  // Rows came in: the batch's inputs are this process's rows, then those, in a matrix of their
  // own (each row asked for ahead of its copy, as forward_rows gathers).
  if (Xb_.rows() != m || Xb_.cols() != X_.cols()) Xb_.resize(m, X_.cols());
  detail::gather_rows<T>(X_, local_rows_of_batch_, Xb_.data(), Xb_.cols());
  for (Index i = own; i < m; ++i) {
    const T* row = recv_.data() + std::size_t((i - own) * w);
    std::copy_n(row, X_.cols(), Xb_.row(i).data());
    std::copy_n(row + X_.cols(), Y_.cols(), Yb_.row(i).data());
  }
  return m;
}

// The plan of a balanced batch, the same on every process: each position's holder, then, in the
// order of the positions, a holder's rows beyond its share (Group::block of n) go to the
// lowest-ranked process still short of its share. This process's kept rows go to
// local_rows_of_batch_, the rows it receives to recv_; returns how many values came in.
template <class T>
std::size_t Trainer<T>::balance(Index first, Index n) {
  const std::vector<Index>& starts = o_.shard.starts;
  const auto P = Index(starts.size());
  const Index me = o_.shard.process, lo = o_.shard.first;
  owner_.resize(std::size_t(n));
  std::fill(have_.begin(), have_.end(), 0);
  for (Index i = 0; i < n; ++i) {
    const Index k = s_.order[std::size_t(first + i)];
    const auto r = Index(std::upper_bound(starts.begin(), starts.end(), k) - starts.begin()) - 1;
    owner_[std::size_t(i)] = int(r);
    ++have_[std::size_t(r)];
  }
  // have_ becomes each holder's rows to keep (counted down below), want_ each process's rows
  // still to come.
  bool moves = false;
  for (Index r = 0; r < P; ++r) {
    want_[std::size_t(r)] = n * (r + 1) / P - n * r / P;
    moves = moves || have_[std::size_t(r)] != want_[std::size_t(r)];
    const Index keep = std::min(have_[std::size_t(r)], want_[std::size_t(r)]);
    have_[std::size_t(r)] = keep;
    want_[std::size_t(r)] -= keep;
  }
  const auto w = std::size_t(X_.cols() + Y_.cols());
  std::fill(send_counts_.begin(), send_counts_.end(), 0);
  std::fill(recv_counts_.begin(), recv_counts_.end(), 0);
  send_.clear();
  Index short_of = 0;  // the lowest-ranked process still short of its share
  for (Index i = 0; i < n; ++i) {
    const auto r = Index(owner_[std::size_t(i)]);
    Index to = r;
    if (have_[std::size_t(r)] > 0) {
      --have_[std::size_t(r)];
    } else {
      while (want_[std::size_t(short_of)] == 0)
        ++short_of;
      to = short_of;
      --want_[std::size_t(short_of)];
    }
    const Index k = s_.order[std::size_t(first + i)] - lo;  // this process's row, if r == me
    if (r == me && to == me) {
      local_rows_of_batch_.push_back(k);
    } else if (r == me) {  // positions in order go to processes in rank order
      send_.insert(send_.end(), X_.row(k).data(), X_.row(k).data() + X_.cols());
      send_.insert(send_.end(), Y_.row(k).data(), Y_.row(k).data() + Y_.cols());
      send_counts_[std::size_t(to)] += w;
    } else if (to == me) {
      recv_counts_[std::size_t(r)] += w;
    }
  }
  std::size_t incoming = 0;
  for (const std::size_t c : recv_counts_)
    incoming += c;
  recv_.resize(incoming);
  if (moves) cb_.exchange(std::span<T>(send_), send_counts_, std::span<T>(recv_), recv_counts_);
  return incoming;
}

template <class T>
double Trainer<T>::forward_backward(Index first, Index n,
                                    const typename Network<T>::RangeJob* then) {
  if (sharded_) {  // this process's rows of the batch; their gradient over the batch's size
    const Index m = local_n_ = gather_local(first, n);
    if (o_.timings) lap(&StepTimings::rows);
    // Dropout masks from a generator of this process's own, seeded by one draw that every
    // process makes, whether it holds rows of this batch or not: the shared generator (the
    // shuffles) stays in step on all (docs/distributed.md).
    Rng* masks = nullptr;
    if (o_.dropout > 0) {
      const std::uint64_t key = rng_.engine()();
      dropout_rng_.emplace(key ^ (std::uint64_t(o_.shard.first) * 0x9E3779B97F4A7C15ULL));
      masks = &*dropout_rng_;
    }
    if (m == 0) {  // no rows of this batch here: nothing to add to the others' sums
      net_.zero_grad();
      return 0;
    }
    // The gradients are written by the pass, not zeroed first and then added to (W3: a 7 MiB
    // memset a step less, and products that no longer read what they write).
    double loss;
    if (one_sample_) {
      loss = net_.step_one(X_.row(local_rows_of_batch_[0]).data(), Yb_.row(0).data());
    } else {
      if (Index(local_rows_of_batch_.size()) == m)
        net_.forward_rows(X_, local_rows_of_batch_, masks);
      else
        net_.forward(Xb_, masks);  // rows came in from other processes
      loss = net_.loss(Yb_);
      net_.set_loss_rows(n);  // the gradient of its rows' summed loss over the batch's size
      net_.backward_then(Yb_, {}, true);
      net_.set_loss_rows(0);
    }
    return loss;
  }
  local_n_ = n;
  if (one_sample_) {  // the same step as below, in one call, with no row copies
    const Index r = s_.order[std::size_t(first)];
    return net_.step_one(X_.row(r).data(), Y_.row(r).data());
  }
  if (Yb_.rows() != n) Yb_.resize(n, Y_.cols());
  const std::span<const Index> rows(s_.order.data() + first, std::size_t(n));
  detail::gather_rows<T>(Y_, rows, Yb_.data(), Yb_.cols());
  // The rows gathered into the network's own input; with `then`, the gradient zeroed by the
  // backward pass itself (`fresh`) and the loss computed on one of its threads.
  double loss;
  if (then) {
    net_.forward_backward_then(X_, rows, &rng_, Yb_, *then, true, &loss);
  } else {
    net_.zero_grad();
    net_.forward_rows(X_, rows, &rng_);
    loss = net_.loss(Yb_);
    net_.backward(Yb_);
  }
  return loss;
}

template <class T>
StopReason Trainer<T>::run_batch() {
  const Index first = s_.batch * B_, n = std::min(B_, N_ - first);
  const std::span<T> params = net_.params();
  const std::span<const T> grads = net_.grads();
  const bool timed = o_.timings;
  if (timed) {
    lap_ = std::chrono::steady_clock::now();
    ++s_.result.timings.steps;
  }
  if (one_sample_ && !sharded_ && !cb_.after_backward) {  // the same step, nothing between
    const double loss = sample_step(first);
    if (timed) lap(&StepTimings::compute);
    return end_batch(loss, first, n);
  }
  // TrainOptions::l2's term of the batch's loss, of the weights the batch is computed with (each
  // process adds it to its rows' mean: their sum over the processes is the whole batch's).
  const double penalty = weights_.empty() ? 0 : l2_penalty(n);
  if (timed && !weights_.empty()) lap(&StepTimings::compute);  // not the rows' (a shard's next)
  // One optimizer step, its elementwise update shared by the network's threads. With nothing
  // between backward and the step (no shard, no hook), it runs in backward's last dispatch to
  // the threads, each thread over the range of the gradient it has just completed.
  const bool fused = !sharded_ && !one_sample_ && !cb_.after_backward;
  const bool streamed = sharded_ && cb_.params_shared;
  auto update = [&](std::size_t b, std::size_t e) {
    if (!weights_.empty()) add_l2(b, e, n);
    if (streamed)
      optimizer_->update_streaming(params, grads, b, e);
    else
      optimizer_->update(params, grads, b, e);
  };
  const typename Network<T>::RangeJob job{
      [](void* f, std::size_t b, std::size_t e) { (*static_cast<decltype(update)*>(f))(b, e); },
      &update};
  if (fused) optimizer_->begin_step(params.size());
  const double loss = forward_backward(first, n, fused ? &job : nullptr);
  if (timed) lap(&StepTimings::compute);
  if (!fused) {
    if (cb_.after_backward) cb_.after_backward(net_.grads(), local_n_);
    // With a shard, over the block this process holds the sums of; then every process's block,
    // to all. (A pair, not a structured binding: clang 14 does not let a lambda capture one.)
    const std::pair<std::size_t, std::size_t> block =
        sharded_ ? cb_.reduce_scatter(net_.grads())
                 : std::pair<std::size_t, std::size_t>(0, params.size());
    if (timed) lap(&StepTimings::sums);
    const std::size_t begin = block.first;
    optimizer_->begin_step(params.size());
    net_.parallel_ranges(block.second - begin,
                         [&](std::size_t b, std::size_t e) { update(begin + b, begin + e); });
    if (timed) lap(&StepTimings::update);
    if (sharded_) {
      cb_.all_gather(params);
      if (timed) lap(&StepTimings::gather);
    }
  }
  return end_batch(loss + penalty, first, n);
}

template <class T>
double Trainer<T>::sample_step(Index first) {
  const Index r = s_.order[std::size_t(first)];
  local_n_ = 1;
  const std::span<T> params = net_.params();
  if (descend_) {  // the optimizer's update made within the network's pass
    optimizer_->begin_step(params.size());
    return net_.step_one_descend(X_.row(r).data(), Y_.row(r).data(),
                                 T(optimizer_->learning_rate()));
  }
  const double penalty = weights_.empty() ? 0 : l2_penalty(1);  // of the weights before the step
  const double loss = net_.step_one(X_.row(r).data(), Y_.row(r).data()) + penalty;
  if (!weights_.empty()) add_l2(0, params.size(), 1);
  optimizer_->begin_step(params.size());
  optimizer_->update(params, net_.grads(), 0, params.size());
  return loss;
}

template <class T>
double Trainer<T>::l2_penalty(Index n) {
  double sum = 0;
  for (const auto& [wb, we] : weights_) {
    double part = 0;
    detail::run_wide_n<SumOfSquaresBody>(we - wb, net_.params().data() + wb, we - wb, &part);
    sum += part;
  }
  return 0.5 * o_.l2 * sum / double(n);
}

template <class T>
void Trainer<T>::add_l2(std::size_t b, std::size_t e, Index n) {
  const T c = T(o_.l2 / double(n));
  const T* p = net_.params().data();
  T* g = net_.grads().data();
  for (const auto& [wb, we] : weights_) {
    const std::size_t from = std::max(b, wb), to = std::min(e, we);
    if (from < to) detail::run_wide_n<L2Body>(to - from, g + from, p + from, to - from, c);
  }
}

template <class T>
StopReason Trainer<T>::run_samples() {
  // Timed as a whole: a per-sample step (the tutorial's: about 70 ns) is too short for a clock
  // reading of its own, and nothing but the steps runs in this loop.
  const auto start = o_.timings ? std::chrono::steady_clock::now() : decltype(lap_)();
  const Index begin = s_.batch;
  const auto timed = [&] {
    if (!o_.timings) return;
    lap_ = start;
    lap(&StepTimings::compute);
    s_.result.timings.steps += long(s_.batch - begin) + 1;
  };
  for (;;) {
    const Index first = s_.batch;
    const double loss = sample_step(first);
    if (!usual_batch_end(loss, first + 1)) {
      timed();
      return end_batch(loss, first, 1);
    }
    s_.loss_sum += loss;  // end_batch's loss · 1 row
    local_rows_ += 1;
    ++s_.batch;
  }
}

template <class T>
bool Trainer<T>::usual_batch_end(double loss, Index next) const {
  return !cb_.decide_stop && std::isfinite(loss) && next < batches_ &&
         !(o_.stop && o_.stop->load(std::memory_order_relaxed));
}

template <class T>
StopReason Trainer<T>::end_batch(double loss, Index first, Index n) {
  s_.loss_sum += loss * double(local_n_);
  local_rows_ += double(local_n_);
  ++s_.batch;
  // Progress first (a finite loss only): a stop asked for there takes effect after this batch.
  // With a shard, the running mean is of this process's rows so far.
  if (cb_.on_batch && std::isfinite(loss))
    cb_.on_batch(
        {s_.epoch + 1, s_.batch, batches_,
         sharded_ ? s_.loss_sum / std::max(local_rows_, 1.0) : s_.loss_sum / double(first + n)});
  // The usual case, decided here without the calls below.
  if (usual_batch_end(loss, s_.batch)) return StopReason::none;
  return decide(batch_decision(loss));
}

// This process's decision after a batch: a loss that is not finite, or (checked at a stop and at
// the end of every epoch) a weight that is not, is a divergence; the stop flag an interrupt.
template <class T>
StopReason Trainer<T>::batch_decision(double loss) {
  if (!std::isfinite(loss)) {
    divergence_ = "training diverged at epoch " + std::to_string(s_.epoch + 1) + ", batch " +
                  std::to_string(s_.batch) + ": the loss is " +
                  (std::isnan(loss) ? "NaN" : "infinite") + "; try a lower learning rate";
    return StopReason::diverged;
  }
  const bool stop = o_.stop && o_.stop->load(std::memory_order_relaxed);
  if (!stop && s_.batch < batches_) return StopReason::none;
  if (!finite<T>(net_.params())) {
    divergence_ = "training diverged in epoch " + std::to_string(s_.epoch + 1) +
                  ": a weight is no longer finite; try a lower learning rate";
    return StopReason::diverged;
  }
  return stop ? StopReason::interrupted : StopReason::none;
}

template <class T>
StopReason Trainer<T>::decide(StopReason local) {
  const StopReason agreed = cb_.decide_stop ? cb_.decide_stop(local) : local;
  if (agreed == StopReason::diverged)
    throw DivergenceError(
        local == StopReason::diverged
            ? divergence_
            : "training diverged in another process in epoch " + std::to_string(s_.epoch + 1),
        "lr");  // the option that helps
  return agreed;
}

// The epoch's report (validation included), and the best monitored loss and weights so far.
template <class T>
EpochReport Trainer<T>::epoch_report() {
  EpochReport r;
  r.epoch = s_.epoch + 1;
  r.epochs = o_.epochs;
  r.metric = o_.metric;
  r.lr = optimizer_->learning_rate();
  if (sharded_) {  // sums of every process's part: training loss, validation loss and metric
    ScoreSums v = score_sums(net_, Xv_, Yv_, o_.metric);
    v.values.push_back(s_.loss_sum);  // summed along, then taken off
    cb_.sum(v.values);
    r.train_loss = v.values.back() / double(N_);
    v.values.pop_back();
    if (v.rows() > 0) {
      r.val_loss = v.loss();
      if (o_.metric != Metric::none) r.val_metric = v.metric_value();
    }
  } else {
    r.train_loss = s_.loss_sum / double(N_);
    if (Xv_.rows() > 0) {
      const Batch<T>& P = net_.infer(Xv_);
      r.val_loss = net_.loss(Yv_);
      if (o_.metric == Metric::accuracy) r.val_metric = accuracy<T>(P, Yv_);
      if (o_.metric == Metric::r2) r.val_metric = r2_score<T>(P, Yv_);
    }
  }
  // The monitored loss: validation's, or training's without validation; or minus the validation
  // metric (TrainOptions::monitor_metric).
  const double monitored =
      o_.monitor_metric && r.val_metric ? -*r.val_metric : r.val_loss.value_or(r.train_loss);
  if (monitored < s_.best.value_or(std::numeric_limits<double>::infinity())) {
    s_.best = monitored;
    s_.result.best_epoch = r.epoch;
    s_.since_best = 0;
    r.best = true;
    if (o_.patience > 0) s_.best_params.assign(net_.params().begin(), net_.params().end());
  } else {
    ++s_.since_best;
  }
  // Epochs of a few µs (the tutorial's: 4 steps of about 70 ns) are timed in groups when
  // nothing between them can look at a report (no callback, no checkpoint) and this is not the
  // last epoch or one that early stopping may end with: a reading of the clock (27 ns on the
  // machines of this project's sessions) was a tenth of such an epoch. Each epoch of a group
  // gets the group's mean, written when the group's last is timed (or at an interrupt).
  constexpr int kGroup = 16;
  constexpr double kShort = 20e-6;
  const bool unseen = !cb_.on_epoch && !cb_.decide_stop &&
                      !(o_.checkpoint_every > 0 && cb_.on_checkpoint) && s_.epoch + 1 < o_.epochs &&
                      !(o_.patience > 0 && s_.since_best >= o_.patience);
  if (unseen && last_seconds_ < kShort && untimed_ + 1 < kGroup) {
    ++untimed_;
    r.seconds = 0;  // written by time_untimed
    return r;
  }
  const auto end = std::chrono::steady_clock::now();
  const int group = untimed_ + 1;
  r.seconds = std::chrono::duration<double>(end - epoch_start_).count() / group;
  last_seconds_ = r.seconds;
  if (untimed_ > 0) time_untimed(end, group);
  epoch_start_ = end;  // the next epoch's start, unless end_epoch runs something after this
  return r;
}

// The seconds of the untimed_ reports at the end of the history: the time from epoch_start_ to
// `end` over `epochs_to_now` epochs (these and the one being reported, if any).
template <class T>
void Trainer<T>::time_untimed(std::chrono::steady_clock::time_point end, int epochs_to_now) {
  const double each =
      std::chrono::duration<double>(end - epoch_start_).count() / double(epochs_to_now);
  std::vector<EpochReport>& h = s_.result.history;
  for (std::size_t i = h.size() - std::size_t(untimed_); i < h.size(); ++i)
    h[i].seconds = each;
  untimed_ = 0;
}

template <class T>
StopReason Trainer<T>::end_epoch() {
  const EpochReport r = epoch_report();
  s_.result.history.push_back(r);
  if (cb_.on_epoch) cb_.on_epoch(r);
  const bool patience_out = o_.patience > 0 && s_.since_best >= o_.patience;
  const StopReason stop = decide(patience_out                ? StopReason::early_stop
                                 : s_.epoch + 1 >= o_.epochs ? StopReason::epochs_done
                                                             : StopReason::none);
  ++s_.epoch;
  s_.batch = 0;
  s_.loss_sum = 0;
  local_rows_ = 0;
  if (stop == StopReason::early_stop) s_.result.stopped_early = s_.epoch < o_.epochs;
  const bool checkpoint = stop == StopReason::none && o_.checkpoint_every > 0 &&
                          s_.epoch % o_.checkpoint_every == 0 && s_.epoch < o_.epochs &&
                          cb_.on_checkpoint;
  if (checkpoint) cb_.on_checkpoint(snapshot());
  start_known_ = !cb_.on_epoch && !cb_.decide_stop && !checkpoint;
  return stop;
}

template <class T>
TrainState Trainer<T>::snapshot() {
  TrainState s = s_;
  if (sharded_) {  // the partial epoch's loss, of every process
    double sum[1] = {s.loss_sum};
    cb_.sum(sum);
    s.loss_sum = sum[0];
  }
  if (s.best && !std::isfinite(*s.best)) s.best.reset();
  s.params.assign(net_.params().begin(), net_.params().end());
  s.optimizer = optimizer_->state();
  if (sharded_)  // each process's block of the optimizer's state, to all
    for (std::vector<double>& b : s.optimizer.buffers)
      if (b.size() == s.params.size()) cb_.all_gather(std::span<double>(b));
  s.rng = rng_.state();
  return s;
}

// A stop asked for (TrainOptions::stop): the state of this moment to on_checkpoint, the weights
// as they are.
template <class T>
void Trainer<T>::interrupt() {
  // Epochs timed in a group not yet closed: the group's time so far, the interrupted epoch's
  // part counted as a whole epoch.
  if (untimed_ > 0) time_untimed(std::chrono::steady_clock::now(), untimed_ + 1);
  if (cb_.on_checkpoint) cb_.on_checkpoint(snapshot());
  s_.result.interrupted = true;
}

template <class T>
ScoreSums score_sums(Network<T>& net, const BatchView<T>& X, const BatchView<T>& Y, Metric metric) {
  const Index K = Y.cols();
  ScoreSums s{.metric = metric, .values = std::vector<double>(3 + 2 * std::size_t(K), 0.0)};
  // In blocks of rows: the activations of a block, not of the whole split, are held at once.
  constexpr Index kBlock = 4096;
  for (Index first = 0; first < X.rows(); first += kBlock) {
    const Index m = std::min(kBlock, X.rows() - first);
    const BatchView<T> Xb = X.middleRows(first, m), Yb = Y.middleRows(first, m);
    const Batch<T>& P = net.infer(Xb);
    s.values[0] += net.loss(Yb) * double(m);
    s.values[1] += double(m);
    if (metric == Metric::accuracy) s.values[2] += accuracy<T>(P, Yb) * double(m);
    if (metric != Metric::r2) continue;
    for (Index k = 0; k < K; ++k)
      for (Index n = 0; n < m; ++n) {
        const double y = double(Yb(n, k)), d = y - double(P(n, k));
        s.values[2] += d * d;
        s.values[3 + 2 * std::size_t(k)] += y;
        s.values[4 + 2 * std::size_t(k)] += y * y;
      }
  }
  return s;
}

double ScoreSums::metric_value() const {
  if (metric == Metric::accuracy) return values[2] / values[1];
  double sst = 0;
  for (std::size_t k = 3; k + 1 < values.size(); k += 2)
    sst += values[k + 1] - values[k] * values[k] / values[1];
  return sst <= 0 ? 0.0 : 1 - values[2] / sst;
}

template <class T>
TrainResult train(Network<T>& net, NoDeduce<BatchView<T>> X, NoDeduce<BatchView<T>> Y,
                  NoDeduce<BatchView<T>> Xv, NoDeduce<BatchView<T>> Yv, const TrainOptions& o,
                  Rng& rng, const TrainCallbacks& callbacks, const TrainState* resume) {
  return Trainer<T>(net, X, Y, Xv, Yv, o, rng, callbacks, resume).run();
}

#define CHAINRULE_INSTANTIATE(T)                                                                   \
  template class Trainer<T>;                                                                       \
  template ScoreSums score_sums<T>(Network<T>&, const BatchView<T>&, const BatchView<T>&, Metric); \
  template TrainResult train<T>(Network<T>&, BatchView<T>, BatchView<T>, BatchView<T>,             \
                                BatchView<T>, const TrainOptions&, Rng&, const TrainCallbacks&,    \
                                const TrainState*);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
