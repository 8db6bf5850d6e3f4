// Threads. The library keeps no process-wide thread setting: a Network owns its worker threads
// (Network::set_threads), and reading a CSV file or writing a matrix takes its thread count from
// its own options (CsvOptions::threads, Preprocessor::transform's `threads`). OpenBLAS's own
// thread count is process-wide; the library never changes it (see set_openblas_threads).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace chainrule {

/// The cores this process may run on (its CPU affinity; std::thread::hardware_concurrency where
/// that is unknown), at least 1. A sensible upper bound for every thread count.
int available_cores();

/// Sets OpenBLAS's thread count for the whole process (openblas_set_num_threads). This is a
/// program's choice, made once at its start, never the library's: the command line sets 1, so
/// that its threads are its networks' own and `--threads 1` keeps one core busy. A program that
/// leaves it alone keeps OpenBLAS's setting (OPENBLAS_NUM_THREADS, or every core), and OpenBLAS
/// may then spread one large product of a network over its own threads too. With n = 1,
/// OpenBLAS's idle server threads are stopped as well (they spin for a while after they start).
/// Call it before any other thread uses OpenBLAS.
void set_openblas_threads(int n);

namespace detail {

/// Persistent worker threads owned by one object (a Network): run(parts, job) runs job(0) on the
/// calling thread and job(1) ... job(parts - 1) on whichever thread claims them first, the
/// caller included; it returns when all are done. The workers are started on first use and kept
/// (they wait spinning briefly, then sleeping); never more threads than available_cores(), nor
/// more than can be started (no more threads, or no room_for_blas). Which thread runs a part
/// never changes what it computes. Dispatching allocates nothing once the workers are running.
/// Not copyable; one caller at a time.
class WorkerPool {
 public:
  WorkerPool();
  ~WorkerPool();  // stops and joins the workers
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// job(ctx, p) for p in [0, parts); returns when all are done. `job` must not throw.
  void run(std::size_t parts, void (*job)(void* ctx, std::size_t part), void* ctx);
  template <class F>
  void run(std::size_t parts, F& f) {
    run(
        parts, [](void* c, std::size_t p) { (*static_cast<F*>(c))(p); }, &f);
  }
  /// Workers running now (not counting the calling thread).
  std::size_t workers() const;

 private:
  // Starts the workers a run of `parts` parts can use, as far as there is room.
  void start(std::size_t parts);
  struct State;
  std::unique_ptr<State> state_;
};

/// The parts of a job that runs in phases, claimed by whichever threads run it: a thread takes
/// its own part of phase k (`mine`, when no one has taken it), then parts that no one has taken,
/// then waits until every part of phase k is done (what they wrote is then seen by all) before it
/// goes on to phase k + 1. A thread that comes late finds the phases before done and joins where
/// the others are; one thread alone does every part. So no thread ever waits for one that is not
/// running a part: a worker the scheduler keeps waiting (a busy machine) costs nothing, as in
/// WorkerPool. And while every thread runs, part t stays on the thread whose own it is, phase
/// after phase and run after run, so the data of part t (a split by columns: its columns of W,
/// their gradients and optimizer state) stays in that core's cache. Claimed in arrival order
/// instead, parts changed cores from phase to phase (docs/design-notes.md, "Threads", says what
/// that cost and what else does). A copy starts empty.
class PhasedParts {
 public:
  static constexpr std::size_t kMaxParts = 256;
  PhasedParts() = default;
  PhasedParts(const PhasedParts&) {}
  PhasedParts& operator=(const PhasedParts&) { return *this; }
  /// Before a run, with no thread in it: `phases` phases of `parts` (at most kMaxParts) parts
  /// each. Allocates only for more phases than any run before.
  void reset(std::size_t phases, std::size_t parts);
  /// One thread's share of the run: f(phase, part) for every part it claims, phase by phase,
  /// its own part `mine` first.
  template <class F>
  void run(F& f, std::size_t mine = 0) {
    for (std::size_t k = 0; k < phases_; ++k) {
      if (mine < parts_ && claim(k, mine)) {
        f(k, mine);
        finish(k);
      }
      for (std::size_t w = 0; w * 64 < parts_; ++w) {  // the parts of threads not here (yet)
        std::atomic<std::uint64_t>& word = counters_[k].claimed[w];
        const std::uint64_t valid =
            parts_ - w * 64 >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << (parts_ - w * 64)) - 1;
        for (std::uint64_t free; (free = ~word.load(std::memory_order_relaxed) & valid) != 0;) {
          const std::uint64_t bit = free & -free;
          if (word.fetch_or(bit, std::memory_order_relaxed) & bit) continue;  // taken meanwhile
          const std::size_t part = w * 64 + std::size_t(__builtin_ctzll(bit));
          f(k, part);
          finish(k);
        }
      }
      await(k);
    }
  }

 private:
  bool claim(std::size_t k, std::size_t part) {  // part of phase k, if no one has it
    std::atomic<std::uint64_t>& word = counters_[k].claimed[part / 64];
    const std::uint64_t bit = std::uint64_t(1) << (part % 64);
    return !(word.load(std::memory_order_relaxed) & bit) &&
           !(word.fetch_or(bit, std::memory_order_relaxed) & bit);
  }
  void finish(std::size_t k);  // one more part of phase k done
  void await(std::size_t k);   // until every part of phase k is done
  struct alignas(64) Counter {
    std::atomic<std::uint64_t> claimed[kMaxParts / 64] = {};  // a bit per part
    std::atomic<std::uint32_t> done{0};
  };
  std::unique_ptr<Counter[]> counters_;
  std::size_t capacity_ = 0, phases_ = 0;
  std::uint32_t parts_ = 0;
};

/// False when an address-space or data limit (ulimit -v, ulimit -d) leaves no room for `callers`
/// threads to call OpenBLAS at once (tried by reserving it for a moment): each needs a work
/// buffer of OpenBLAS's (128 MiB on x86-64), whose allocation OpenBLAS 0.3.21 retries forever
/// instead of failing, and a stack. True without such a limit.
bool room_for_blas(std::size_t callers);

/// Runs work(0), ..., work(n - 1) at once and returns when all are done: work(0) on the calling
/// thread, each other on a short-lived thread of its own, or on the calling thread after work(0)
/// where no thread can be started. `work` must not throw (it runs on other threads).
void run_spans(std::size_t n, const std::function<void(std::size_t)>& work);

}  // namespace detail

}  // namespace chainrule
