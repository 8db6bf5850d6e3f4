#include "chainrule/threads.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"

extern "C" {
// OpenBLAS's own extensions (cblas.h declares the first; we avoid pulling in the whole header).
void openblas_set_num_threads(int n);
int blas_thread_shutdown_(void);  // stops OpenBLAS's server threads; it restarts them when needed
}

namespace chainrule {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

void set_openblas_threads(int n) {
  if (n < 1) throw ConfigError("thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(n);
  // OpenBLAS starts its server threads when it loads, and they spin for a while (about 0.1 s)
  // before they sleep: with one thread they are never needed, so none is left to spin.
  if (n == 1) blas_thread_shutdown_();
}

namespace detail {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a thread spins before it sleeps: longer than the serial work between two parallel
// passes of a training step (the loss, an optimizer step of ~100 K parameters), so that a step's
// passes meet spinning workers, and short enough not to hold a core after the work is done.
constexpr auto kSpin = std::chrono::microseconds(200);

// Waits until `a` is no longer `old`: spinning, then sleeping (futex).
void await_change(const std::atomic<std::uint32_t>& a, std::uint32_t old) {
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    cpu_relax();
    if (i % 256 == 0 && std::chrono::steady_clock::now() - start > kSpin) break;
  }
  while (a.load(std::memory_order_acquire) == old)
    a.wait(old, std::memory_order_acquire);
}

// What one thread calling OpenBLAS needs: OpenBLAS's buffer (BUFFER_SIZE, 128 MiB for the
// Haswell, Zen and SkylakeX kernels), a stack and some slack.
constexpr std::size_t kBlasCaller = std::size_t(160) << 20;

bool limited(int resource) {
  rlimit limit{};
  return getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
}

}  // namespace

bool room_for_blas(std::size_t callers) {
  if (callers == 0 || (!limited(RLIMIT_AS) && !limited(RLIMIT_DATA))) return true;
  // A private writable mapping counts against both limits, and nothing of it is touched.
  const std::size_t bytes = callers * kBlasCaller;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  munmap(p, bytes);
  return true;
}

// Parts are claimed, not assigned: `next` packs the dispatch's number (high 32 bits), the next
// unclaimed part and the number of parts (16 bits each), and every thread, the caller included,
// claims parts from it by compare-and-swap until none is left. A worker the scheduler keeps
// waiting (a busy machine) then costs nothing: the caller runs its parts, and the dispatch ends
// when every part is done, not when every worker has woken. Which thread runs a part never
// changes what it computes.
struct WorkerPool::State {
  std::vector<std::thread> threads;
  // Never more threads than cores.
  const std::size_t max_workers = std::size_t(available_cores()) - 1;
  bool cannot_start = false;  // a start failed: no more tries
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint32_t> epoch{0};  // what sleeping workers wait on (the low half of next's)
  std::atomic<std::uint32_t> done{0};   // parts finished in this dispatch
  std::atomic<bool> stop{false};
  // Written by the caller before it publishes `next` (release); read by a thread only after it
  // claimed a part of that dispatch (acquire), which the dispatch waits for.
  void (*job)(void*, std::size_t) = nullptr;
  void* ctx = nullptr;

