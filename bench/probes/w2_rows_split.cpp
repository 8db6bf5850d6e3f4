// A probe, not a benchmark of bench/run: W2's first layer (784 → 128, batch 64, SGD) split by
// the batch's rows instead of by columns, through small AVX-512 kernels of the probe's own that
// need no packing (bench/RESULTS.md, sixteenth session). Each step, as in w2_layer0_split.cpp:
// gather the batch's rows of a 60000 × 784 table, Z = X·W, ∂L/∂W = Xᵀ·Z (Z standing in for
// ∂L/∂Z), W -= lr·∂L/∂W; 937 steps (an epoch), five times, each time printed.
//
//   g++ -O3 -march=native -o /tmp/w2_rows_split bench/probes/w2_rows_split.cpp -lopenblas
//   OPENBLAS_NUM_THREADS=1 /tmp/w2_rows_split blas|one|rows
//
// blas: one thread, OpenBLAS's sgemm (w2_layer0_split.cpp's `one`). one: one thread, the probe's
// kernels. rows: two threads, each its 32 rows of the batch through the whole layer (W read
// whole, nothing shared while the products run), then its columns of ∂L/∂W added up from the
// two parts and W's update over them. Needs AVX-512F. The table is on 2 MiB pages, as the
// network's.
#include <cblas.h>
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "w2_probe.hpp"

namespace {

using namespace w2probe;

float *table, *W, *Z, *partial[2], *X[2];
std::vector<int> order;
Barrier barrier;

// Z (n × 128, row-major) = X (n × 784, row-major) · W (784 × 128, column-major): dot products of
// X's rows with W's columns, 4 rows × 4 columns at a time (n a multiple of 4; 784 = 49 × 16).
void forward(const float* x, int n, float* z) {
  for (int r = 0; r < n; r += 4) {
    for (int j = 0; j < kOut; j += 4) {
      __m512 acc[4][4];
      for (auto& row : acc)
        for (auto& a : row)
          a = _mm512_setzero_ps();
      for (int i = 0; i < kIn; i += 16) {
        __m512 xv[4], wv[4];
        for (int a = 0; a < 4; ++a)
          xv[a] = _mm512_loadu_ps(x + std::size_t(r + a) * kIn + i);
        for (int b = 0; b < 4; ++b)
          wv[b] = _mm512_loadu_ps(W + std::size_t(j + b) * kIn + i);
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b)
            acc[a][b] = _mm512_fmadd_ps(xv[a], wv[b], acc[a][b]);
      }
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b)
          z[std::size_t(r + a) * kOut + j + b] = _mm512_reduce_add_ps(acc[a][b]);
    }
  }
}

// G (784 × 128, column-major) = Xᵀ·Z over n rows: 64 of G's rows × 4 columns at a time, each
// row of X broadcast against Z's.
void weight_gradient(const float* x, const float* z, int n, float* g) {
  for (int j = 0; j < kOut; j += 4) {
    int i = 0;
    for (; i + 64 <= kIn; i += 64) {
      __m512 acc[4][4];
      for (auto& row : acc)
        for (auto& a : row)
          a = _mm512_setzero_ps();
      for (int r = 0; r < n; ++r) {
        const float* xr = x + std::size_t(r) * kIn + i;
        __m512 xv[4];
        for (int v = 0; v < 4; ++v)
          xv[v] = _mm512_loadu_ps(xr + 16 * v);
        for (int b = 0; b < 4; ++b) {
          const __m512 zb = _mm512_set1_ps(1e-3f * z[std::size_t(r) * kOut + j + b]);
          for (int v = 0; v < 4; ++v)
            acc[b][v] = _mm512_fmadd_ps(xv[v], zb, acc[b][v]);
        }
      }
      for (int b = 0; b < 4; ++b)
        for (int v = 0; v < 4; ++v)
          _mm512_storeu_ps(g + std::size_t(j + b) * kIn + i + 16 * v, acc[b][v]);
    }
    for (; i < kIn; i += 16) {  // 784 = 12 × 64 + 16
      __m512 acc[4];
      for (auto& a : acc)
        a = _mm512_setzero_ps();
      for (int r = 0; r < n; ++r) {
        const __m512 xv = _mm512_loadu_ps(x + std::size_t(r) * kIn + i);
        for (int b = 0; b < 4; ++b)
          acc[b] =
              _mm512_fmadd_ps(xv, _mm512_set1_ps(1e-3f * z[std::size_t(r) * kOut + j + b]), acc[b]);
      }
      for (int b = 0; b < 4; ++b)
        _mm512_storeu_ps(g + std::size_t(j + b) * kIn + i, acc[b]);
    }
  }
}

