#include "chainrule/network.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>
#include <type_traits>

#include "bf16.hpp"
#include "chainrule/error.hpp"
#include "chainrule/loss.hpp"
#include "chainrule/threads.hpp"
#include "gather.hpp"
#include "prefault.hpp"

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
void Network<T>::zero_grad() {
  parallel_ranges(grads_.size(), [this](std::size_t begin, std::size_t end) {
    std::fill(grads_.begin() + std::ptrdiff_t(begin), grads_.begin() + std::ptrdiff_t(end), T(0));
  });
}

template <class T>
void Network<T>::place(T* params, T* grads) {
  const std::size_t n = params_.size();
  Buffer<T> p{PageAllocator<T>(params, n)}, g{PageAllocator<T>(grads, n)};
  p.resize(n);  // default-initialized in the arena: the values already there
  g.assign(grads_.begin(), grads_.end());
  params_ = std::move(p);
  grads_ = std::move(g);
  one_plan_.layers.clear();
}

template <class T>
void Network<T>::set_dropout_rate(double p) {
  if (!(p >= 0 && p < 1)) throw ConfigError("dropout must be in [0, 1), got " + std::to_string(p));
  dropout_ = p;
}

bool bf16_products_available() {
  return detail::bf16_products_available();
}

void require_bf16_products() {
  if (!detail::bf16_products_available())
    throw ConfigError(
        "dtype bfloat16 needs a CPU with AVX512_BF16 (Intel Cooper Lake or Sapphire Rapids and "
        "later, AMD Zen 4 and later); this one has none: use float32");
}

template <class T>
void Network<T>::set_bf16_products(bool on) {
  if (on && !std::is_same_v<T, float>)
    throw ConfigError("bfloat16 products train float32 weights: a float64 network has none");
  if (on) require_bf16_products();
  bf16_ = on;
}

template <class T>
void Network<T>::set_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw ConfigError("threads must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                      std::to_string(n));
  threads_ = n;
  if (n == 1) pool_.pool.reset();  // no thread left waiting
}

template <class T>
void Network<T>::check_blas_room() {
  if (blas_room_) return;
  if (!detail::room_for_blas(1))
    throw LimitError(
        "the address-space limit (ulimit -v or -d) leaves no room for OpenBLAS's 128 MiB work "
        "buffer: raise it");
  blas_room_ = true;
}

template <class T>
std::size_t Network<T>::blocks_for(Index N) const {
  if (threads_ <= 1) return 1;
  // Measured (bench W2, W4): below these, handing rows to another thread costs more than it saves.
  constexpr double kSplitMultiplyAdds = 1e6;
  constexpr Index kMinRows = 8;
  double per_row = 0;
  for (const Dense<T>& l : layers_)
    per_row += double(l.in()) * double(l.out());
  if (double(N) * per_row < kSplitMultiplyAdds) return 1;
  return std::size_t(std::clamp<Index>(N / kMinRows, 1, threads_));
}

template <class T>
void Network<T>::switch_work(Index N, bool training) {
  one_plan_.layers.clear();  // its pointers are into the batch-size-1 workspaces
  WorkSet current{work_rows_, std::move(work_), std::move(input_)};
  auto kept =
      std::find_if(spare_.begin(), spare_.end(), [&](const WorkSet& s) { return s.rows == N; });
  const bool found = kept != spare_.end();
  if (!found && spare_.size() == kSpareSets) kept = spare_.begin();
  if (kept != spare_.end()) {
    work_ = std::move(kept->work);
    input_ = std::move(kept->input);
    spare_.erase(kept);
  } else {
    spare_.reserve(kSpareSets + 1);
    work_.clear();
    work_.resize(layers_.size());
  }
  if (current.rows >= 0) spare_.push_back(std::move(current));
  work_rows_ = N;
  if (found || N <= 1 || blocks_for(N) > 1) return;
  // A set new to N: its buffers sized for the pass at once and their pages mapped in one call
  // each (prefault.hpp), rather than faulted in one at a time by the pass's first writes (W3's
  // first step of 512 rows: 3,500 faults, about 40 ms on the virtual machines of this project's
  // sessions). Blocks of rows on threads (blocks_for) keep workspaces of their own.
  const auto map = [](Batch<T>& m, Index rows, Index cols) {
    m.resize(rows, cols);
    detail::prefault(m.data(), m.data() + m.size());
  };
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    map(work_[l].Z, N, layers_[l].out());
    map(work_[l].A, N, layers_[l].out());
    if (training) map(work_[l].dZ, N, layers_[l].out());
  }
  if (training) map(input_, N, inputs());
}