  static std::uint64_t pack(std::uint32_t dispatch, std::size_t part, std::size_t parts) {
    return std::uint64_t(dispatch) << 32 | std::uint64_t(part) << 16 | std::uint64_t(parts);
  }
  // Claims and runs parts of `dispatch` until none is left.
  void claim(std::uint32_t dispatch) {
    std::uint64_t word = next.load(std::memory_order_acquire);
    for (;;) {
      const std::size_t part = (word >> 16) & 0xffff, parts = word & 0xffff;
      if (std::uint32_t(word >> 32) != dispatch || part >= parts) return;
      if (!next.compare_exchange_weak(word, word + (1u << 16), std::memory_order_acquire))
        continue;  // `word` holds the new value
      job(ctx, part);
      done.fetch_add(1, std::memory_order_release);
      done.notify_one();
      word = next.load(std::memory_order_acquire);
    }
  }
  // The epoch is read before the stop flag: the pool's destructor sets the flag and then moves
  // the epoch on, so a worker that reads the moved epoch sees the flag, and one that reads an
  // earlier epoch waits for that move. Read the other way round, a worker held up between the
  // two reads (preempted) took the destructor's move for a dispatch and slept on it for good,
  // the destructor waiting for it: a hang at the end of a threaded CSV read, found by
  // scripts/fuzz (docs/design-notes.md, "Threads").
  void loop(std::uint32_t seen) {
    for (;;) {
      await_change(epoch, seen);
      seen = epoch.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      claim(seen);
    }
  }
};

WorkerPool::WorkerPool() : state_(std::make_unique<State>()) {}

WorkerPool::~WorkerPool() {
  State& s = *state_;
  if (s.threads.empty()) return;
  s.stop.store(true, std::memory_order_release);
  s.epoch.fetch_add(1, std::memory_order_release);
  s.epoch.notify_all();
  for (std::thread& t : s.threads)
    t.join();
}

std::size_t WorkerPool::workers() const {
  return state_->threads.size();
}

void WorkerPool::start(std::size_t parts) {
  State& s = *state_;
  const std::size_t needed = std::min(parts - 1, s.max_workers);
  if (parts > 1 && !s.cannot_start && s.threads.size() < needed) {
    // As many workers as there is room for, the caller and all of them calling OpenBLAS at once.
    std::size_t want = needed;
    while (want > s.threads.size() && !room_for_blas(want + 1))
      --want;
    if (want < needed) s.cannot_start = true;
    while (s.threads.size() < want) {
      const std::uint32_t seen = s.epoch.load(std::memory_order_relaxed);
      try {
        s.threads.emplace_back([&s, seen] { s.loop(seen); });
      } catch (const std::exception&) {  // no more threads: the others take the parts
        s.cannot_start = true;
        break;
      }
    }
  }
}

void WorkerPool::run(std::size_t parts, void (*job)(void*, std::size_t), void* ctx) {
  State& s = *state_;
  if (parts <= 1) {
    if (parts == 1) job(ctx, 0);
    return;
  }
  assert(parts <= 0xffff);
  start(parts);
  if (s.threads.empty()) {
    for (std::size_t p = 0; p < parts; ++p)
      job(ctx, p);
    return;
  }
  s.job = job;
  s.ctx = ctx;
  s.done.store(0, std::memory_order_relaxed);
  const std::uint32_t dispatch = s.epoch.load(std::memory_order_relaxed) + 1;
  s.next.store(State::pack(dispatch, 1, parts), std::memory_order_release);  // part 0 is ours
  s.epoch.store(dispatch, std::memory_order_release);
  s.epoch.notify_all();
  job(ctx, 0);
  s.done.fetch_add(1, std::memory_order_relaxed);
  s.claim(dispatch);
  // Wait for the parts that workers claimed: spinning, then sleeping.
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    const std::uint32_t d = s.done.load(std::memory_order_acquire);
    if (d == parts) return;
    if (i % 256 == 0 && std::chrono::steady_clock::now() - start > kSpin)
      s.done.wait(d, std::memory_order_acquire);
    else
      cpu_relax();
  }
}

void PhasedParts::reset(std::size_t phases, std::size_t parts) {
  if (phases > capacity_) {
    counters_ = std::make_unique<Counter[]>(phases);
    capacity_ = phases;
  }
  assert(parts <= kMaxParts);
  for (std::size_t k = 0; k < phases; ++k) {
    for (std::atomic<std::uint64_t>& w : counters_[k].claimed)
      w.store(0, std::memory_order_relaxed);
    counters_[k].done.store(0, std::memory_order_relaxed);
  }
  phases_ = phases;
  parts_ = std::uint32_t(parts);
}

void PhasedParts::finish(std::size_t k) {
  std::atomic<std::uint32_t>& done = counters_[k].done;
  if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == parts_) done.notify_all();
}

void PhasedParts::await(std::size_t k) {
  const std::atomic<std::uint32_t>& done = counters_[k].done;
  for (std::uint32_t seen = done.load(std::memory_order_acquire); seen < parts_;
       seen = done.load(std::memory_order_acquire))
    await_change(done, seen);
}

void run_spans(std::size_t n, const std::function<void(std::size_t)>& work) {
  std::vector<std::size_t> inline_spans;
  {
    std::vector<std::jthread> pool;
    pool.reserve(n);
    for (std::size_t i = 1; i < n; ++i) {
      try {
        pool.emplace_back(work, i);
      } catch (const std::system_error&) {  // no more threads: this one does the rest
        inline_spans.push_back(i);
      }
    }
    if (n > 0) work(0);
    for (const std::size_t i : inline_spans)
      work(i);
  }  // the jthreads join here
}

}  // namespace detail

}  // namespace chainrule
