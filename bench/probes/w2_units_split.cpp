// A probe, not a benchmark of bench/run: W2's whole step (784-128-64-10, batch 64, ReLU, SGD)
// split over two threads by the first layer's units, carried through the second layer's inputs
// (docs/design-notes.md, "Threads", twenty-second session). Part t owns the first layer's
// columns c_t (64 of its 128 units) and the second layer's rows c_t (the weights out of those
// units): it computes its columns of A₀ and P_t = A₀[:, c_t]·W₁[c_t, :], a partial sum of Z₁. The
// parts exchange P (64 × 64 floats, 256 cache lines each way) and meet once a step; each then
// adds Z₁ = P₀ + P₁ itself and runs the small top (A₁, layer 2 forward and backward, ∂L/∂Z₁) on
// its own copy of layer 2's weights, the same values in both; then, for its own units only,
// ∂L/∂W₁[c_t, :], ∂L/∂A₀[:, c_t], ∂L/∂W₀[:, c_t] and the updates. Nothing else a part writes is
// read by the other. Every product through OpenBLAS's sgemm (one thread), in every mode:
//
//   g++ -O3 -march=native -o /tmp/w2_units_split bench/probes/w2_units_split.cpp -lopenblas
//   OPENBLAS_NUM_THREADS=1 /tmp/w2_units_split one|split|turns|procs
//
// one: one thread, no split (the reference). split: two threads, one part each. turns: both parts
// on one thread, one after the other (the split's own cost, with no exchange between cores).
// procs: part 1 in a process forked once (P and the wait in shared memory), the same code.
// Environment: OWNW0=1 gives each part its columns of W₀ as an array of its own (by default they
// are columns of one row-major 784 × 128 array, each row's first 256 bytes part 0's and the next
// part 1's); SHAREDA=1 puts the parts' A₀ and ∂L/∂A₀ in one 64 × 128 array the same way;
// NOBAR=1 drops the wait (timing only). Prints the best of five epochs (937 steps) and the
// median. The loss's gradient at the top is a stand-in (0.01·Z₂ − 0.1): the probe times the
// step, it does not train.
#include <cblas.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>

#include "w2_probe.hpp"

namespace {

using namespace w2probe;
constexpr int kH = kOut, kH1 = 64, kK = 10, kHalf = kH / 2;

float *table, *W0, *W1, *W2[2];  // W2: each part's copy (the same values)
std::vector<int> order;

void gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
          float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
}
void relu(float* z, int n) {
  for (int i = 0; i < n; ++i)
    z[i] = z[i] > 0 ? z[i] : 0;
}
void relu_back(float* d, const float* a, int n) {
  for (int i = 0; i < n; ++i)
    d[i] = a[i] > 0 ? d[i] : 0;
}
void step_down(float* w, int ldw, const float* g, int ldg, int rows, int cols) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      w[r * ldw + c] -= kLr * g[r * ldg + c];
}

// A part's own arrays (one part, all of W2's units, in `one`).
struct Part {
  float *X, *A0, *P, *Z1, *Z2, *dZ2, *dW2, *dA1, *dW1, *dA0, *dW0;
  int c0, n;  // its first unit and how many
  float* w0;  // its columns of W₀: in W₀ (ld kH), or, with OWNW0=1, an array of its own (ld n)
  int ld0 = kH;
  int lda = 0;  // A₀'s and ∂L/∂A₀'s row stride: n, or kH with SHAREDA=1 (W2's one array)
  explicit Part(int first, int units)
      : X(map_floats(std::size_t(kBatch) * kIn, false)),
        A0(map_floats(std::size_t(kBatch) * units, false)),
        P(map_floats(std::size_t(kBatch) * kH1, false)),
        Z1(map_floats(std::size_t(kBatch) * kH1, false)),
        Z2(map_floats(std::size_t(kBatch) * kK, false)),
        dZ2(map_floats(std::size_t(kBatch) * kK, false)),
        dW2(map_floats(std::size_t(kH1) * kK, false)),
        dA1(map_floats(std::size_t(kBatch) * kH1, false)),
        dW1(map_floats(std::size_t(units) * kH1, false)),
        dA0(map_floats(std::size_t(kBatch) * units, false)),
        dW0(map_floats(std::size_t(kIn) * units, false)),
        c0(first),
        n(units) {}
};

float* shared_P[2][2];  // [step parity][part]: each part's P, for the other to read

// Up to the partial sum: the batch, A₀'s columns c_t, P_t.
void forward_part(Part& p, int s) {
  gather(table, order, s, 0, kBatch, 0, kIn, p.X);
  gemm(false, false, kBatch, p.n, kIn, p.X, kIn, p.w0, p.ld0, p.A0, p.lda);
  for (int r = 0; r < kBatch; ++r)
    relu(p.A0 + r * p.lda, p.n);
  gemm(false, false, kBatch, kH1, p.n, p.A0, p.lda, W1 + p.c0 * kH1, kH1, p.P, kH1);
}

