// A probe, not a benchmark of bench/run: W2's first layer (784 → 128, batch 64, SGD) alone,
// through OpenBLAS's sgemm directly, to see what bounds W2's split by columns on two threads
// (docs/design-notes.md, "Threads"; bench/RESULTS.md, thirteenth to sixteenth sessions). Each
// step: gather the batch's 64 rows of a 60000 × 784 table, Z = X·W, ∂L/∂W = Xᵀ·Z (Z standing in
// for ∂L/∂Z), W -= lr·∂L/∂W; 937 steps (an epoch), five times, each time printed with the time
// each part spent in each phase (ms): gather, first product, wait, sums, wait, second product,
// update, wait.
//
//   g++ -O3 -march=native -o /tmp/w2_layer0_split bench/probes/w2_layer0_split.cpp -lopenblas
//   OPENBLAS_NUM_THREADS=1 /tmp/w2_layer0_split one|half|cols|ksplit|mixed
//
// -O3: at -O2, GCC 12 leaves the update's loops scalar (the sixteenth session found the probe's
// split by inputs slowed by its own scalar, strided update). one: one thread, no split. half:
// one thread, part 0 of the split by columns only (its 64 columns). cols: two threads, a part
// each, meeting between phases as the network's do. ksplit: two threads splitting the 784
// inputs instead at a multiple of 16 (partial sums of Z added up, ∂L/∂W by its rows). mixed: the
// forward product by columns, ∂L/∂W by rows. Environment: NOGATHER=1 gathers the batch once
// (nothing read from the table after the first step), NOBAR=1 drops the waits between phases,
// CORE=n puts `one` and `half` on core n (default 0), PROCS=1 runs the two parts as two
// processes (forked once, before the first epoch; every array is in shared memory in both
// modes, and the processes meet at the same waits), so that threads and processes run the same
// code.
#include <cblas.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <new>
#include <string>
#include <thread>

#include "w2_probe.hpp"

namespace {

using namespace w2probe;

float *table, *W, *dW, *Z, *partial[2], *X[2];
std::vector<int> order;
const bool no_gather = std::getenv("NOGATHER") != nullptr;

// Shared memory, so that PROCS=1 runs on the same arrays as threads.
float* shared_floats(std::size_t n) {
  return map_floats(n, true);
}

// In shared memory: PROCS=1 too. NOBAR=1: no waits.
Barrier& barrier = []() -> Barrier& {
  Barrier& b =
      *new (mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) Barrier;
  b.off = std::getenv("NOBAR") != nullptr;
  return b;
}();

// Columns [k0, k1) of step s's rows into out.
void gather(int s, int k0, int k1, float* out) {
  if (no_gather && s > 0) return;
  w2probe::gather(table, order, s, 0, kBatch, k0, k1, out);
}

// W is column-major (in, out): columns [j0, j1) are one range.
void update_cols(int j0, int j1) {
  for (std::size_t i = std::size_t(j0) * kIn; i < std::size_t(j1) * kIn; ++i)
    W[i] -= kLr * dW[i];
}
void update_rows(int k0, int k1) {
  for (int j = 0; j < kOut; ++j)
    for (int i = k0; i < k1; ++i)
      W[std::size_t(j) * kIn + i] -= kLr * dW[std::size_t(j) * kIn + i];
}

double (*ph)[8];  // each part's milliseconds in each phase (shared memory: PROCS=1 too)

// Time since the last lap added to phase i of part t.
struct Laps {
  double* into;
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
  void operator()(int i) {
    const auto now = std::chrono::steady_clock::now();
    into[i] += std::chrono::duration<double, std::milli>(now - at).count();
    at = now;
  }
};

// After an epoch: part 0 prints both parts' phases (once part 1 has added its own), then clears.
void report(int t, int parts) {
  if (parts == 1 || barrier.off) {
    if (t == 0) std::printf("phases:");
    for (int i = 0; t == 0 && i < 8; ++i)
      std::printf(" %.1f", ph[0][i]);
    if (t == 0) std::printf("\n");
    std::memset(ph[t], 0, sizeof *ph);
    return;
  }
  const int n = barrier.n;
  barrier.wait();
  if (t == 0) {
    for (int q = 0; q < n; ++q) {
      std::printf("part %d:", q);
      for (int i = 0; i < 8; ++i)
        std::printf(" %.1f", ph[q][i]);
      std::printf("\n");
    }
    std::memset(ph, 0, 2 * sizeof *ph);
  }
  barrier.wait();
}

// The split of the 784 inputs: a multiple of 16 floats, so that no line of W's columns is
// written by both parts.
int input_split(int t, int parts) {
  const int split = kIn / parts / 16 * 16;
  return t == 0 ? 0 : t == 1 ? split : kIn;
}

void by_cols(int t, int parts) {
  const int j0 = kOut * t / parts, j1 = kOut * (t + 1) / parts, n = j1 - j0;
  for (int s = 0; s < kSteps; ++s) {
    Laps lap{ph[t]};
    gather(s, 0, kIn, X[t]);
    lap(0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kBatch, n, kIn, 1, X[t], kIn,
                W + std::size_t(j0) * kIn, kIn, 0, Z + j0, kOut);
    lap(1);
    barrier.wait();  // (the network's layers 1 and 2: two phases)
    barrier.wait();
    lap(2);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, kIn, kBatch, 1e-3f, Z + j0, kOut, X[t],
                kIn, 0, dW + std::size_t(j0) * kIn, kIn);
    lap(5);
    update_cols(j0, j1);
    lap(6);
    barrier.wait();
    lap(7);
  }
  report(t, parts);
}