template <class T>
const Batch<T>& Network<T>::forward(const BatchView<T>& X, Rng* dropout) {
  use_work_for(X.rows(), true);
  kept_ = true;
  if (const std::size_t parts = cols_for(X.rows(), dropout)) return run_cols(X, {}, parts);
  if (blocks_for(X.rows()) > 1) return run_blocks(X, true, dropout);
  input_ = X;  // no allocation once N is steady
  return run(input_, dropout);
}

template <class T>
const Batch<T>& Network<T>::forward_rows(const BatchView<T>& X, std::span<const Index> rows,
                                         Rng* dropout) {
  kept_ = true;
  const auto N = Index(rows.size());
  use_work_for(N, true);
  if (const std::size_t parts = cols_for(N, dropout)) return run_cols(X, rows, parts);
  if (blocks_for(N) > 1) return run_blocks(X, true, dropout, rows);  // gathered block by block
  if (input_.rows() != N || input_.cols() != X.cols()) input_.resize(N, X.cols());
  detail::gather_rows<T>(X, rows, input_.data(), input_.cols());
  return run(input_, dropout);
}

template <class T>
const Batch<T>& Network<T>::infer(const BatchView<T>& X) {
  use_work_for(X.rows(), false);
  kept_ = false;
  if (blocks_for(X.rows()) > 1) return run_blocks(X, false, nullptr);
  return run(X, nullptr);
}

template <class T>
const Batch<T>& Network<T>::run(const BatchView<T>& X, Rng* dropout) {
  dropped_ = dropout != nullptr && dropout_ > 0;
  one_ = X.rows() == 1 && small_ && !dropped_ && !bf16_;
  split_ = 0;
  cols_ = 0;
  if (one_) {
    forward_one(X.data());
    return work_.back().A;
  }
  check_blas_room();
  const T keep_scale = T(1.0 / (1.0 - dropout_));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    Workspace& w = work_[l];
    if (l == 0)
      layers_[l].forward(params_.data(), X, w.Z, w.A, products(), &w.Wt);
    else
      layers_[l].forward(params_.data(), layer_input(l), w.Z, w.A, products(), &w.Wt);
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
  if (one_) return backward_one(input_.data(), Y.data(), add, T(0));
  if (cols_ > 1) return backward_cols(Y, nullptr);
  if (split_ > 1) return backward_blocks(Y);
  backward_whole(Y, Dense<T>::Grads::add);
}

template <class T>
void Network<T>::backward_whole(const BatchView<T>& Y, typename Dense<T>::Grads mode) {
  Workspace& top = work_.back();
  loss_gradient<T>(spec_.loss, top.A, Y, top.dZ);  // ∂L/∂Z if fused, else ∂L/∂A
  if (loss_rows_ > 0 &&
      loss_rows_ != top.A.rows())  // a part of a batch: divided by the whole's rows
    top.dZ *= T(double(top.A.rows()) / double(loss_rows_));
  if (!is_fused(spec_.loss))
    activation_backward(layers_.back().activation(), top.A, top.dZ, top.dZ);

  for (std::size_t l = layers_.size(); l-- > 0;) {
    Batch<T>* dX = l == 0 ? nullptr : &work_[l - 1].dZ;  // ∂L/∂A of the layer below
    layers_[l].backward(params_.data(), grads_.data(), layer_input(l), work_[l].dZ, dX, mode,
                        products());
    if (l == 0) break;
    if (dropped_) *dX = dX->cwiseProduct(work_[l - 1].mask);  // ∂(A ⊙ mask)/∂A = mask
    activation_backward(layers_[l - 1].activation(), work_[l - 1].A, *dX, *dX);
  }
}

