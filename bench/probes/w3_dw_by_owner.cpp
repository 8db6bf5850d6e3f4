// Probe for issue 12: W3's step on 2 ranks with each weight gradient computed by its owner.
//
// A (the library's design): each rank computes the weight gradient of its rows for every
// parameter into a buffer of its own; after the pass each rank adds both ranks' values of its
// block (half the flat buffer) and updates it: a pass over 7.1 MiB that reads the other core's
// half.
// B: each rank owns half of every layer's columns (output units) and computes them over BOTH
// ranks' rows, reading the other rank's layer inputs X and ∂L/∂Z (written there by its own
// pass), as two products, the second added to the first. No sum pass, one gradient buffer.
// C: as B, but the columns a rank computes follow A's blocks (a column goes to the rank whose
// half of the flat buffer holds its first weight), then a barrier, A's updates and a barrier.
// D: two halves with no exchange at all (each thread its own network, batch 256, a whole update):
// what both cores give at once.
// B and C give A's bits here (K = 256 rows per rank fits OpenBLAS's K block; the library's own
// small-layer kernels add into C element by element and would not: a second product must be
// made apart and added, or the rows of all ranks must lie in one matrix, as the library version
// built in the twenty-sixth session did).
//
// Measured (twenty-sixth session, AMD EPYC, the cores 140-510 ns apart): B 1.0-4.2% faster than
// A in a round (median of 12-30 rounds), C 0.5-3.6%; per rank, B's weight-gradient products
// cost 0.15 ms a step more than D's (the other core's rows), its update 0.3 ms more (the
// parameters' lines read by the other core), and its waits were the ranks' imbalance (core 1
// 3-4% slower). The library version (Network::share_pass, not kept: docs/distributed.md) was
// slower than A in every pair: the batch's matrices it shares (5 MB a step for W3 at 256 rows a
// rank, written each step where the other core read them the step before) cost the forward and
// backward passes 0.7-2 ms a step, more than the 0.55-1.7 ms of sums it saved; this probe's A,
// whose sums are a plain loop and whose update stores where the other core has read, is slower
// than the library's.
//
//   g++ -O3 -march=native -std=c++20 -DEIGEN_USE_BLAS -I/usr/include/eigen3 -pthread \
//       -o /tmp/w3_dw_by_owner bench/probes/w3_dw_by_owner.cpp -lopenblas
//   env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1 /tmp/w3_dw_by_owner [rounds]
#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "w2_probe.hpp"

using Rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Cols = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using RowsMap = Eigen::Map<Rows>;
using ColsMap = Eigen::Map<Cols>;
using Vec = Eigen::Map<Eigen::RowVectorXf>;

constexpr int kL = 3, kBatch = 512, kTable = 8192;
constexpr int kIn[kL] = {784, 1024, 1024}, kOut[kL] = {1024, 1024, 10};
constexpr float kLr = 1e-4f, kMomentum = 0.9f;

struct Net {
  std::size_t off[kL], n = 0;
  float *P, *V;  // parameters and momentum, shared
  Net() {
    for (int l = 0; l < kL; ++l) {
      off[l] = n;
      n += std::size_t(kIn[l]) * kOut[l] + kOut[l];
    }
    P = w2probe::map_floats(n, false);
    V = w2probe::map_floats(n, false);
    std::mt19937 g(3);
    std::normal_distribution<float> d(0.f, 0.03f);
    for (std::size_t i = 0; i < n; ++i)
      P[i] = d(g);
  }
  ColsMap W(float* base, int l) const { return ColsMap(base + off[l], kIn[l], kOut[l]); }
  Vec b(float* base, int l) const {
    return Vec(base + off[l] + std::size_t(kIn[l]) * kOut[l], kOut[l]);
  }
};

// One rank's (or the one process's) rows: the input, each layer's activations and ∂L/∂Z.
struct Part {
  int rows;
  float* X;
  float *A[kL], *dZ[kL], *Y;
  explicit Part(int r) : rows(r) {
    X = w2probe::map_floats(std::size_t(r) * kIn[0], false);
    for (int l = 0; l < kL; ++l) {
      A[l] = w2probe::map_floats(std::size_t(r) * kOut[l], false);
      dZ[l] = w2probe::map_floats(std::size_t(r) * kOut[l], false);
    }
    Y = w2probe::map_floats(std::size_t(r) * kOut[kL - 1], false);
  }
  RowsMap in(int l) const {
    return l == 0 ? RowsMap(X, rows, kIn[0]) : RowsMap(A[l - 1], rows, kIn[l]);
  }
  RowsMap a(int l) const { return RowsMap(A[l], rows, kOut[l]); }
  RowsMap dz(int l) const { return RowsMap(dZ[l], rows, kOut[l]); }
};

