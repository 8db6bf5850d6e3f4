// A feedforward network: dense layers over ONE flat parameter buffer and ONE flat gradient buffer
// of the same length. The canonical step is zero_grad(); forward(X); backward(Y); optimizer step.
#pragma once

#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "chainrule/buffer.hpp"
#include "chainrule/dense.hpp"
#include "chainrule/loss.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

/// One dense layer of a NetworkSpec.
struct LayerSpec {
  Index units = 1;
  Activation activation = Activation::sigmoid;
};

/// The architecture: input width, layers (the last is the output layer) and the loss.
struct NetworkSpec {
  Index inputs = 1;
  std::vector<LayerSpec> layers;
  Loss loss = Loss::mse;
};

/// Throws ConfigError unless the spec describes a trainable network.
void validate(const NetworkSpec& spec);

/// One line: "2 inputs → 2 sigmoid → 1 sigmoid".
std::string describe(const NetworkSpec& spec);

/// Whether this CPU multiplies in bfloat16 (AVX512_BF16, asked at run time): what
/// Network::set_bf16_products and `--dtype bfloat16` need.
bool bf16_products_available();
/// Throws ConfigError unless bf16_products_available().
void require_bf16_products();

template <class T>
class Network {
 public:
  explicit Network(NetworkSpec spec);

  const NetworkSpec& spec() const { return spec_; }
  const std::vector<Dense<T>>& layers() const { return layers_; }
  Index inputs() const { return spec_.inputs; }
  Index outputs() const { return layers_.back().out(); }
  Index num_params() const { return static_cast<Index>(params_.size()); }

  /// The flat parameter buffer: layer 0's W then b, layer 1's W then b, ...
  std::span<T> params() { return params_; }
  std::span<const T> params() const { return params_; }
  /// The flat gradient buffer, parallel to params().
  std::span<T> grads() { return grads_; }
  std::span<const T> grads() const { return grads_; }
  /// Moves the parameters and gradients into memory the network does not own (what the
  /// processes of a Group share: Group::place), num_params() values each: `params` already holds
  /// the parameters' values (it is not written here), `grads` is this process's own. The memory
  /// must outlive the network's use of it; a copy of the network gets memory of its own.
  void place(T* params, T* grads);

  void zero_grad();

  /// Runs the batch X (N, inputs) through every layer; returns the output activations (N, outputs).
  /// Keeps what backward needs. Workspaces are reused while N stays the same. With `dropout`
  /// (training), hidden activations are dropped with probability dropout_rate(), drawn from it.
  const Batch<T>& forward(const BatchView<T>& X, Rng* dropout = nullptr);
  /// forward of the rows `rows` of X (in that order: a batch drawn from a larger matrix),
  /// gathered straight into the input the network keeps: on several threads each block gathers
  /// its own rows. The same outputs as forward() of a matrix of those rows.
  const Batch<T>& forward_rows(const BatchView<T>& X, std::span<const Index> rows,
                               Rng* dropout = nullptr);
  /// The outputs for X (N, outputs), as forward(X) gives them, without keeping a copy of X for
  /// a backward pass: for prediction and evaluation. loss() may follow it; backward() may not
  /// (it throws ConfigError until the next forward).
  const Batch<T>& infer(const BatchView<T>& X);
  /// One training sample: forward, loss and backward in one call, with grads() SET to the
  /// sample's gradient (as zero_grad, forward, loss and backward give it, bit for bit); returns
  /// the loss. x: inputs() values, y: outputs() values. Only where one_sample_path() holds.
  double step_one(const T* x, const T* y);
  /// step_one(x, y), then params -= lr · grads, in one pass: each layer's weights are updated
  /// as soon as the layer below has its gradient from them. The same bits as step_one followed
  /// by an Sgd step without momentum or weight decay (Optimizer::plain_descent) at rate lr.
  double step_one_descend(const T* x, const T* y, T lr);
  /// True when step_one applies: every layer small (at most 1024 weights) and no dropout.
  bool one_sample_path() const { return small_ && dropout_ == 0 && !bf16_; }
  /// Mean loss of the last forward batch against the targets Y (N, outputs).
  double loss(const BatchView<T>& Y) const;
  /// Backpropagates the loss of the last forward batch against Y; ADDS to grads().
  void backward(const BatchView<T>& Y);
  /// An elementwise pass over a range [begin, end) of the flat buffers (an optimizer's update).
  struct RangeJob {
    void (*run)(void* ctx, std::size_t begin, std::size_t end);
    void* ctx;
  };
  /// backward(Y), then `job` (if its `run` is set) over the whole parameter buffer cut into
  /// ranges: where the batch
  /// ran in blocks, each thread runs it on the range of the gradient it has just finished
  /// summing, in the same dispatch; otherwise as parallel_ranges. The result is that of backward
  /// followed by the job over [0, num_params()). With `fresh`, the gradient is this batch's
  /// alone, as zero_grad() before the forward pass would make it (the products write it instead
  /// of adding to it: no zeroing pass). With `loss`, also the batch's loss, loss(Y)
  /// bit for bit: on a split by columns, one thread computes it while the others compute their
  /// weight gradients (the threads waited for it before).
  void backward_then(const BatchView<T>& Y, RangeJob job, bool fresh = false,
                     double* loss = nullptr);
  /// forward_rows(X, rows, dropout) then backward_then(Y, job, fresh, loss), bit for bit; where
  /// the batch is split by columns, in one dispatch to the threads (one wait between the passes
  /// fewer). The training loop's step.
  void forward_backward_then(const BatchView<T>& X, std::span<const Index> rows, Rng* dropout,
                             const BatchView<T>& Y, RangeJob job, bool fresh = false,
                             double* loss = nullptr);

