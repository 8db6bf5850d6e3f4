// A probe, not a benchmark of bench/run: w2_units_split.cpp's split of W2's step by the first
// layer's units (one wait a step: the parts exchange only their partial sums of Z₁), on the
// library's own float32 kernels (src/small_products.hpp), which are what W2 runs, with the
// network's layouts: W column-major (in, out), so a part's units of the first layer are one
// contiguous block of W₀, and rows of the batch row-major. Against the network itself
// (`chainrule_bench w2 --threads 1|2`), this is the split without the network's bookkeeping:
// SGD, ReLU, the loss's gradient a stand-in (softmax's ∂L/∂Z computed from Z₂ and a label), no
// biases.
//
//   g++ -O3 -march=native -std=c++20 -Iinclude -I/usr/include/eigen3 -o /tmp/w2_units_split_own \
//       bench/probes/w2_units_split_own.cpp -Lbuild-bench -lchainrule -lopenblas -lpthread
//   /tmp/w2_units_split_own one|split|turns
//
// one: one thread, no split. split: two threads, a part each (the second started once).
// turns: both parts on one thread, one after the other. SHAREDA=1: the parts' A₀ and ∂L/∂A₀ as
// columns of one 64 × 128 array each (as the network keeps them; by default each part's own).
// Each part gathers the batch's rows with the network's own gather (detail::gather_rows, each
// row asked for ahead; since the twenty-fourth session, before which one row at a time). Prints the
// best and the median of seven epochs (937 steps of 64 rows) and, for split and turns, each part's
// TSC cycles a step in its forward half (the gather included), its wait for the other part, and its
// backward half.
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <thread>

#include "../../src/gather.hpp"
#include "../../src/small_products.hpp"
#include "w2_probe.hpp"