// Time in each phase, by design (1: B, 3: D), rank and phase: forward, ∂L/∂Z path, waits for the
// other's ∂L/∂Z, dW from own rows, dW from the other's rows, update, final barrier.
double ph[4][2][7];
const char* kPhase[7] = {"forward",       "dZ path", "waits",  "dW own rows",
                         "dW other rows", "update",  "barrier"};
struct Lap {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
  void operator()(double* to) {
    const auto now = std::chrono::steady_clock::now();
    *to += std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
  }
};

std::vector<float> table;
std::vector<int> order;

void gather(Part& p, int step, int first) {
  for (int i = 0; i < p.rows; ++i)
    std::memcpy(p.X + std::size_t(i) * kIn[0],
                table.data() + std::size_t(order[(step * kBatch + first + i) % kTable]) * kIn[0],
                kIn[0] * sizeof(float));
}

void forward(const Net& net, Part& p) {
  for (int l = 0; l < kL; ++l) {
    auto A = p.a(l);
    A.noalias() = p.in(l)*net.W(net.P, l);
    A.rowwise() += net.b(net.P, l);
    if (l + 1 < kL) A = A.cwiseMax(0.f);
  }
  p.dz(kL - 1) = (p.a(kL - 1) - RowsMap(p.Y, p.rows, kOut[kL - 1])) / float(kBatch);
}

// ∂L/∂Z of layer l - 1 from layer l's (∂L/∂A, then ReLU's derivative).
void backward_input(const Net& net, Part& p, int l) {
  auto dX = p.dz(l - 1);
  dX.noalias() = p.dz(l) * net.W(net.P, l).transpose();
  dX = dX.cwiseProduct((p.a(l - 1).array() > 0.f).cast<float>().matrix());
}

void update(const Net& net, float* G, std::size_t i0, std::size_t i1) {
  for (std::size_t i = i0; i < i1; ++i) {
    net.V[i] = kMomentum * net.V[i] + G[i];
    net.P[i] -= kLr * net.V[i];
  }
}

// One process, all the batch's rows.
void step_one(const Net& net, Part& p, float* G, int step, double* t = nullptr) {
  double scratch[7] = {};
  if (!t) t = scratch;
  Lap lap;
  gather(p, step, 0);
  forward(net, p);
  lap(&t[0]);
  for (int l = kL; l-- > 0;) {
    net.W(G, l).noalias() = p.in(l).transpose() * p.dz(l);
    net.b(G, l) = p.dz(l).colwise().sum();
    lap(&t[3]);
    if (l > 0) backward_input(net, p, l);
    lap(&t[1]);
  }
  update(net, G, 0, net.n);
  lap(&t[5]);
}

struct Shared {
  w2probe::Barrier barrier;
  std::atomic<int> ready[kL][2];  // the step whose ∂L/∂Z rank r has for layer l
  double wait_ms[2][kL] = {};     // time rank r waited for the other's ∂L/∂Z of layer l
};

// Design A: every rank's gradient of its rows in its own buffer, then block sums and updates.
void step_a(const Net& net, Part* parts, float** G, Shared& s, int r, int step) {
  Part& p = parts[r];
  gather(p, step, r * p.rows);
  forward(net, p);
  for (int l = kL; l-- > 0;) {
    net.W(G[r], l).noalias() = p.in(l).transpose() * p.dz(l);
    net.b(G[r], l) = p.dz(l).colwise().sum();
    if (l > 0) backward_input(net, p, l);
  }
  s.barrier.wait();
  const std::size_t i0 = net.n * r / 2, i1 = net.n * (r + 1) / 2;
  for (std::size_t i = i0; i < i1; ++i)
    G[r][i] = G[0][i] + G[1][i];
  update(net, G[r], i0, i1);
  s.barrier.wait();
}

// Columns [j0, j0 + n) of layer l's gradient from part src's rows: written (the first part) or
// added (the next), as B and C compute them.
void columns_from(const Net& net, const Part& src, float* G, int l, int j0, int n, bool first) {
  auto gW = net.W(G, l).middleCols(j0, n);
  auto gb = net.b(G, l).segment(j0, n);
  if (first) {
    gW.noalias() = src.in(l).transpose() * src.dz(l).middleCols(j0, n);
    gb = src.dz(l).middleCols(j0, n).colwise().sum();
  } else {
    gW.noalias() += src.in(l).transpose() * src.dz(l).middleCols(j0, n);
    gb += src.dz(l).middleCols(j0, n).colwise().sum();
  }
}

