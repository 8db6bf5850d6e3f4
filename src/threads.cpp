#include "chainrule/threads.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"

extern "C" {
// OpenBLAS's own extension (cblas.h declares it; we avoid pulling in the whole header).
void openblas_set_num_threads(int n);
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

// Waits until `a` is 0: spinning, then sleeping.
void await_zero(const std::atomic<std::uint32_t>& a) {
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (a.load(std::memory_order_acquire) == 0) return;
    cpu_relax();
    if (i % 256 == 0 && std::chrono::steady_clock::now() - start > kSpin) break;
  }
  for (std::uint32_t left; (left = a.load(std::memory_order_acquire)) != 0;)
    a.wait(left, std::memory_order_acquire);
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

struct WorkerPool::State {
  std::vector<std::thread> threads;  // thread t (0: the caller) runs parts t, t + stride, ...
  // Never more threads than cores: more parts than that take turns on the threads there are.
  const std::size_t max_workers = std::size_t(available_cores()) - 1;
  bool cannot_start = false;  // a start failed: no more tries
  // The calling thread writes the job, then bumps `epoch` (release); every worker runs its part
  // (if any) and counts `pending` down (acq_rel); the caller waits for 0 (acquire). Job fields
  // are written only while every worker is waiting for the next epoch.
  std::atomic<std::uint32_t> epoch{0}, pending{0};
  bool stop = false;
  void (*job)(void*, std::size_t) = nullptr;
  void* ctx = nullptr;
  std::size_t parts = 0, stride = 1;

  void loop(std::size_t thread, std::uint32_t seen) {
    for (;;) {
      await_change(epoch, seen);
      seen = epoch.load(std::memory_order_acquire);
      if (stop) return;
      for (std::size_t p = thread; p < parts; p += stride)
        job(ctx, p);
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) pending.notify_one();
    }
  }
};

WorkerPool::WorkerPool() : state_(std::make_unique<State>()) {}

WorkerPool::~WorkerPool() {
  State& s = *state_;
  if (s.threads.empty()) return;
  s.stop = true;
  s.epoch.fetch_add(1, std::memory_order_release);
  s.epoch.notify_all();
  for (std::thread& t : s.threads)
    t.join();
}

std::size_t WorkerPool::workers() const {
  return state_->threads.size();
}

void WorkerPool::run(std::size_t parts, void (*job)(void*, std::size_t), void* ctx) {
  State& s = *state_;
  if (parts <= 1) {
    if (parts == 1) job(ctx, 0);
    return;
  }
  const std::size_t needed = std::min(parts - 1, s.max_workers);
  if (!s.cannot_start && s.threads.size() < needed) {
    // As many workers as there is room for, the caller and all of them calling OpenBLAS at once.
    std::size_t want = needed;
    while (want > s.threads.size() && !room_for_blas(want + 1))
      --want;
    if (want < needed) s.cannot_start = true;
    while (s.threads.size() < want) {
      const std::size_t thread = s.threads.size() + 1;
      const std::uint32_t seen = s.epoch.load(std::memory_order_relaxed);
      try {
        s.threads.emplace_back([&s, thread, seen] { s.loop(thread, seen); });
      } catch (const std::exception&) {  // no more threads: the others take the parts in turn
        s.cannot_start = true;
        break;
      }
    }
  }
  const std::size_t running = s.threads.size(), stride = running + 1;
  if (running > 0) {
    s.job = job;
    s.ctx = ctx;
    s.parts = parts;
    s.stride = stride;
    s.pending.store(std::uint32_t(running), std::memory_order_relaxed);
    s.epoch.fetch_add(1, std::memory_order_release);
    s.epoch.notify_all();
  }
  for (std::size_t p = 0; p < parts; p += stride)
    job(ctx, p);
  if (running > 0) await_zero(s.pending);
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