// W's columns [j0, j1) -= lr · (the parts' gradients added up).
void update(int j0, int j1, int parts) {
  float* __restrict w = W + std::size_t(j0) * kIn;
  const float* __restrict a = partial[0] + std::size_t(j0) * kIn;
  const float* __restrict b = partial[1] + std::size_t(j0) * kIn;
  const std::size_t n = std::size_t(j1 - j0) * kIn;
  if (parts == 1) {
    for (std::size_t i = 0; i < n; ++i)
      w[i] -= kLr * a[i];
  } else {
    for (std::size_t i = 0; i < n; ++i)
      w[i] -= kLr * (a[i] + b[i]);
  }
}

double ms[2][4];  // gather, forward, weight gradient, sums and update (with the waits)

void run(int t, int parts) {
  const int r0 = kBatch * t / parts, r1 = kBatch * (t + 1) / parts, n = r1 - r0;
  const int j0 = kOut * t / parts, j1 = kOut * (t + 1) / parts;
  float* z = Z + std::size_t(r0) * kOut;
  for (int s = 0; s < kSteps; ++s) {
    auto at = std::chrono::steady_clock::now();
    auto lap = [&](int k) {
      const auto now = std::chrono::steady_clock::now();
      ms[t][k] += std::chrono::duration<double, std::milli>(now - at).count();
      at = now;
    };
    gather(table, order, s, r0, r1, 0, kIn, X[t]);
    lap(0);
    forward(X[t], n, z);
    lap(1);
    weight_gradient(X[t], z, n, partial[t]);
    lap(2);
    if (parts > 1) barrier.wait();
    update(j0, j1, parts);
    if (parts > 1) barrier.wait();
    lap(3);
  }
}

void blas(int) {
  for (int s = 0; s < kSteps; ++s) {
    gather(table, order, s, 0, kBatch, 0, kIn, X[0]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kBatch, kOut, kIn, 1, X[0], kIn, W, kIn, 0,
                Z, kOut);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kOut, kIn, kBatch, 1e-3f, Z, kOut, X[0],
                kIn, 0, partial[0], kIn);
    update(0, kOut, 1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "blas" && mode != "one" && mode != "rows") {
    std::fprintf(stderr, "usage: %s blas|one|rows\n", argv[0]);
    return 2;
  }
  table = map_floats(std::size_t(kRows) * kIn, false, kHugePage, true);
  W = map_floats(kIn * kOut, false, kHugePage);
  Z = map_floats(kBatch * kOut, false, kHugePage);
  for (int t = 0; t < 2; ++t) {
    partial[t] = map_floats(kIn * kOut, false, kHugePage);
    X[t] = map_floats(kBatch * kIn, false, kHugePage);
  }
  fill(table, W, order);
  for (int rep = 0; rep < 5; ++rep) {
    std::memset(ms, 0, sizeof ms);
    const auto t0 = std::chrono::steady_clock::now();
    if (mode == "blas") {
      pin(0);
      blas(0);
    } else if (mode == "one") {
      pin(0);
      run(0, 1);
    } else {
      std::thread other([] {
        pin(1);
        run(1, 2);
      });
      pin(0);
      run(0, 2);
      other.join();
    }
    std::printf("%s %.4f", mode.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (int t = 0; t < (mode == "rows" ? 2 : mode == "one" ? 1 : 0); ++t)
      std::printf("  part %d: %.1f %.1f %.1f %.1f", t, ms[t][0], ms[t][1], ms[t][2], ms[t][3]);
    std::printf("\n");
  }
  double sum = 0;  // the same W, up to the order of additions, whichever the mode
  for (int i = 0; i < kIn * kOut; ++i)
    sum += W[i];
  std::printf("sum of W %.9g\n", sum);
}