// A batch cut into blocks of rows. Every row's forward pass, and its part of the backward pass,
// depends on that row only, so block b runs all its layers on its own thread with no exchange
// between blocks; only the weight gradient is a sum over rows: block 0 adds its Xᵀ·dZ to grads_
// (or writes it there, for a fresh step), every other block writes its own, and a second pass
// adds blocks 1, 2, ... in that order.

template <class T>
template <class F>
void Network<T>::each_block(F&& f) {
  pool();
  for (std::size_t b = 0; b < split_; ++b)
    blocks_[b].error = nullptr;
  auto job = [&](std::size_t b) {
    try {
      f(b);
    } catch (...) {  // (bad_alloc sizing a workspace) rethrown on the calling thread
      blocks_[b].error = std::current_exception();
    }
  };
  pool_.pool->run(split_, job);
  for (std::size_t b = 0; b < split_; ++b)
    if (blocks_[b].error) std::rethrow_exception(blocks_[b].error);
}

template <class T>
std::size_t Network<T>::ranges_for(std::size_t n) const {
  constexpr std::size_t kMinPerThread = 16384;  // below, a dispatch costs more than it saves
  return std::min<std::size_t>(std::size_t(threads_), n / kMinPerThread);
}

template <class T>
detail::WorkerPool& Network<T>::pool() {
  if (!pool_.pool) pool_.pool = std::make_unique<detail::WorkerPool>();
  return *pool_.pool;
}

template <class T>
const Batch<T>& Network<T>::run_blocks(const BatchView<T>& X, bool keep, Rng* dropout,
                                       std::span<const Index> gather) {
  const Index N = gather.empty() ? X.rows() : Index(gather.size()), K = outputs();
  const std::size_t L = layers_.size();
  dropped_ = dropout != nullptr && dropout_ > 0;
  one_ = false;
  cols_ = 0;
  split_ = blocks_for(N);
  check_blas_room();
  if (blocks_.size() < split_) blocks_.resize(split_);
  for (std::size_t b = 0; b < split_; ++b) {
    Block& k = blocks_[b];
    k.begin = N * Index(b) / Index(split_);
    k.rows = N * Index(b + 1) / Index(split_) - k.begin;
    k.work.resize(L);
  }
  if (dropped_) {  // masks drawn here, in the order of the one-block path (layer, row, column)
    const T keep_scale = T(1.0 / (1.0 - dropout_));
    for (std::size_t l = 0; l + 1 < L; ++l)
      for (std::size_t b = 0; b < split_; ++b) {
        Batch<T>& mask = blocks_[b].work[l].mask;
        mask.resize(blocks_[b].rows, layers_[l].out());
        for (Index i = 0; i < mask.size(); ++i)
          mask.data()[i] = dropout->uniform() < dropout_ ? T(0) : keep_scale;
      }
  }
  Workspace& top = work_.back();  // the blocks' outputs, gathered (N, K)
  top.Z.resize(N, K);
  top.A.resize(N, K);
  // Kept for backward: the batch in input_, each block copying (or gathering from X) its own
  // rows.
  if (keep && (input_.rows() != N || input_.cols() != X.cols())) input_.resize(N, X.cols());
  each_block([&](std::size_t b) {
    Block& k = blocks_[b];
    if (!gather.empty())
      detail::gather_rows<T>(X, gather.subspan(std::size_t(k.begin), std::size_t(k.rows)),
                             input_.row(k.begin).data(), input_.cols());
    else if (keep)
      input_.middleRows(k.begin, k.rows) = X.middleRows(k.begin, k.rows);
    const BatchView<T> rows = keep ? BatchView<T>(input_.middleRows(k.begin, k.rows))
                                   : BatchView<T>(X.middleRows(k.begin, k.rows));
    for (std::size_t l = 0; l < L; ++l) {
      Workspace& w = k.work[l];
      const BatchView<T> in =
          l > 0 ? BatchView<T>(dropped_ ? k.work[l - 1].D : k.work[l - 1].A) : BatchView<T>(rows);
      layers_[l].forward(params_.data(), in, w.Z, w.A, products(), &w.Wt);
      if (dropped_ && l + 1 < L) w.D = w.A.cwiseProduct(w.mask);
    }
    top.Z.middleRows(k.begin, k.rows) = k.work.back().Z;
    top.A.middleRows(k.begin, k.rows) = k.work.back().A;
  });
  return top.A;
}

