#pragma once
// One loop compiled for several instruction sets and run in the widest the CPU has: AVX-512 does
// 16 floats per instruction where the build's baseline (SSE2) does 4. A Body is a struct whose
// static run() is always inlined, so each version below is its own vectorization of the loop.
// Every version rounds each operation as IEEE does (no contraction into fused multiply-adds:
// -ffp-contract=off, CMakeLists.txt; no reassociation), so all give the same bits. Chosen by a
// plain check, not by target_clones, whose ifunc resolvers run before ThreadSanitizer's runtime is
// up (they crashed the TSan build).
#include <cstddef>
#include <utility>

namespace chainrule::detail {

enum class Width { baseline, avx2, avx512 };

// The widest the CPU has, checked at the first call.
inline Width cpu_width() {
  static const Width width = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Width::avx512;
    if (__builtin_cpu_supports("avx2")) return Width::avx2;
    return Width::baseline;
  }();
  return width;
}

template <class Body, class... Args>
__attribute__((target("avx512f"))) void run_avx512(Args&&... args) {
  Body::run(std::forward<Args>(args)...);
}
template <class Body, class... Args>
__attribute__((target("avx2"))) void run_avx2(Args&&... args) {
  Body::run(std::forward<Args>(args)...);
}
template <class Body, class... Args>
void run_baseline(Args&&... args) {
  Body::run(std::forward<Args>(args)...);
}

// Body::run(args...) in the widest version the CPU can run.
template <class Body, class... Args>
void run_wide(Args&&... args) {
  switch (cpu_width()) {
    case Width::avx512:
      return run_avx512<Body>(std::forward<Args>(args)...);
    case Width::avx2:
      return run_avx2<Body>(std::forward<Args>(args)...);
    case Width::baseline:
      break;
  }
  run_baseline<Body>(std::forward<Args>(args)...);
}

// The same for a loop over n elements, where a few elements (the tutorial's nine weights) take
// the baseline build inlined in the caller: the call to a wider version costs more than it saves.
template <class Body, class... Args>
[[gnu::always_inline]] inline void run_wide_n(std::size_t n, Args&&... args) {
  if (n < 64) return Body::run(std::forward<Args>(args)...);
  run_wide<Body>(std::forward<Args>(args)...);
}

}  // namespace chainrule::detail