// The rest, from Z₁ = the sum of the parts' P (`others`: the other part's, or none).
void backward_part(Part& p, int t, const float* other) {
  for (int i = 0; i < kBatch * kH1; ++i)
    p.Z1[i] = other ? (t == 0 ? p.P[i] + other[i] : other[i] + p.P[i]) : p.P[i];
  relu(p.Z1, kBatch * kH1);  // A₁, in place
  float* w2 = W2[t];
  gemm(false, false, kBatch, kK, kH1, p.Z1, kH1, w2, kK, p.Z2, kK);
  for (int i = 0; i < kBatch * kK; ++i)
    p.dZ2[i] = 0.01f * p.Z2[i] - 0.1f;
  gemm(true, false, kH1, kK, kBatch, p.Z1, kH1, p.dZ2, kK, p.dW2, kK);
  gemm(false, true, kBatch, kH1, kK, p.dZ2, kK, w2, kK, p.dA1, kH1);
  relu_back(p.dA1, p.Z1, kBatch * kH1);  // ∂L/∂Z₁
  gemm(true, false, p.n, kH1, kBatch, p.A0, p.lda, p.dA1, kH1, p.dW1, kH1);
  gemm(false, true, kBatch, p.n, kH1, p.dA1, kH1, W1 + p.c0 * kH1, kH1, p.dA0, p.lda);
  for (int r = 0; r < kBatch; ++r)  // ∂L/∂Z₀'s columns c_t
    relu_back(p.dA0 + r * p.lda, p.A0 + r * p.lda, p.n);
  gemm(true, false, kIn, p.n, kBatch, p.X, kIn, p.dA0, p.lda, p.dW0, p.n);
  step_down(p.w0, p.ld0, p.dW0, p.n, kIn, p.n);
  step_down(W1 + p.c0 * kH1, kH1, p.dW1, kH1, p.n, kH1);
  step_down(w2, kK, p.dW2, kK, kH1, kK);
}

// Part t's step s on two threads or processes: its partial sum where the other reads it, the
// wait, the rest.
void split_step(Part& p, int t, int s, Barrier& meet) {
  p.P = shared_P[s & 1][t];
  forward_part(p, s);
  meet.wait();
  backward_part(p, t, shared_P[s & 1][1 - t]);
}

double epoch(const std::string& mode, Part& whole, Part* parts[2], Barrier& meet) {
  const auto start = std::chrono::steady_clock::now();
  if (mode == "one") {
    for (int s = 0; s < kSteps; ++s) {
      forward_part(whole, s);
      backward_part(whole, 0, nullptr);
    }
  } else if (mode == "turns") {
    for (int s = 0; s < kSteps; ++s) {
      forward_part(*parts[0], s);
      forward_part(*parts[1], s);
      backward_part(*parts[0], 0, parts[1]->P);
      backward_part(*parts[1], 1, parts[0]->P);
    }
  } else if (mode == "procs") {  // part 1 in a forked process: its loop runs in step with ours
    for (int s = 0; s < kSteps; ++s)
      split_step(*parts[0], 0, s, meet);
  } else {
    auto run = [&](int t) {
      for (int s = 0; s < kSteps; ++s)
        split_step(*parts[t], t, s, meet);
    };
    std::thread other(run, 1);
    run(0);
    other.join();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  if (mode != "one" && mode != "split" && mode != "turns" && mode != "procs") {
    std::fprintf(stderr, "usage: w2_units_split one|split|turns|procs\n");
    return 2;
  }
  table = map_floats(std::size_t(kRows) * kIn, false, kHugePage, true);
  W0 = map_floats(std::size_t(kIn) * kH, false);
  W1 = map_floats(std::size_t(kH) * kH1, false);
  fill(table, W0, order);
  for (int t = 0; t < 2; ++t) {
    W2[t] = map_floats(std::size_t(kH1) * kK, false);
    for (int i = 0; i < kH1 * kK; ++i)
      W2[t][i] = float(i % 7) / 100.f;
    for (int b = 0; b < 2; ++b)
      shared_P[b][t] = map_floats(std::size_t(kBatch) * kH1, true);
  }
  for (int i = 0; i < kH * kH1; ++i)
    W1[i] = float(i % 11) / 100.f;
  Part whole(0, kH), a(0, kHalf), b(kHalf, kHalf);
  Part* parts[2] = {&a, &b};
  float* A0 = map_floats(std::size_t(kBatch) * kH, false);
  float* dA0 = map_floats(std::size_t(kBatch) * kH, false);
  for (Part* p : {&whole, &a, &b}) {
    p->w0 = W0 + p->c0;
    p->lda = p->n;
    if (p != &whole && std::getenv("SHAREDA")) {  // columns of one array, as in the network
      p->A0 = A0 + p->c0;
      p->dA0 = dA0 + p->c0;
      p->lda = kH;
    }
    if (p != &whole && std::getenv("OWNW0")) {  // the part's columns, contiguous and apart
      p->w0 = map_floats(std::size_t(kIn) * p->n, false);
      p->ld0 = p->n;
      for (int i = 0; i < kIn; ++i)
        std::copy_n(W0 + i * kH + p->c0, p->n, p->w0 + i * p->n);
    }
  }
  Barrier& meet = *new (map_floats(1024, true)) Barrier;  // shared with a forked part
  meet.off = std::getenv("NOBAR") != nullptr;             // timing only: the parts no longer wait
  pid_t child = -1;
  if (mode == "procs" && (child = fork()) == 0) {
    for (int round = 0; round < 5; ++round)
      for (int s = 0; s < kSteps; ++s)
        split_step(*parts[1], 1, s, meet);
    _exit(0);
  }
  std::vector<double> times;
  for (int round = 0; round < 5; ++round)
    times.push_back(epoch(mode, whole, parts, meet));
  if (child > 0) waitpid(child, nullptr, 0);
  std::sort(times.begin(), times.end());
  std::printf("%s: best %.4f s, median %.4f s an epoch of %d steps\n", mode.c_str(), times[0],
              times[2], kSteps);
  return 0;
}