  /// Threads that share a large batch's forward and backward passes (1 by default, at most
  /// kMaxThreads; more than available_cores() gains nothing). The batch is cut into that many
  /// blocks of rows, each run through every layer on a worker thread the network owns; the
  /// weight gradients of the blocks are added in block order. Results are bit-identical for a
  /// fixed count (whichever threads run the blocks) and, with 1, the one-block path's. A batch
  /// too small to gain runs as one block. Two networks never share threads or settings.
  void set_threads(int n);
  int threads() const { return threads_; }
  /// Runs update(begin, end) over [0, n) cut into one range per thread, at once, when the network
  /// trains on several threads and n is large enough to be worth it; else update(0, n) here.
  /// For an optimizer's pass over the flat buffers (Optimizer::update): elementwise, so the
  /// result is the same for every cut.
  template <class F>
  void parallel_ranges(std::size_t n, F&& update) {
    const std::size_t parts = ranges_for(n);
    if (parts <= 1) return update(std::size_t(0), n);
    auto job = [&](std::size_t b) { update(n * b / parts, n * (b + 1) / parts); };
    pool().run(parts, job);  // no allocation: the pool takes a pointer to the job
  }
  static constexpr int kMaxThreads = 256;

  /// Matrix products with bfloat16 inputs and float32 sums (Dense::Products::bf16) in forward,
  /// infer and backward: `--dtype bfloat16`. The weights, gradients, activations and the
  /// optimizer's state stay float32. Throws ConfigError for a float64 network, or where the
  /// CPU lacks AVX512_BF16.
  void set_bf16_products(bool on);
  bool bf16_products() const { return bf16_; }

  /// Inverted dropout on every hidden layer's output: kept values are scaled by 1/(1 - p).
  /// 0 <= p < 1; it only acts in a forward pass given a generator.
  void set_dropout_rate(double p);
  double dropout_rate() const { return dropout_; }
  /// backward() differentiates the batch's summed loss divided by `rows` instead of by the batch's
  /// own rows (0, the default: its own): a process's part of a batch that several share.
  void set_loss_rows(Index rows) {
    loss_rows_ = rows;
    one_plan_.layers.clear();  // its gradient factor
  }

  /// Layer l's pre-activations Z and activations A from the last forward (N, units). For a
  /// hidden layer, only after a pass run as one block (one thread, or a small batch).
  const Batch<T>& pre_activation(std::size_t l) const { return work_[l].Z; }
  const Batch<T>& activation(std::size_t l) const { return work_[l].A; }

 private:
  struct Workspace {
    Batch<T> Z, A;  // (N, out)
    Batch<T> dZ;    // ∂L/∂Z (N, out); holds ∂L/∂A first where the loss is not fused
    Batch<T> mask;  // dropout: 0 or 1/(1 - p) per element (N, out)
    Batch<T> D;     // dropout: A ⊙ mask, the next layer's input (N, out)
    Batch<T> Wt;    // W row-major, for Dense::forward over many rows (in, out)
  };