void by_inputs(int t, int parts) {
  const int k0 = input_split(t, parts), k1 = input_split(t + 1, parts), m = k1 - k0;
  const int j0 = kOut * t / parts, j1 = kOut * (t + 1) / parts;
  for (int s = 0; s < kSteps; ++s) {
    Laps lap{ph[t]};
    gather(s, k0, k1, X[t]);
    lap(0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kBatch, kOut, m, 1, X[t], m, W + k0, kIn,
                0, partial[t], kOut);
    lap(1);
    barrier.wait();
    lap(2);
    for (int i = 0; i < kBatch; ++i)
      for (int j = j0; j < j1; ++j)
        Z[i * kOut + j] = partial[0][i * kOut + j] + partial[1][i * kOut + j];
    lap(3);
    barrier.wait();
    lap(4);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kOut, m, kBatch, 1e-3f, Z, kOut, X[t], m,
                0, dW + k0, kIn);
    lap(5);
    update_rows(k0, k1);
    lap(6);
    barrier.wait();
    lap(7);
  }
  report(t, parts);
}

void mixed(int t, int parts) {
  const int j0 = kOut * t / parts, j1 = kOut * (t + 1) / parts, n = j1 - j0;
  const int k0 = input_split(t, parts), k1 = input_split(t + 1, parts), m = k1 - k0;
  for (int s = 0; s < kSteps; ++s) {
    Laps lap{ph[t]};
    gather(s, 0, kIn, X[t]);
    lap(0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kBatch, n, kIn, 1, X[t], kIn,
                W + std::size_t(j0) * kIn, kIn, 0, Z + j0, kOut);
    lap(1);
    barrier.wait();
    barrier.wait();
    lap(2);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kOut, m, kBatch, 1e-3f, Z, kOut, X[t] + k0,
                kIn, 0, dW + k0, kIn);
    lap(5);
    update_rows(k0, k1);
    lap(6);
    barrier.wait();
    lap(7);
  }
  report(t, parts);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  void (*split)(int, int) = mode == "cols"     ? by_cols
                            : mode == "ksplit" ? by_inputs
                            : mode == "mixed"  ? mixed
                                               : nullptr;
  if (mode != "one" && mode != "half" && split == nullptr) {
    std::fprintf(stderr, "usage: %s one|half|cols|ksplit|mixed\n", argv[0]);
    return 2;
  }
  ph = static_cast<double(*)[8]>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  // HUGE=1: the table in private memory on 2 MiB pages, as the network's.
  const bool huge = std::getenv("HUGE") != nullptr;
  table = huge ? map_floats(std::size_t(kRows) * kIn, false, kHugePage, true)
               : shared_floats(std::size_t(kRows) * kIn);
  W = shared_floats(kIn * kOut);
  dW = shared_floats(kIn * kOut);
  Z = shared_floats(kBatch * kOut);
  for (int t = 0; t < 2; ++t) {
    partial[t] = shared_floats(kBatch * kOut);
    X[t] = shared_floats(kBatch * kIn);
  }
  fill(table, W, order);
  const int core = std::getenv("CORE") ? std::atoi(std::getenv("CORE")) : 0;
  // Two processes: the second forked once, here. Its first epoch maps every page of the table
  // (one fault each), so the processes run one epoch more and the first is not a measure.
  pid_t child = -1;
  if (split != nullptr && std::getenv("PROCS")) {
    child = fork();
    if (child == 0) {
      pin(1);
      for (int rep = 0; rep < 6; ++rep)
        split(1, 2);
      _exit(0);
    }
  }
  // Two threads: the second started once, here, as the network's pool starts its workers.
  std::thread other;
  if (split != nullptr && child < 0)
    other = std::thread([&] {
      pin(1);
      for (int rep = 0; rep < 5; ++rep)
        split(1, 2);
    });
  for (int rep = 0; rep < (child > 0 ? 6 : 5); ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    if (mode == "one" || mode == "half") {
      barrier.n = 1;
      pin(core);
      by_cols(0, mode == "one" ? 1 : 2);
    } else {
      pin(0);
      split(0, 2);
    }
    std::printf("%s %.4f\n", mode.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (child > 0) waitpid(child, nullptr, 0);
  if (other.joinable()) other.join();
}