template <class T>
void Network<T>::backward_then(const BatchView<T>& Y, RangeJob job, bool fresh, double* loss) {
  const RangeJob* then = job.run ? &job : nullptr;  // a job without `run`: none
  if (kept_ && !one_ && cols_ > 1) return backward_cols(Y, then, fresh, loss);
  if (loss) *loss = this->loss(Y);
  // With `fresh`, every path writes the gradients instead of adding to them: no zeroing pass
  // (W3's 7 MiB a step).
  const auto mode = fresh ? Dense<T>::Grads::assign : Dense<T>::Grads::add;
  if (!kept_)
    backward(Y);  // throws: no forward pass kept
  else if (one_)
    backward_one(input_.data(), Y.data(), fresh ? write : add, T(0));
  else if (split_ > 1)
    return backward_blocks(Y, then, mode);
  else
    backward_whole(Y, mode);
  if (then)
    parallel_ranges(params_.size(), [&](std::size_t b, std::size_t e) { job.run(job.ctx, b, e); });
}

template <class T>
void Network<T>::backward_blocks(const BatchView<T>& Y, const RangeJob* then,
                                 typename Dense<T>::Grads first) {
  const Index N = work_.back().A.rows(), K = outputs();
  const T factor = T(detail::gradient_factor(spec_.loss, loss_rows_ > 0 ? loss_rows_ : N, K));
  for (std::size_t b = 1; b < split_; ++b)
    blocks_[b].grads.resize(params_.size());
  each_block([&](std::size_t b) {
    Block& k = blocks_[b];
    Workspace& top = k.work.back();
    top.dZ = (top.A - Y.middleRows(k.begin, k.rows)) * factor;  // as loss_gradient, its rows
    if (!is_fused(spec_.loss))
      activation_backward(layers_.back().activation(), top.A, top.dZ, top.dZ);
    T* g = b == 0 ? grads_.data() : k.grads.data();
    const auto mode = b == 0 ? first : Dense<T>::Grads::assign;
    for (std::size_t l = layers_.size(); l-- > 0;) {
      Batch<T>* dX = l == 0 ? nullptr : &k.work[l - 1].dZ;
      const BatchView<T> in = l == 0 ? BatchView<T>(input_.middleRows(k.begin, k.rows))
                                     : BatchView<T>(dropped_ ? k.work[l - 1].D : k.work[l - 1].A);
      layers_[l].backward(params_.data(), g, in, k.work[l].dZ, dX, mode, products());
      if (l == 0) break;
      if (dropped_) *dX = dX->cwiseProduct(k.work[l - 1].mask);
      activation_backward(layers_[l - 1].activation(), k.work[l - 1].A, *dX, *dX);
    }
  });
  // grads_ += blocks 1 + 2 + ..., left to right, each thread over its own range of parameters.
  const std::size_t P = params_.size();
  each_block([&](std::size_t b) {
    const std::size_t from = P * b / split_, to = P * (b + 1) / split_;
    T* sum = blocks_[1].grads.data();
    for (std::size_t c = 2; c < split_; ++c) {
      const T* more = blocks_[c].grads.data();
      for (std::size_t i = from; i < to; ++i)
        sum[i] += more[i];
    }
    T* g = grads_.data();
    for (std::size_t i = from; i < to; ++i)
      g[i] += sum[i];
    if (then) then->run(then->ctx, from, to);  // this range's gradient is complete
  });
}

