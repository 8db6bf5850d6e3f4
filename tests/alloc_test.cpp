// After the first step, a training step (zero_grad, forward, backward, optimizer step) allocates
// no memory. This binary replaces malloc and friends with counting wrappers around glibc's own.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <span>
#include <vector>

#include "chainrule/init.hpp"
#include "chainrule/network.hpp"
#include "chainrule/optimizer.hpp"
#include "chainrule/threads.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<long> g_allocations{0};
}

extern "C" {
void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  *out = __libc_memalign(alignment, n);
  return *out == nullptr ? ENOMEM : 0;
}
}

namespace chainrule {
namespace {

// With `fused`, the training loop's step instead: forward_backward_then over the batch's rows
// (given as row numbers, as the loop gathers them), the update in its dispatch.
template <class T>
long allocations_in_steady_steps(const NetworkSpec& spec, Index batch, int threads = 1,
                                 bool fused = false) {
  // OpenBLAS's threaded GEMM allocates a job queue on every call: a program that wants no
  // allocation runs it on one thread (the command line does), and the network's threads share
  // the work. The library leaves OpenBLAS's process-wide setting to the program.
  set_openblas_threads(1);
  Rng rng(1);
  Network<T> net(spec);
  net.set_threads(threads);
  initialize(net, Init::xavier, rng);
  Sgd<T> sgd({.lr = 0.01, .momentum = 0.9});
  Batch<T> X(batch, spec.inputs), Y = Batch<T>::Zero(batch, net.outputs());
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = T(rng.normal());
  for (Index n = 0; n < batch; ++n)
    Y(n, n % net.outputs()) = 1;
  const std::span<T> params = net.params();
  const std::span<const T> grads = net.grads();
  auto update = [&](std::size_t begin, std::size_t end) { sgd.update(params, grads, begin, end); };
  std::vector<Index> rows(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < rows.size(); ++i)
    rows[i] = Index(rows.size() - 1 - i);  // the batch's rows, in another order
  auto step = [&] {
    // As the Trainer steps: one step, its update shared by the network's threads.
    sgd.begin_step(params.size());
    if (fused) {
      net.forward_backward_then(X, rows, nullptr, Y,
                                {[](void* f, std::size_t b, std::size_t e) {
                                   (*static_cast<decltype(update)*>(f))(b, e);
                                 },
                                 &update},
                                true);
      return;
    }
    net.zero_grad();
    net.forward(X);
    net.backward(Y);
    net.parallel_ranges(params.size(), update);
  };
  step();  // the first step sizes the workspaces and the momentum buffer (and starts the threads)
  const long before = g_allocations.load();
  for (int i = 0; i < 5; ++i)
    step();
  return g_allocations.load() - before;
}

TEST(Allocation, CounterSeesAllocations) {
  const long before = g_allocations.load();
  Batch<float> B(64, 64);  // the guard: the counter does count Eigen's allocations
  EXPECT_GT(g_allocations.load(), before);
}

TEST(Allocation, TutorialStepAllocatesNothing) {
  const NetworkSpec spec{.inputs = 2,
                         .layers = {{2, Activation::sigmoid}, {1, Activation::sigmoid}},
                         .loss = Loss::mse};
  EXPECT_EQ(allocations_in_steady_steps<double>(spec, 1), 0);
}

TEST(Allocation, LargeBatchStepAllocatesNothing) {
  const NetworkSpec spec{
      .inputs = 784,
      .layers = {{128, Activation::relu}, {64, Activation::tanh}, {10, Activation::softmax}},
      .loss = Loss::softmax_cross_entropy};
  EXPECT_EQ(allocations_in_steady_steps<float>(spec, 64), 0);
  EXPECT_EQ(allocations_in_steady_steps<double>(spec, 256), 0);
}

// The same on the network's own threads: a batch split by columns (64 rows on 2 threads), also
// through forward_backward_then, and one cut into blocks of rows (256 on 3), the blocks'
// gradients added.
TEST(Allocation, StepOnThreadsAllocatesNothing) {
  const NetworkSpec spec{
      .inputs = 784,
      .layers = {{128, Activation::relu}, {64, Activation::tanh}, {10, Activation::softmax}},
      .loss = Loss::softmax_cross_entropy};
  EXPECT_EQ(allocations_in_steady_steps<float>(spec, 64, 2), 0);
  EXPECT_EQ(allocations_in_steady_steps<double>(spec, 256, 3), 0);
  // The training loop's step, both passes in one dispatch on a split by columns.
  EXPECT_EQ(allocations_in_steady_steps<float>(spec, 64, 2, true), 0);
}

// Inference on the network's threads: the blocks read their rows of the batch in place.
TEST(Allocation, InferOnThreadsAllocatesNothing) {
  set_openblas_threads(1);
  Network<float> net({.inputs = 784,
                      .layers = {{128, Activation::relu}, {10, Activation::softmax}},
                      .loss = Loss::softmax_cross_entropy});
  net.set_threads(2);
  const Batch<float> X = Batch<float>::Ones(1024, 784);
  net.infer(X.topRows(512));  // sizes the workspaces, starts the worker
  const long before = g_allocations.load();
  for (int i = 0; i < 5; ++i)
    net.infer(X.middleRows(i * 100, 512));
  EXPECT_EQ(g_allocations.load() - before, 0);
}

// Epochs whose batch sizes alternate (full batches of 64, a partial last batch of 36, then
// validation through a block of 300 rows): after the first epoch, none allocates (each size finds
// the workspaces it had; before, every change of size reallocated them).
TEST(Allocation, EpochsOfAlternatingSizesAllocateNothingAfterTheFirst) {
  set_openblas_threads(1);
  Rng rng(3);
  Network<float> net({.inputs = 784,
                      .layers = {{128, Activation::relu}, {10, Activation::softmax}},
                      .loss = Loss::softmax_cross_entropy});
  initialize(net, Init::xavier, rng);
  Adam<float> adam({});
  Batch<float> X(400, 784), Y = Batch<float>::Zero(400, 10);
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = float(rng.normal());
  for (Index n = 0; n < 400; ++n)
    Y(n, n % 10) = 1;
  std::vector<Index> order(400);
  for (Index i = 0; i < 400; ++i)
    order[std::size_t(i)] = (i * 7) % 400;
  Batch<float> Yb(64, 10);
  const auto epoch = [&] {
    for (Index first = 0; first < 100; first += 64) {  // 64 rows, then 36
      const Index n = std::min<Index>(64, 100 - first);
      const std::span<const Index> rows(order.data() + first, std::size_t(n));
      for (Index i = 0; i < n; ++i)
        Yb.row(i) = Y.row(rows[std::size_t(i)]);
      net.zero_grad();
      net.forward_rows(X, rows);
      net.backward(Yb.topRows(n));
      adam.begin_step(net.params().size());
      adam.update(net.params(), net.grads(), 0, net.params().size());
    }
    net.infer(X.bottomRows(300));
    return net.loss(Y.bottomRows(300));
  };
  epoch();
  const long before = g_allocations.load();
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(std::isfinite(epoch()));
  EXPECT_EQ(g_allocations.load() - before, 0);
}

}  // namespace
}  // namespace chainrule
