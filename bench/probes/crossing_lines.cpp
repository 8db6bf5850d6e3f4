// A probe, not a benchmark of bench/run: what a network's split over two threads pays for the
// cache lines its phases pass between the cores (docs/design-notes.md, "Threads", twenty-first
// session). The library's own pool and phases (detail::WorkerPool, detail::PhasedParts) run two
// parts, three phases a step, 20,000 steps; in every phase each part first reads LINES cache
// lines the other part wrote in the phase before, then writes LINES lines of its own, which the
// other part reads in the next. It prints the time a step, the median of five rounds.
//
//   g++ -O2 -std=c++20 -Iinclude -o /tmp/crossing_lines bench/probes/crossing_lines.cpp \
//       -Lbuild-bench -lchainrule -lopenblas -lpthread
//   /tmp/crossing_lines LINES plain|stream|prefetchw|prefetch
//   taskset -c 0 /tmp/crossing_lines LINES plain    (both parts on one core, in turn)
//
// plain: 64-byte stores. stream: 64-byte streaming stores (to memory, past the caches), then a
// store fence. prefetchw: the part's own lines asked for with intent to write at the start of
// the phase, then plain stores. prefetch: the other part's lines asked for at the start of the
// phase, then read. With 0 lines, what the phases' waits cost alone. Needs AVX-512F.
// `chainrule_bench line` measures the cores' round trip beside it.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "chainrule/threads.hpp"

namespace {

constexpr int kMaxLines = 4096;
alignas(64) float lines_of[2][kMaxLines * 16];  // part t writes lines_of[t], reads lines_of[1 - t]

enum class Mode { plain, stream, prefetchw, prefetch };

__attribute__((target("avx512f,prfchw"))) float phase(int t, int lines, Mode mode, int step) {
  float* mine = lines_of[t];
  const float* theirs = lines_of[1 - t];
  if (mode == Mode::prefetchw)
    for (int i = 0; i < lines; ++i)
      _m_prefetchw(mine + i * 16);
  if (mode == Mode::prefetch)
    for (int i = 0; i < lines; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(theirs + i * 16), _MM_HINT_T0);
  __m512 sum = _mm512_setzero_ps();
  for (int i = 0; i < lines; ++i)
    sum = _mm512_add_ps(sum, _mm512_load_ps(theirs + i * 16));
  for (int i = 0; i < lines; ++i) {
    const __m512 v = _mm512_add_ps(sum, _mm512_set1_ps(float(step + i)));
    if (mode == Mode::stream)
      _mm512_stream_ps(mine + i * 16, v);
    else
      _mm512_store_ps(mine + i * 16, v);
  }
  if (mode == Mode::stream) _mm_sfence();
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crossing_lines LINES plain|stream|prefetchw|prefetch\n");
    return 2;
  }
  if (!__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "crossing_lines: this CPU has no AVX-512F\n");
    return 2;
  }
  const int lines = std::clamp(std::atoi(argv[1]), 0, kMaxLines);
  const std::string m = argv[2];
  if (m != "plain" && m != "stream" && m != "prefetchw" && m != "prefetch") {
    std::fprintf(stderr, "crossing_lines: no mode '%s' (plain, stream, prefetchw, prefetch)\n",
                 m.c_str());
    return 2;
  }
  const Mode mode = m == "stream"      ? Mode::stream
                    : m == "prefetchw" ? Mode::prefetchw
                    : m == "prefetch"  ? Mode::prefetch
                                       : Mode::plain;
  chainrule::detail::WorkerPool pool;
  chainrule::detail::PhasedParts phases;
  constexpr int kPhases = 3, kSteps = 20000;
  volatile float sink[2] = {};  // each part's sum, kept so that its reads are not dropped
  int step = 0;
  auto part = [&](std::size_t p, std::size_t t) {
    sink[t] = phase(int(t), lines, mode, step + int(p));
  };
  std::vector<double> rounds;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (step = 0; step < kSteps; ++step) {
      phases.reset(kPhases, 2);
      auto runner = [&](std::size_t p) { phases.run(part, p); };
      pool.run(2, runner);
    }
    rounds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / kSteps);
  }
  std::sort(rounds.begin(), rounds.end());
  std::printf("%d lines a part and phase, %s: %.2f µs a step of %d phases\n", lines, m.c_str(),
              rounds[2] * 1e6, kPhases);
  return 0;
}