// ---- A batch split by columns ------------------------------------------------------------
//
// With few rows per thread (W2: 64 rows, 32 a thread), splitting the batch's rows leaves each
// thread's products too flat to run well, and each thread a whole gradient to be summed after.
// Split by columns instead, every thread computes its share of the first layer's outputs for
// all the rows, and its share of every layer's weight gradients (columns of W: a range of the
// flat buffer, nothing to sum). Above the first layer, a layer with few weights (W2's 128 × 64),
// too narrow to share (the 10 outputs) or not elementwise (softmax) runs by rows, forward and
// backward (∂L/∂Z below it): each part its rows through a run of such layers with no wait
// between them, since a row needs only its own row below; a wider one is shared by columns, the
// threads meeting before and after it. The weight gradients come last, in one phase, once every
// ∂L/∂Z is known. Which thread computes what depends on the thread count and the shapes only,
// so a fixed thread count gives the same bits.

template <class T>
std::size_t Network<T>::cols_for(Index N, Rng* dropout) {
  // Measured (bench W2, and a stand-alone sgemm model of its step): at 32 rows a thread, a
  // split by columns takes 0.55-0.57× the one-thread step where a split by rows takes 0.69-0.74×;
  // at 128 rows a thread (W3) the split by rows runs at 89% of sgemm and is kept.
  constexpr Index kRowsPerThread = 64;
  static_assert(kMaxThreads <= int(detail::PhasedParts::kMaxParts), "a part per thread");
  const auto parts = std::size_t(threads_);
  if (parts <= 1 || bf16_ || (dropout != nullptr && dropout_ > 0) || blocks_for(N) <= 1 ||
      N / Index(parts) >= kRowsPerThread)
    return 0;
  bool shared = false;
  for (std::size_t l = 0; l < layers_.size(); ++l)
    shared |= cols_shared(l, parts);
  if (!shared) return 0;
  pool();
  return parts;
}

template <class T>
bool Network<T>::cols_shared(std::size_t l, std::size_t parts) const {
  constexpr Index kMinCols = 16;  // per thread: 64 bytes of a float row, so no two write a line
  return is_elementwise(layers_[l].activation()) && layers_[l].out() >= kMinCols * Index(parts);
}

template <class T>
std::pair<Index, Index> Network<T>::cols_of(std::size_t l, std::size_t t) const {
  const Index out = layers_[l].out();
  if (!cols_shared(l, cols_)) return t == 0 ? std::pair<Index, Index>(0, out) : std::pair(out, out);
  const auto edge = [&](std::size_t k) {  // rounded to 16 columns
    return k >= cols_ ? out : std::min(out, (out * Index(k) / Index(cols_) + 8) / 16 * 16);
  };
  return {edge(t), edge(t + 1)};
}

// A layer above the first runs by rows where its weights are few (W2's 128 × 64: 32 KiB of
// float): each part then reads all of W, but the layers of a run of such layers need no wait
// between them, since a row needs only its own row below. Wider layers keep their columns,
// where each part reads its share of W (784-512-256-10 at 32 rows a thread: 1.35-1.38 s an
// epoch on two threads by columns against 1.40-1.42 s with the 512 × 256 layer by rows).
template <class T>
bool Network<T>::by_rows(std::size_t l) const {
  constexpr Index kFewWeights = 32768;
  if (!cols_shared(l, cols_)) return true;
  return l > 0 && layers_[l].in() * layers_[l].out() <= kFewWeights;
}

template <class T>
std::pair<Index, Index> Network<T>::rows_of(Index N, std::size_t t) const {
  return {N * Index(t) / Index(cols_), N * Index(t + 1) / Index(cols_)};
}

template <class T>
template <class F>
void Network<T>::each_phase(std::size_t phases, F&& f) {
  // The parts of each phase are claimed by the threads that are running (PhasedParts): none
  // waits for a thread the scheduler has not run, and part t computes the same whichever runs it.
  phased_.reset(phases, cols_);
  auto runner = [&](std::size_t p) { phased_.run(f, p); };  // pool part p: part p its own
  pool_.pool->run(cols_, runner);
}

