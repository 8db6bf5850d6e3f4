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
  /// Starts the workers run(parts, ...) would, and returns how many of the parts can run at the
  /// same time (the caller's and one per worker, at most parts): when it is all of them, the
  /// parts of a run may wait for each other (a Barrier).
  std::size_t start(std::size_t parts);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// n threads meeting: wait() returns when all n have called it (spinning, then sleeping), and
/// what each wrote before it is seen by all after it. Used again at once: the next wait() starts
/// the next meeting.
class Barrier {
 public:
  explicit Barrier(std::size_t n = 1) : n_(std::uint32_t(n)) {}
  /// Not while a meeting is under way.
  void reset(std::size_t n) { n_ = std::uint32_t(n); }
  void wait();

 private:
  std::uint32_t n_;
  std::atomic<std::uint32_t> arrived_{0}, generation_{0};
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