// Design B: each rank's columns of every layer's gradient over both ranks' rows, in one buffer.
void step_b(const Net& net, Part* parts, float* G, Shared& s, int r, int step) {
  Part& p = parts[r];
  const int o = 1 - r;
  double* t = ph[1][r];
  Lap lap;
  gather(p, step, r * p.rows);
  forward(net, p);
  lap(&t[0]);
  s.ready[kL - 1][r].store(step, std::memory_order_release);
  for (int l = kL; l-- > 0;) {
    if (l > 0) {
      backward_input(net, p, l);
      s.ready[l - 1][r].store(step, std::memory_order_release);
      lap(&t[1]);
    }
    const auto w0 = std::chrono::steady_clock::now();
    while (s.ready[l][o].load(std::memory_order_acquire) != step)
      __builtin_ia32_pause();
    s.wait_ms[r][l] +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
    lap(&t[2]);
    const int j0 = kOut[l] * r / 2, n = kOut[l] * (r + 1) / 2 - j0;
    columns_from(net, parts[0], G, l, j0, n, true);
    lap(&t[r == 0 ? 3 : 4]);
    columns_from(net, parts[1], G, l, j0, n, false);
    lap(&t[r == 1 ? 3 : 4]);
  }
  for (int l = 0; l < kL; ++l) {
    const std::size_t j0 = std::size_t(kOut[l]) * r / 2, j1 = std::size_t(kOut[l]) * (r + 1) / 2;
    const std::size_t w = net.off[l], b = w + std::size_t(kIn[l]) * kOut[l];
    update(net, G, w + j0 * kIn[l], w + j1 * kIn[l]);
    update(net, G, b + j0, b + j1);
  }
  lap(&t[5]);
  s.barrier.wait();
  lap(&t[6]);
}

// Design C: the columns each rank computes (over both ranks' rows) follow the flat buffer's
// halves, the blocks of A's sums and updates: a column is computed by the rank whose block holds
// its first weight. Then, as in A, a barrier, each rank's update of its half, and a barrier.
void step_c(const Net& net, Part* parts, float* G, Shared& s, int r, int step) {
  Part& p = parts[r];
  const int o = 1 - r;
  gather(p, step, r * p.rows);
  forward(net, p);
  s.ready[kL - 1][r].store(step, std::memory_order_release);
  const std::size_t i0 = net.n * r / 2, i1 = net.n * (r + 1) / 2;
  for (int l = kL; l-- > 0;) {
    if (l > 0) {
      backward_input(net, p, l);
      s.ready[l - 1][r].store(step, std::memory_order_release);
    }
    // Columns j with off + j·in in [i0, i1).
    auto first_col = [&](std::size_t i) {
      if (i <= net.off[l]) return 0;
      return int(std::min<std::size_t>(kOut[l], (i - net.off[l] + kIn[l] - 1) / kIn[l]));
    };
    const int j0 = first_col(i0), j1 = first_col(i1), n = j1 - j0;
    if (n <= 0) continue;
    while (s.ready[l][o].load(std::memory_order_acquire) != step)
      __builtin_ia32_pause();
    columns_from(net, parts[0], G, l, j0, n, true);
    columns_from(net, parts[1], G, l, j0, n, false);
  }
  s.barrier.wait();
  update(net, G, i0, i1);
  s.barrier.wait();
}