namespace {

using namespace w2probe;
using chainrule::detail::product_dwt;
using chainrule::detail::product_xtd;
using chainrule::detail::product_xw;
constexpr int kH = kOut, kH1 = 64, kK = 10, kHalf = kH / 2;

float *table, *W0, *W1, *W2[2];  // W0 (784 × 128), W1 (128 × 64), W2 (64 × 10): column-major
std::vector<int> order;
std::vector<chainrule::Index> rows;  // order, as the library's gather takes it
float* P[2][2];  // [step parity][part]: each part's partial sum of Z₁ (64 × 64), the other reads it
// Each part's TSC cycles over the run: forward half, wait, backward half (split and turns).
unsigned long long cycles[2][3];

struct Part {
  int c0, n;  // its first unit of layer 0, and how many
  int lda;  // A₀'s and ∂L/∂A₀'s row stride: n, or kH with SHAREDA=1 (columns of one array)
  float *X, *A0, *Z1, *Z2, *dZ2, *dW2, *dZ1, *dW1, *dA0, *dW0, *own_P;
  Part(int first, int units)
      : c0(first),
        n(units),
        X(map_floats(std::size_t(kBatch) * kIn, false)),
        A0(map_floats(std::size_t(kBatch) * units, false)),
        Z1(map_floats(std::size_t(kBatch) * kH1, false)),
        Z2(map_floats(std::size_t(kBatch) * kK, false)),
        dZ2(map_floats(std::size_t(kBatch) * kK, false)),
        dW2(map_floats(std::size_t(kH1) * kK, false)),
        dZ1(map_floats(std::size_t(kBatch) * kH1, false)),
        dW1(map_floats(std::size_t(units) * kH1, false)),
        dA0(map_floats(std::size_t(kBatch) * units, false)),
        dW0(map_floats(std::size_t(kIn) * units, false)),
        own_P(map_floats(std::size_t(kBatch) * kH1, false)),
        lda(units) {}
};

void forward_part(Part& p, int s, float* out) {
  const Eigen::Map<const chainrule::Batch<float>> all(table, kRows, kIn);
  chainrule::detail::gather_rows<float>(
      all, std::span<const chainrule::Index>(rows.data() + std::size_t(s) * kBatch, kBatch), p.X,
      kIn);
  product_xw(kBatch, p.n, kIn, p.X, kIn, W0 + std::size_t(p.c0) * kIn, kIn, p.A0, p.lda);
  for (int r = 0; r < kBatch; ++r)
    for (int i = 0; i < p.n; ++i)
      p.A0[r * p.lda + i] = p.A0[r * p.lda + i] > 0 ? p.A0[r * p.lda + i] : 0;
  product_xw(kBatch, kH1, p.n, p.A0, p.lda, W1 + p.c0, kH, out, kH1);  // W₁'s rows c_t
}

void backward_part(Part& p, int t, const float* mine, const float* other, int s) {
  for (int i = 0; i < kBatch * kH1; ++i) {
    const float z = other ? (t == 0 ? mine[i] + other[i] : other[i] + mine[i]) : mine[i];
    p.Z1[i] = z > 0 ? z : 0;  // A₁
  }
  float* w2 = W2[t];
  product_xw(kBatch, kK, kH1, p.Z1, kH1, w2, kH1, p.Z2, kK);
  for (int r = 0; r < kBatch; ++r) {  // softmax's ∂L/∂Z over the batch, for a label r·s mod 10
    float* z = p.Z2 + r * kK;
    float top = z[0], sum = 0;
    for (int k = 1; k < kK; ++k)
      top = std::max(top, z[k]);
    for (int k = 0; k < kK; ++k)
      sum += p.dZ2[r * kK + k] = std::exp(z[k] - top);
    for (int k = 0; k < kK; ++k)
      p.dZ2[r * kK + k] = (p.dZ2[r * kK + k] / sum - (k == (r * s) % kK)) / kBatch;
  }
  product_xtd(kBatch, kK, kH1, p.Z1, kH1, p.dZ2, kK, p.dW2, kH1, false);
  product_dwt(kBatch, kH1, kK, p.dZ2, kK, w2, kH1, p.dZ1, kH1);
  for (int i = 0; i < kBatch * kH1; ++i)
    p.dZ1[i] = p.Z1[i] > 0 ? p.dZ1[i] : 0;
  product_xtd(kBatch, kH1, p.n, p.A0, p.lda, p.dZ1, kH1, p.dW1, p.n, false);  // ∂L/∂W₁(c_t, :)
  product_dwt(kBatch, p.n, kH1, p.dZ1, kH1, W1 + p.c0, kH, p.dA0, p.lda);
  for (int r = 0; r < kBatch; ++r)  // ∂L/∂Z₀'s columns c_t
    for (int i = 0; i < p.n; ++i)
      p.dA0[r * p.lda + i] = p.A0[r * p.lda + i] > 0 ? p.dA0[r * p.lda + i] : 0;
  product_xtd(kBatch, p.n, kIn, p.X, kIn, p.dA0, p.lda, p.dW0, kIn, false);
  float* w0 = W0 + std::size_t(p.c0) * kIn;
  for (int i = 0; i < kIn * p.n; ++i)
    w0[i] -= kLr * p.dW0[i];
  for (int j = 0; j < kH1; ++j)
    for (int i = 0; i < p.n; ++i)
      W1[p.c0 + kH * j + i] -= kLr * p.dW1[i + p.n * j];
  for (int i = 0; i < kH1 * kK; ++i)
    w2[i] -= kLr * p.dW2[i];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  if (mode != "one" && mode != "split" && mode != "turns") {
    std::fprintf(stderr, "usage: w2_units_split_own one|split|turns\n");
    return 2;
  }
  if (!chainrule::detail::small_products_available()) {
    std::fprintf(stderr, "w2_units_split_own: this CPU has no AVX-512F\n");
    return 2;
  }
  table = map_floats(std::size_t(kRows) * kIn, false, kHugePage, true);
  W0 = map_floats(std::size_t(kIn) * kH, false);
  W1 = map_floats(std::size_t(kH) * kH1, false);
  fill(table, W0, order);
  rows.assign(order.begin(), order.end());
  for (int i = 0; i < kH * kH1; ++i)
    W1[i] = float(i % 11) / 100.f - 0.05f;
  for (int t = 0; t < 2; ++t) {
    W2[t] = map_floats(std::size_t(kH1) * kK, false);
    for (int i = 0; i < kH1 * kK; ++i)
      W2[t][i] = float(i % 7) / 100.f - 0.03f;
    for (int b = 0; b < 2; ++b)
      P[b][t] = map_floats(std::size_t(kBatch) * kH1, false);
  }
  Part whole(0, kH), a(0, kHalf), b(kHalf, kHalf);
  Part* parts[2] = {&a, &b};
  if (std::getenv("SHAREDA")) {  // the parts' A₀ and ∂L/∂A₀ as columns of one array each
    float* A0 = map_floats(std::size_t(kBatch) * kH, false);
    float* dA0 = map_floats(std::size_t(kBatch) * kH, false);
    for (Part* p : parts) {
      p->A0 = A0 + p->c0;
      p->dA0 = dA0 + p->c0;
      p->lda = kH;
    }
  }
  Barrier meet;
  constexpr int kEpochs = 7;
  std::vector<double> times;
  if (mode == "split") {  // the second thread started once, its epochs in step with ours
    std::vector<double> start(kEpochs);
    auto run = [&](int t) {
      for (int e = 0; e < kEpochs; ++e) {
        meet.wait();
        if (t == 0)
          start[std::size_t(e)] =
              std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
                  .count();
        for (int s = 0; s < kSteps; ++s) {
          const auto c0 = __rdtsc();
          forward_part(*parts[t], s, P[s & 1][t]);
          const auto c1 = __rdtsc();
          meet.wait();
          const auto c2 = __rdtsc();
          backward_part(*parts[t], t, P[s & 1][t], P[s & 1][1 - t], s);
          const auto c3 = __rdtsc();
          cycles[t][0] += c1 - c0;
          cycles[t][1] += c2 - c1;
          cycles[t][2] += c3 - c2;
        }
        meet.wait();
        if (t == 0)
          times.push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
                  .count() -
              start[std::size_t(e)]);
      }
    };
    std::thread other(run, 1);
    run(0);
    other.join();
  } else {
    for (int e = 0; e < kEpochs; ++e) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < kSteps; ++s) {
        if (mode == "one") {
          forward_part(whole, s, whole.own_P);
          backward_part(whole, 0, whole.own_P, nullptr, s);
        } else {
          const auto c0 = __rdtsc();
          forward_part(a, s, a.own_P);
          const auto c1 = __rdtsc();
          forward_part(b, s, b.own_P);
          const auto c2 = __rdtsc();
          backward_part(a, 0, a.own_P, b.own_P, s);
          const auto c3 = __rdtsc();
          backward_part(b, 1, b.own_P, a.own_P, s);
          const auto c4 = __rdtsc();
          cycles[0][0] += c1 - c0;
          cycles[1][0] += c2 - c1;
          cycles[0][2] += c3 - c2;
          cycles[1][2] += c4 - c3;
        }
      }
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(times.begin(), times.end());
  std::printf("%s: best %.4f s, median %.4f s an epoch of %d steps\n", mode.c_str(), times[0],
              times[kEpochs / 2], kSteps);
  if (mode != "one")
    for (int t = 0; t < 2; ++t)
      std::printf(
          "  part %d, thousands of TSC cycles a step: forward %.1f, wait %.1f, backward %.1f\n", t,
          double(cycles[t][0]) / (kEpochs * kSteps) / 1e3,
          double(cycles[t][1]) / (kEpochs * kSteps) / 1e3,
          double(cycles[t][2]) / (kEpochs * kSteps) / 1e3);
  return 0;
}
