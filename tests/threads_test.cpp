// Threads belong to the objects that use them: a Network's worker threads, a batch cut into
// blocks of rows on them, and two networks training at once without touching each other.
#include "chainrule/threads.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"
#include "chainrule/network.hpp"
#include "chainrule/random.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {
namespace {

TEST(Threads, AvailableCoresIsAtLeastOne) {
  EXPECT_GE(available_cores(), 1);
  EXPECT_THROW(set_openblas_threads(0), ConfigError);
}

// Every part runs exactly once, part 0 on the calling thread, again and again on the same
// workers, with fewer or more parts; as many at the same time as there are cores (each waits
// until that many have started), never more threads than cores.
TEST(Threads, WorkerPoolRunsEachPartOnceOnAtMostTheCores) {
  const std::size_t cores = std::size_t(available_cores());
  detail::WorkerPool pool;
  for (const std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4), std::size_t(2),
                              std::size_t(4), std::size_t(5)}) {
    const std::size_t at_once = std::min(n, cores);
    std::vector<std::atomic<int>> runs(n);
    std::atomic<std::size_t> started{0}, together{0};
    std::thread::id first;
    auto job = [&](std::size_t i) {
      if (i == 0) first = std::this_thread::get_id();
      if (i < at_once) {  // parts 0 .. at_once - 1 run on distinct threads, at once
        ++started;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (started.load() < at_once && std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
        together += started.load() == at_once;
      }
      ++runs[i];
    };
    pool.run(n, job);
    EXPECT_EQ(together.load(), at_once) << n << " parts";
    for (std::size_t i = 0; i < n; ++i)
      EXPECT_EQ(runs[i].load(), 1) << n << " parts, part " << i;
    if (n > 0) EXPECT_EQ(first, std::this_thread::get_id());
    EXPECT_LE(pool.workers(), std::min(std::size_t(4), cores - 1));
  }
  EXPECT_EQ(pool.workers(), std::min(std::size_t(4), cores - 1));  // started once, kept
}

// A training run: `threads` threads per network, dropout on, batches large enough to be cut.
struct TrainedRun {
  std::vector<float> params;
  double loss = 0;
};

