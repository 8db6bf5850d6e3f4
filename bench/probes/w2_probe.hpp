// What the probes of W2's first layer share (w2_layer0_split.cpp, w2_rows_split.cpp): its sizes,
// the table and W drawn from one seed, the batch's rows, memory, waits and pinning. Probes only:
// neither the library nor bench/run includes it.
#pragma once

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace w2probe {

// Fashion-MNIST's shape, W2's first layer, batch 64, an epoch of steps.
constexpr int kRows = 60000, kIn = 784, kOut = 128, kBatch = 64, kSteps = 937;
constexpr float kLr = 1e-6f;

// The 2 MiB of a huge page.
constexpr std::size_t kHugePage = std::size_t(2) << 20;

// n floats, zeroed, from a multiple of `align` (a power of two; mmap's own 4 KiB by default).
// `shared`: memory a forked process shares (MAP_SHARED); else private, on 2 MiB pages if `huge`
// (MADV_HUGEPAGE, as the network asks for its table). Arrays that all start at 2 MiB boundaries
// fall into the same cache sets: the probes' measured figures say which they used.
inline float* map_floats(std::size_t n, bool shared, std::size_t align = 4096, bool huge = false) {
  const std::size_t bytes = n * sizeof(float), pages = (bytes + 4095) / 4096 * 4096;
  void* p = mmap(nullptr, pages + (align > 4096 ? align : 0), PROT_READ | PROT_WRITE,
                 (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  auto* at = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(p) + align - 1) &
                                     ~std::uintptr_t(align - 1));
  if (huge && !shared) madvise(at, bytes, MADV_HUGEPAGE);
  std::memset(at, 0, bytes);
  return reinterpret_cast<float*>(at);
}

// n parts meet: each waits until all have come (spinning). `off`: no waiting at all.
struct Barrier {
  std::atomic<int> count{0}, generation{0};
  int n = 2;
  bool off = false;
  void wait() {
    if (off || n == 1) return;
    const int g = generation.load();
    if (count.fetch_add(1) + 1 == n) {
      count = 0;
      generation.fetch_add(1);
    } else {
      while (generation.load() == g)
        __builtin_ia32_pause();
    }
  }
};

// The inputs, from one seed: the table's values (pixels in [0, 1]), then W's, then the rows'
// order, shuffled.
inline void fill(float* table, float* W, std::vector<int>& order) {
  std::mt19937 g(1);
  for (std::size_t i = 0; i < std::size_t(kRows) * kIn; ++i)
    table[i] = float(g() % 256) / 255.f;
  for (int i = 0; i < kIn * kOut; ++i)
    W[i] = float(g() % 1000) / 1e4f;
  order.resize(kRows);
  for (int i = 0; i < kRows; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), g);
}

// Columns [k0, k1) of rows [r0, r1) of step s's batch into `out`, a row every k1 - k0 floats.
inline void gather(const float* table, const std::vector<int>& order, int s, int r0, int r1, int k0,
                   int k1, float* out) {
  for (int i = r0; i < r1; ++i)
    std::memcpy(out + std::size_t(i - r0) * (k1 - k0),
                table + std::size_t(order[std::size_t(s) * kBatch + i]) * kIn + k0,
                (k1 - k0) * sizeof(float));
}

// The calling thread onto one core.
inline void pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace w2probe