template <class F>
double run_pair(F&& step2, int steps) {
  double ms = 0;
  auto body = [&](int r) {
    w2probe::pin(r);
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s)
      step2(r, s);
    if (r == 0)
      ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
          steps;
  };
  std::thread t1(body, 1);
  body(0);
  t1.join();
  return ms;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15, steps = 40;
  std::mt19937 g(1);
  table.resize(std::size_t(kTable) * kIn[0]);
  for (auto& v : table)
    v = float(g() % 256) / 255.f;
  order.resize(kTable);
  for (int i = 0; i < kTable; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), g);

  Net one, two_a, two_b, two_c, apart[2];
  Part whole(kBatch), halves_a[2] = {Part(kBatch / 2), Part(kBatch / 2)},
                      halves_b[2] = {Part(kBatch / 2), Part(kBatch / 2)},
                      halves_c[2] = {Part(kBatch / 2), Part(kBatch / 2)},
                      halves_d[2] = {Part(kBatch / 2), Part(kBatch / 2)};
  float* G1 = w2probe::map_floats(one.n, false);
  float* GA[2] = {w2probe::map_floats(one.n, false), w2probe::map_floats(one.n, false)};
  float* GB = w2probe::map_floats(one.n, false);
  float* GC = w2probe::map_floats(one.n, false);
  float* GD[2] = {w2probe::map_floats(one.n, false), w2probe::map_floats(one.n, false)};
  Shared sa, sb, sc;
  for (int l = 0; l < kL; ++l)
    for (int r = 0; r < 2; ++r)
      sb.ready[l][r] = sc.ready[l][r] = -1;

  // The same model from both designs after a few steps (the same bits expected).
  {
    for (int s = 0; s < 5; ++s) {
      run_pair([&](int r, int) { step_a(two_a, halves_a, GA, sa, r, s); }, 1);
      run_pair([&](int r, int) { step_b(two_b, halves_b, GB, sb, r, s); }, 1);
      run_pair([&](int r, int) { step_c(two_c, halves_c, GC, sc, r, s); }, 1);
    }
    std::size_t differ = 0;
    for (std::size_t i = 0; i < one.n; ++i)
      differ += std::memcmp(&two_a.P[i], &two_b.P[i], sizeof(float)) != 0 ||
                std::memcmp(&two_a.P[i], &two_c.P[i], sizeof(float)) != 0;
    std::printf("after 5 steps, parameters whose bits differ between A and B or C: %zu of %zu\n",
                differ, one.n);
    // The timed rounds' figures only.
    std::memset(ph, 0, sizeof ph);
    std::memset(sb.wait_ms, 0, sizeof sb.wait_ms);
  }

  std::vector<double> t1, ta, tb, tc, td, ratio, ratio_c;
  int base = 1000;
  for (int round = 0; round < rounds; ++round, base += steps) {
    {
      double ms = 0;
      std::thread t([&] {
        w2probe::pin(0);
        const auto t0 = std::chrono::steady_clock::now();
        for (int s = 0; s < steps; ++s)
          step_one(one, whole, G1, base + s);
        ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                 .count() /
             steps;
      });
      t.join();
      t1.push_back(ms);
    }
    auto a = [&] {
      ta.push_back(
          run_pair([&](int r, int s) { step_a(two_a, halves_a, GA, sa, r, base + s); }, steps));
    };
    auto b = [&] {
      tb.push_back(
          run_pair([&](int r, int s) { step_b(two_b, halves_b, GB, sb, r, base + s); }, steps));
    };
    auto d = [&] {
      td.push_back(run_pair(
          [&](int r, int s) { step_one(apart[r], halves_d[r], GD[r], base + s, ph[3][r]); },
          steps));
    };
    auto c = [&] {
      tc.push_back(
          run_pair([&](int r, int s) { step_c(two_c, halves_c, GC, sc, r, base + s); }, steps));
    };
    if (round % 2) {
      d();
      c();
      b();
      a();
    } else {
      a();
      b();
      c();
      d();
    }
    ratio.push_back(ta.back() / tb.back());
    ratio_c.push_back(ta.back() / tc.back());
    std::printf(
        "round %2d: one process %6.2f ms a step, A %6.2f (%.3fx), B %6.2f (%.3fx), C %6.2f "
        "(%.3fx)\n",
        round, t1.back(), ta.back(), t1.back() / ta.back(), tb.back(), t1.back() / tb.back(),
        tc.back(), t1.back() / tc.back());
    std::fflush(stdout);
  }
  for (int r = 0; r < 2; ++r)
    std::printf(
        "B, rank %d waited for the other's dZ: layer 2 %.3f, layer 1 %.3f, layer 0 %.3f ms a "
        "step\n",
        r, sb.wait_ms[r][2] / (rounds * steps), sb.wait_ms[r][1] / (rounds * steps),
        sb.wait_ms[r][0] / (rounds * steps));
  for (int d : {1, 3})
    for (int r = 0; r < 2; ++r) {
      std::printf("%s rank %d:", d == 1 ? "B" : "D", r);
      for (int k = 0; k < 7; ++k)
        std::printf(" %s %.3f", kPhase[k], ph[d][r][k] / (rounds * steps));
      std::printf(" ms a step\n");
    }
  auto med = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::printf(
      "medians: one process %.2f ms, A %.2f ms (%.3fx), B %.2f ms (%.3fx); A/B in a round %.3f\n",
      med(t1), med(ta), med(t1) / med(ta), med(tb), med(t1) / med(tb), med(ratio));
  std::printf(
      "D (two halves apart, no exchange, each a whole update; rank 0's time) %.2f ms (%.3fx)\n",
      med(td), med(t1) / med(td));
  std::printf("C %.2f ms (%.3fx); A/C in a round %.3f\n", med(tc), med(t1) / med(tc), med(ratio_c));
}