  // One sample through a small network: plain loops instead of matrix products (whose setup
  // costs more than the arithmetic at these sizes), from the plan below. Same results as the
  // general path up to the order of additions.
  void forward_one(const T* x);
  // The backward pass after forward_one, x0 its input, y the targets (outputs()): the gradients
  // written (as adding to zeroed gradients would), each weight also updated by its gradient at
  // rate lr (Sgd's update), or the gradients added to.
  enum OneBackward { write = 0, descend = 1, add = 2 };
  void backward_one(const T* x0, const T* y, OneBackward how, T lr);

  // The one-sample path's layers resolved once (make_one_plan): where each layer's weights,
  // gradients and workspaces lie, and its loops compiled for its own activation and the one
  // below it, so that a step reads no layer description, checks no size and takes no switch (the
  // tutorial's step: 1,050 instructions before, most of them such bookkeeping around loops of
  // two units).
  struct OneLayer {
    T *W, *b, *gW, *gb;  // the layer's weights (in, out) column-major, biases, their gradients
    T *z, *a, *dz;       // its workspace (batch size 1): pre-activations, activations, ∂L/∂Z
    T* dx;               // the layer below's ∂L/∂Z; null for the first layer
    const T* below_a;    // the layer below's activations
    Batch<T>*Zb, *Ab, *dZb;  // z, a and dz as matrices (for softmax)
    Index in, out;
    void (*forward)(const T* x, const OneLayer& l);
    void (*backward[3])(const T* x, const OneLayer& l, T lr);  // by OneBackward
  };
  struct OnePlan {
    std::vector<OneLayer> layers;  // empty: to be made before the next one-sample pass
    // The output layer's ∂L/∂Z from its activations and the targets y, and the loss gradient's
    // factor it takes.
    void (*top)(const OneLayer& l, const T* y, T factor);
    T factor;
    OnePlan() = default;
    // A copy's pointers would be into the original: a copied or assigned network makes its own.
    OnePlan(const OnePlan&) {}
    OnePlan& operator=(const OnePlan&) {
      layers.clear();
      return *this;
    }
  };
  OnePlan one_plan_;  // cleared wherever params_, grads_ or the batch-size-1 workspaces move
  void make_one_plan();
  double step_one_planned(const T* x, const T* y, OneBackward how, T lr);

  // Runs X through every layer (the work of forward and infer), X being the kept input_ or not.
  const Batch<T>& run(const BatchView<T>& X, Rng* dropout);
  // The one-block backward, from the top layer's dZ.
  void backward_layers();

  // A block of rows of a batch split over threads: its rows of input_ and its own workspaces,
  // and for blocks after the first, its own weight gradients (the first adds to grads_
  // directly, or writes them there).
  struct Block {
    Index begin = 0, rows = 0;
    std::vector<Workspace> work;
    Buffer<T> grads;
    std::exception_ptr error;
  };
  // Before the first matrix product: a LimitError where OpenBLAS would have no room for its
  // buffer (it would retry forever instead of failing).
  void check_blas_room();
  // How many blocks a batch of N rows is cut into: 1 unless threads_ > 1 and it is large enough.
  std::size_t blocks_for(Index N) const;
  // run and backward for a batch cut into blocks_.size() > 1 blocks.
  const Batch<T>& run_blocks(const BatchView<T>& X, bool keep, Rng* dropout,
                             std::span<const Index> gather = {});
  // Block 0's weight gradients go into grads() as `first` says (added, or written: a fresh step).
  void backward_blocks(const BatchView<T>& Y, const RangeJob* then = nullptr,
                       typename Dense<T>::Grads first = Dense<T>::Grads::add);
  // The split by columns (network.cpp): the threads it takes for a batch of N rows (0: none);
  // whether layer l's columns are shared among `parts` threads (else the first computes all);
  // the columns of layer l part t computes; f(phase, part) for every phase and part, a phase's
  // parts all done before the next phase's start; and forward and backward so.
  std::size_t cols_for(Index N, Rng* dropout);
  bool cols_shared(std::size_t l, std::size_t parts) const;
  std::pair<Index, Index> cols_of(std::size_t l, std::size_t t) const;
  // Whether layer l runs by rows in a split by columns (its forward pass, and the ∂L/∂Z below
  // it in the backward pass), and the rows part t takes of an N-row batch.
  bool by_rows(std::size_t l) const;
  std::pair<Index, Index> rows_of(Index N, std::size_t t) const;
  template <class F>
  void each_phase(std::size_t phases, F&& f);
  const Batch<T>& run_cols(const BatchView<T>& X, std::span<const Index> gather, std::size_t parts);
  void backward_cols(const BatchView<T>& Y, const RangeJob* then, bool fresh = false,
                     double* loss = nullptr);
  // The workspaces of a split by columns: the forward pass's (the parts' inputs and each layer's
  // Z and A) and the backward pass's (∂L/∂Z), sized before the threads start.
  void size_cols_forward(Index N, Index inputs, std::size_t parts);
  void size_cols_backward(Index N);
  // backward's work on the whole batch in this thread, each layer's gradients added or assigned.
  void backward_whole(const BatchView<T>& Y, typename Dense<T>::Grads mode);
  // The phases of a forward pass of X (if given) and of a backward pass against Y (if given).
  void run_cols_steps(const BatchView<T>* X, std::span<const Index> gather, const BatchView<T>* Y,
                      const RangeJob* then, bool fresh, double* loss);
  // Runs f(block index) on every block, one per thread; rethrows the first block's exception.
  template <class F>
  void each_block(F&& f);
  // How many ranges parallel_ranges cuts n elements into, and the workers it hands them to.
  std::size_t ranges_for(std::size_t n) const;
  detail::WorkerPool& pool();