TrainedRun train_once(int threads, std::uint64_t seed) {
  Rng rng(seed);
  Network<float> net(
      {.inputs = 48,
       .layers = {{96, Activation::relu}, {40, Activation::tanh}, {5, Activation::softmax}},
       .loss = Loss::softmax_cross_entropy});
  net.set_threads(threads);
  initialize(net, Init::he, rng);
  const Index n = 600;
  Batch<float> X(n, 48), Y = Batch<float>::Zero(n, 5);
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = float(rng.normal());
  for (Index r = 0; r < n; ++r)
    Y(r, Index(rng.below(5))) = 1;
  TrainOptions o;
  o.epochs = 3;
  o.batch = 200;  // 200 × (48·96 + 96·40 + 40·5) multiply-adds: cut into blocks
  o.dropout = 0.1;
  o.optimizer = {.kind = OptimizerKind::adam, .lr = 0.01};
  const TrainResult r = train(net, X, Y, Batch<float>(0, 48), Batch<float>(0, 5), o, rng);
  return {{net.params().begin(), net.params().end()}, r.history.back().train_loss};
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The same thread count gives the same bytes, run after run; another count gives a model as good
// (the gradient's sums are in another order, so not the same bytes).
// PhasedParts: every part of every phase runs once, and a part of phase k sees everything the
// parts of phase k - 1 wrote (each part sums the whole previous phase), with 1, 2 and 5 threads
// running it (more threads than parts, and fewer), a run after a run, and with a thread that
// comes late (a worker held back at its start: the others must not wait for it).
TEST(Threads, PhasedPartsRunEachPartOnceAfterThePhaseBefore) {
  constexpr std::size_t kPhases = 6, kParts = 4;
  detail::WorkerPool pool;
  detail::PhasedParts phased;
  for (const std::size_t runners : {1, 2, 5}) {
    for (int run = 0; run < 3; ++run) {
      std::vector<std::vector<long>> cell(kPhases, std::vector<long>(kParts, 0));
      std::vector<std::atomic<int>> visits(kPhases * kParts);
      auto f = [&](std::size_t k, std::size_t t) {
        ++visits[k * kParts + t];
        long before = 0;
        if (k > 0)
          for (std::size_t u = 0; u < kParts; ++u)
            before += cell[k - 1][u];
        cell[k][t] = before + long(t) + 1;
      };
      phased.reset(kPhases, kParts);
      auto runner = [&](std::size_t r) {
        if (r == 1 && run == 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        phased.run(f, r);
      };
      pool.run(runners, runner);
      long want = 0;  // each phase: 4 × (the sum before) + 1 + 2 + 3 + 4
      for (std::size_t k = 0; k < kPhases; ++k) {
        long sum = 0;
        for (std::size_t t = 0; t < kParts; ++t) {
          EXPECT_EQ(visits[k * kParts + t].load(), 1) << runners << " threads";
          EXPECT_EQ(cell[k][t], want + long(t) + 1) << runners << " threads, phase " << k;
          sum += cell[k][t];
        }
        want = sum;
      }
    }
  }
}

// A thread runs its own part of each phase first, then the parts no one has taken: alone with
// `mine` 2 of 4 parts, it runs part 2 first in every phase, then 0, 1 and 3; a thread that finds
// its own part taken goes on to the others, and every part runs once.
TEST(Threads, PhasedPartsRunTheirOwnPartFirst) {
  detail::PhasedParts phased;
  std::vector<std::pair<std::size_t, std::size_t>> order;
  auto f = [&](std::size_t k, std::size_t t) { order.emplace_back(k, t); };
  phased.reset(3, 4);
  phased.run(f, 2);
  const std::vector<std::pair<std::size_t, std::size_t>> want = {{0, 2}, {0, 0}, {0, 1}, {0, 3},
                                                                 {1, 2}, {1, 0}, {1, 1}, {1, 3},
                                                                 {2, 2}, {2, 0}, {2, 1}, {2, 3}};
  EXPECT_EQ(order, want);
  order.clear();
  phased.run(f, 1);  // everything is done: nothing runs twice
  EXPECT_TRUE(order.empty());
  phased.reset(2, 70);  // past one word of claims
  phased.run(f, 69);
  ASSERT_EQ(order.size(), 140u);
  EXPECT_EQ(order[0], (std::pair<std::size_t, std::size_t>(0, 69)));
  EXPECT_EQ(order[1], (std::pair<std::size_t, std::size_t>(0, 0)));
  EXPECT_EQ(order[70], (std::pair<std::size_t, std::size_t>(1, 69)));
  std::vector<int> seen(140, 0);
  for (const auto& [k, t] : order)
    ++seen[k * 70 + t];
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 140);
}

TEST(Threads, FixedThreadCountGivesTheSameBytes) {
  const TrainedRun one = train_once(1, 7);
  for (const int threads : {2, 3}) {
    const TrainedRun a = train_once(threads, 7), b = train_once(threads, 7);
    EXPECT_TRUE(same_bytes(a.params, b.params)) << threads << " threads";
    EXPECT_NEAR(a.loss, one.loss, 1e-3 * (1 + one.loss)) << threads << " threads";
    EXPECT_FALSE(same_bytes(a.params, one.params)) << "the guard: the batches were cut";
  }
  EXPECT_TRUE(same_bytes(train_once(1, 7).params, one.params));
}

// Two networks trained at once on two threads (each with threads of its own, or one) give the
// same bytes as each trained alone: no setting or buffer is shared between them.
TEST(Threads, TwoNetworksTrainedAtOnceGiveTheBytesOfEachAlone) {
  for (const int threads : {1, 2}) {
    const TrainedRun alone_a = train_once(threads, 11), alone_b = train_once(threads, 12);
    TrainedRun at_once_a, at_once_b;
    {
      std::jthread a([&] { at_once_a = train_once(threads, 11); });
      std::jthread b([&] { at_once_b = train_once(threads, 12); });
    }
    EXPECT_TRUE(same_bytes(at_once_a.params, alone_a.params)) << threads << " threads";
    EXPECT_TRUE(same_bytes(at_once_b.params, alone_b.params)) << threads << " threads";
    EXPECT_FALSE(same_bytes(alone_a.params, alone_b.params));  // the guard: other seeds differ
  }
}

// A batch cut into blocks gives the one-block outputs, loss and gradients (up to the order of
// the sums), in double; forward after infer and a copy of the network agree too.
TEST(Threads, BlocksGiveTheOneBlockResults) {
  for (const bool mse : {false, true}) {
    Rng rng(3);
    Network<double> one({.inputs = 30,
                         .layers = {{64, Activation::sigmoid},
                                    {32, Activation::leaky_relu},
                                    {4, mse ? Activation::sigmoid : Activation::softmax}},
                         .loss = mse ? Loss::mse : Loss::softmax_cross_entropy});
    initialize(one, Init::xavier, rng);
    const Index n = 301;  // blocks of unequal rows
    Batch<double> X(n, 30), Y = Batch<double>::Zero(n, 4);
    for (Index i = 0; i < X.size(); ++i)
      X.data()[i] = rng.normal();
    for (Index r = 0; r < n; ++r)
      Y(r, Index(rng.below(4))) = 1;
    one.zero_grad();
    const Batch<double> out = one.forward(X);
    const double loss = one.loss(Y);
    one.backward(Y);
    for (const int threads : {2, 3, 7}) {
      Network<double> many = one;
      many.set_threads(threads);
      many.zero_grad();
      std::fill(many.grads().begin(), many.grads().end(), 0.5);  // backward adds to them
      ASSERT_TRUE(((many.infer(X) - out).array().abs() < 1e-12).all()) << threads;
      const Batch<double> out_many = many.forward(X);
      ASSERT_EQ(out_many.rows(), n);
      EXPECT_TRUE(((out_many - out).array().abs() < 1e-12).all()) << threads;
      EXPECT_NEAR(many.loss(Y), loss, 1e-12) << threads;
      many.backward(Y);
      for (Index i = 0; i < one.num_params(); ++i)
        ASSERT_NEAR(many.grads()[std::size_t(i)] - 0.5, one.grads()[std::size_t(i)], 1e-12)
            << threads << " threads, parameter " << i;
    }
  }
}

// Dropout masks are drawn in the one-block order: the same generator gives the same masks.
TEST(Threads, BlocksDrawTheOneBlockDropoutMasks) {
  Rng init(5);
  Network<double> one({.inputs = 40,
                       .layers = {{50, Activation::tanh}, {3, Activation::identity}},
                       .loss = Loss::mse});
  initialize(one, Init::xavier, init);
  one.set_dropout_rate(0.5);
  Network<double> many = one;
  many.set_threads(2);
  Batch<double> X(600, 40);  // 600 × (40·50 + 50·3) multiply-adds: cut into blocks
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = init.normal();
  Rng a(9), b(9);
  const Batch<double> out_one = one.forward(X, &a), out_many = many.forward(X, &b);
  EXPECT_TRUE(((out_one - out_many).array().abs() < 1e-12).all());
  EXPECT_EQ(a.uniform(), b.uniform());  // as many draws
}

// Under an address-space limit that leaves OpenBLAS no room for its buffer (which OpenBLAS
// 0.3.21 retries forever), a network's first product is a LimitError, not a hang; where there
// is room for one caller but not three, the blocks run on the calling thread. In a child process
// (the limit is process-wide), which an alarm ends if it hangs.
TEST(Threads, NoRoomForOpenBlasIsAnErrorNotAHang) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's allocator does not run under an address-space limit";
#endif
  EXPECT_TRUE(detail::room_for_blas(4));  // no limit here
  const auto in_child = [](std::size_t headroom_mib, int threads) {
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(60);
      std::size_t pages = 0;
      std::ifstream("/proc/self/statm") >> pages;
      const rlim_t limit = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (headroom_mib << 20);
      const rlimit l{limit, limit};
      if (setrlimit(RLIMIT_AS, &l) != 0) _exit(10);
      const bool blocks_ran_inline = !detail::room_for_blas(3) && detail::room_for_blas(1);
      try {
        Network<float> net({.inputs = 200, .layers = {{100, Activation::tanh}, {2}}});
        net.set_threads(threads);
        net.forward(Batch<float>::Ones(100, 200));
        _exit(blocks_ran_inline ? 0 : 11);
      } catch (const LimitError&) {
        _exit(1);
      } catch (...) {
        _exit(12);
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
  };
  EXPECT_EQ(in_child(64, 1), 1);  // no room for the buffer: the error
  EXPECT_EQ(in_child(64, 3), 1);
  EXPECT_EQ(in_child(240, 3), 0);  // room for one caller: the three blocks on the calling thread
}

}  // namespace
}  // namespace chainrule