template <class T>
void Network<T>::size_cols_forward(Index N, Index inputs, std::size_t parts) {
  dropped_ = one_ = false;
  split_ = 0;
  cols_ = parts;
  check_blas_room();
  // Every allocation before the threads: the parts' inputs (only when the count or N changes).
  part_inputs_.resize(parts - 1);
  for (std::size_t t = 0; t < parts; ++t)
    if (part_input(t).rows() != N || part_input(t).cols() != inputs)
      part_input(t).resize(N, inputs);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    work_[l].Z.resize(N, layers_[l].out());
    work_[l].A.resize(N, layers_[l].out());
  }
}

template <class T>
void Network<T>::size_cols_backward(Index N) {
  for (std::size_t l = 0; l < layers_.size(); ++l)
    work_[l].dZ.resize(N, layers_[l].out());
}

template <class T>
const Batch<T>& Network<T>::run_cols(const BatchView<T>& X, std::span<const Index> gather,
                                     std::size_t parts) {
  size_cols_forward(gather.empty() ? X.rows() : Index(gather.size()), X.cols(), parts);
  run_cols_steps(&X, gather, nullptr, nullptr, false, nullptr);
  return work_.back().A;
}

template <class T>
void Network<T>::backward_cols(const BatchView<T>& Y, const RangeJob* then, bool fresh,
                               double* loss) {
  size_cols_backward(input_.rows());
  run_cols_steps(nullptr, {}, &Y, then, fresh, loss);
}

template <class T>
void Network<T>::forward_backward_then(const BatchView<T>& X, std::span<const Index> rows,
                                       Rng* dropout, const BatchView<T>& Y, RangeJob job,
                                       bool fresh, double* loss) {
  const auto N = Index(rows.size());
  const std::size_t parts = cols_for(N, dropout);
  if (parts == 0) {
    forward_rows(X, rows, dropout);
    return backward_then(Y, job, fresh, loss);
  }
  kept_ = true;
  use_work_for(N, true);
  size_cols_forward(N, X.cols(), parts);
  size_cols_backward(N);
  run_cols_steps(&X, rows, &Y, &job, fresh, loss);
}