  // The network's worker threads; a copy of the network starts its own.
  struct Pool {
    std::unique_ptr<detail::WorkerPool> pool;
    Pool() = default;
    Pool(const Pool&) {}
    Pool& operator=(const Pool&) { return *this; }
    Pool(Pool&&) noexcept = default;
    Pool& operator=(Pool&&) noexcept = default;
  };
  typename Dense<T>::Products products() const {
    return bf16_ ? Dense<T>::Products::bf16 : Dense<T>::Products::native;
  }
  // The input of layer l in the last forward pass.
  const Batch<T>& layer_input(std::size_t l) const {
    if (l == 0) return input_;
    return dropped_ ? work_[l - 1].D : work_[l - 1].A;
  }

  NetworkSpec spec_;
  std::vector<Dense<T>> layers_;
  Buffer<T> params_, grads_;
  Batch<T> input_;  // the last forward batch (N, inputs)
  // A split by columns: parts 1, 2, ... each gather the whole batch into one of these (part 0
  // into input_), so that no part's first layer reads rows another core has just written.
  std::vector<Batch<T>> part_inputs_;
  Batch<T>& part_input(std::size_t t) { return t == 0 ? input_ : part_inputs_[t - 1]; }
  std::vector<Workspace> work_;
  // The workspaces and input of the last few other batch sizes, least recently used first, so
  // that sizes that come back every epoch (a partial last batch, validation's blocks of rows)
  // find their buffers again instead of reallocating them (and faulting in every new page: about
  // 11 µs per 4 KiB on the virtual machines of this project's sessions).
  struct WorkSet {
    Index rows = -1;
    std::vector<Workspace> work;
    Batch<T> input;
  };
  static constexpr std::size_t kSpareSets = 2;
  std::vector<WorkSet> spare_;
  Index work_rows_ = -1;  // the batch size work_ and input_ hold; -1 before the first pass
  // Makes work_ and input_ those of batch size N (a spare set's, or the least recently used
  // one's to resize); no allocation when N's set is kept. `training`: a forward pass that
  // backward follows (its deltas and input are sized too).
  void use_work_for(Index N, bool training) {
    if (N != work_rows_) switch_work(N, training);  // inline: the tutorial's step asks every time
  }
  void switch_work(Index N, bool training);
  double dropout_ = 0;
  Index loss_rows_ = 0;
  bool dropped_ = false;  // whether the last forward applied dropout
  bool small_ = false;    // every layer small enough for forward_one/backward_one
  bool one_ = false;      // the last forward took forward_one
  bool kept_ = false;     // the last pass was forward, which keeps its input for backward
  bool bf16_ = false;     // set_bf16_products
  int threads_ = 1;
  bool blas_room_ = false;      // check_blas_room passed
  std::vector<Block> blocks_;   // kept from pass to pass (no allocation while N stays the same)
  std::size_t split_ = 0;       // blocks of the last pass; 0: it ran as one block
  std::size_t cols_ = 0;        // threads the last pass was split among by columns; 0: none
  detail::PhasedParts phased_;  // the phases of a split by columns
  Pool pool_;
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace chainrule