// The steps of a pass, in order: the forward pass's layers (f_0, ..., f_L-1: f_0 starts with
// each part gathering the whole batch into its input), then the backward pass's: b_0, the top
// layer's ∂L/∂Z (as loss_gradient and activation_backward compute it), and b_k (k = 1, ...,
// L - 1), layer l = L - k's ∂L/∂X, the ∂L/∂Z of the layer below; and last the weight gradients.
// A step runs by rows (each part its rows) where its layer does (by_rows; b_0 always), else by
// columns (f_l: layer l's; b_k: the layer below's). A step by rows joins the phase of a step by
// rows just before it, since a row needs only its own rows; any other step starts a phase, as
// does the weight gradients' (each part its columns of every layer's, over all the rows, each
// layer's followed by `then` over them: no part reads W in that phase; and the loss on the
// last part).
template <class T>
void Network<T>::run_cols_steps(const BatchView<T>* X, std::span<const Index> gather,
                                const BatchView<T>* Y, const RangeJob* then, bool fresh,
                                double* loss) {
  const std::size_t L = layers_.size();
  const Index N = input_.rows();
  const std::size_t first = X ? 0 : L, last = Y ? 2 * L + 1 : L;  // steps [first, last)
  const auto by_rows_step = [&](std::size_t s) {
    if (s < L) return by_rows(s);                        // f_s
    if (s < 2 * L) return s == L || by_rows(2 * L - s);  // b_k, k = s - L
    return false;                                        // the weight gradients
  };
  const auto starts = [&](std::size_t s) {
    return s == first || !by_rows_step(s) || !by_rows_step(s - 1);
  };
  std::size_t phases = 0;
  for (std::size_t s = first; s < last; ++s)
    phases += starts(s);
  const T factor =
      Y ? T(detail::gradient_factor(spec_.loss, loss_rows_ > 0 ? loss_rows_ : N, outputs())) : T(0);
  // f(begin, end) over the ranges of the flat buffer part t's gradients of layer l fill: its
  // columns of W (contiguous: W is column-major) and its part of b.
  const auto part_ranges = [&](std::size_t l, std::size_t t, auto&& f) {
    const Dense<T>& layer = layers_[l];
    const auto [j0, j1] = cols_of(l, t);
    if (j1 <= j0) return;
    f(std::size_t(layer.offset() + layer.in() * j0), std::size_t(layer.offset() + layer.in() * j1));
    f(std::size_t(layer.bias_offset() + j0), std::size_t(layer.bias_offset() + j1));
  };
  const auto forward_step = [&](std::size_t l, std::size_t t) {
    if (l == 0) {
      Batch<T>& mine = part_input(t);
      if (!gather.empty())
        detail::gather_rows<T>(*X, gather, mine.data(), mine.cols());
      else
        mine = *X;  // the same size: no allocation
    }
    Workspace& w = work_[l];
    const BatchView<T> in = l == 0 ? BatchView<T>(part_input(t)) : BatchView<T>(work_[l - 1].A);
    if (by_rows(l)) {
      const auto [r0, r1] = rows_of(N, t);
      layers_[l].forward_rows(params_.data(), in, w.Z, w.A, r0, r1);
    } else {
      const auto [j0, j1] = cols_of(l, t);
      layers_[l].forward_cols(params_.data(), in, w.Z, w.A, j0, j1);
    }
  };
  const auto backward_step = [&](std::size_t k, std::size_t t) {
    const auto [r0, r1] = rows_of(N, t);
    if (k == 0) {
      Workspace& top = work_.back();
      top.dZ.middleRows(r0, r1 - r0) =
          (top.A.middleRows(r0, r1 - r0) - Y->middleRows(r0, r1 - r0)) * factor;
      if (!is_fused(spec_.loss))
        activation_backward_rows(layers_.back().activation(), top.A, top.dZ, top.dZ, r0, r1);
      return;
    }
    const std::size_t l = L - k;
    Workspace& below = work_[l - 1];
    const Activation f = layers_[l - 1].activation();
    if (by_rows(l)) {
      layers_[l].backward_input_rows(params_.data(), work_[l].dZ, below.dZ, r0, r1);
      activation_backward_rows(f, below.A, below.dZ, below.dZ, r0, r1);
      return;
    }
    const auto [i0, i1] = cols_of(l - 1, t);
    layers_[l].backward_input_cols(params_.data(), work_[l].dZ, below.dZ, i0, i1);
    if (!is_elementwise(f)) {  // not shared by columns: part 0 has them all
      if (t == 0) activation_backward(f, below.A, below.dZ, below.dZ);
    } else if (i1 > i0) {
      activation_backward_block(f, below.A.data() + i0, below.dZ.data() + i0, below.dZ.data() + i0,
                                std::size_t(N), std::size_t(i1 - i0), std::size_t(below.A.cols()));
    }
  };
  const auto weights_step = [&](std::size_t t) {
    if (loss && t + 1 == cols_) *loss = this->loss(*Y);
    for (std::size_t l = L; l-- > 0;) {
      const BatchView<T> in = l == 0 ? BatchView<T>(part_input(t)) : BatchView<T>(work_[l - 1].A);
      // With `fresh`, this part's gradients of the layer are assigned, not added to.
      const auto [j0, j1] = cols_of(l, t);
      layers_[l].backward_weights_cols(grads_.data(), in, work_[l].dZ, j0, j1,
                                       fresh ? Dense<T>::Grads::assign : Dense<T>::Grads::add);
      if (then)
        part_ranges(l, t, [&](std::size_t b, std::size_t e) { then->run(then->ctx, b, e); });
    }
  };
  each_phase(phases, [&](std::size_t phase, std::size_t t) {
    std::size_t s = first;  // the phase's first step
    for (std::size_t p = 0; p < phase || !starts(s); p += starts(++s))
      ;
    do {
      if (s < L)
        forward_step(s, t);
      else if (s < 2 * L)
        backward_step(s - L, t);
      else
        weights_step(t);
    } while (++s < last && !starts(s));
  });
}

template class Network<float>;
template class Network<double>;

}  // namespace chainrule
