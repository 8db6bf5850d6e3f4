// The float32 products of small layers on the library's own kernels (src/small_products.hpp):
// each against a float64 sum of the same terms within float32's rounding bound, at and around
// the kernels' block sizes, with strides wider than the matrices and the memory beside them left
// alone; every part of a product (its columns, its rows) bit for bit the whole product's part;
// and so a network whose products they all compute gives the same bits on one thread and on two.
#include "../src/small_products.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "chainrule/dense.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/init.hpp"
#include "chainrule/network.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"
#include "chainrule/trainer.hpp"

namespace chainrule {
namespace {

using detail::small_products_available;

#define SKIP_WITHOUT_AVX512() \
  if (!small_products_available()) GTEST_SKIP() << "this CPU has no AVX-512"

constexpr float kGuard = 12345.0F;  // what the memory beside a result holds before and after

std::vector<float> random_floats(std::size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float& x : v)
    x = d(gen);
  return v;
}

// |computed − exact| within K·2⁻²⁴·Σ|terms| (a sum of K rounded products, float32 rounding),
// with the exact sum and Σ|terms| in float64.
void expect_close(float got, double exact, double abs_sum, Index K, const char* what) {
  EXPECT_LE(std::abs(double(got) - exact), (double(K) + 1) * 0x1p-24 * abs_sum + 1e-30) << what;
}

// Sizes at and around the blocks: 4 rows × 6 columns (the dot kernel), 6 outputs × 64 values
// (the sum kernel), 16 lanes.
const Index kRows[] = {1, 3, 4, 5, 6, 7, 13, 64};
const Index kCols[] = {1, 5, 6, 7, 12, 13};
const Index kDepth[] = {1, 15, 16, 17, 63, 64, 65, 130, 784};

TEST(SmallProducts, XTimesWMatchesAFloat64Sum) {
  SKIP_WITHOUT_AVX512();
  std::mt19937 gen(1);
  for (const Index rows : kRows)
    for (const Index n : kCols)
      for (const Index K : kDepth) {
        const Index ldx = K + 3, ldw = K + 1, ldz = n + 2;
        const auto x = random_floats(std::size_t(rows * ldx), gen);
        const auto w = random_floats(std::size_t(n * ldw), gen);
        std::vector<float> z(std::size_t(rows * ldz), kGuard);
        detail::product_xw(rows, n, K, x.data(), ldx, w.data(), ldw, z.data(), ldz);
        for (Index r = 0; r < rows; ++r)
          for (Index j = 0; j < ldz; ++j) {
            const float got = z[std::size_t(r * ldz + j)];
            if (j >= n) {
              ASSERT_EQ(got, kGuard) << rows << "×" << K << "·" << K << "×" << n;
              continue;
            }
            double s = 0, a = 0;
            for (Index k = 0; k < K; ++k) {
              const double t = double(x[std::size_t(r * ldx + k)]) * w[std::size_t(j * ldw + k)];
              s += t, a += std::abs(t);
            }
            expect_close(got, s, a, K, "X·W");
          }
      }
}

TEST(SmallProducts, XTransposedTimesDMatchesAFloat64Sum) {
  SKIP_WITHOUT_AVX512();
  std::mt19937 gen(2);
  for (const Index rows : kRows)
    for (const Index n : kCols)
      for (const Index K : kDepth)
        for (const bool accumulate : {false, true}) {
          const Index ldx = K + 3, ldd = n + 1, ldg = K + 2;
          const auto x = random_floats(std::size_t(rows * ldx), gen);
          const auto d = random_floats(std::size_t(rows * ldd), gen);
          std::vector<float> g = random_floats(std::size_t(n * ldg), gen);
          for (Index j = 0; j < n; ++j)
            for (Index k = K; k < ldg; ++k)
              g[std::size_t(j * ldg + k)] = kGuard;
          const std::vector<float> before = g;
          detail::product_xtd(rows, n, K, x.data(), ldx, d.data(), ldd, g.data(), ldg, accumulate);
          for (Index j = 0; j < n; ++j)
            for (Index k = 0; k < ldg; ++k) {
              const std::size_t at = std::size_t(j * ldg + k);
              if (k >= K) {
                ASSERT_EQ(g[at], kGuard);
                continue;
              }
              double s = accumulate ? before[at] : 0, a = std::abs(s);
              for (Index r = 0; r < rows; ++r) {
                const double t = double(x[std::size_t(r * ldx + k)]) * d[std::size_t(r * ldd + j)];
                s += t, a += std::abs(t);
              }
              expect_close(g[at], s, a, rows + 1, "Xᵀ·D");
            }
        }
}

TEST(SmallProducts, DTimesWTransposedMatchesAFloat64Sum) {
  SKIP_WITHOUT_AVX512();
  std::mt19937 gen(3);
  for (const Index rows : kRows)
    for (const Index N : kCols)
      for (const Index m : kDepth) {
        const Index ldd = N + 1, ldw = m + 5, lde = m + 4;
        const auto d = random_floats(std::size_t(rows * ldd), gen);
        const auto w = random_floats(std::size_t(N * ldw), gen);
        std::vector<float> e(std::size_t(rows * lde), kGuard);
        detail::product_dwt(rows, m, N, d.data(), ldd, w.data(), ldw, e.data(), lde);
        for (Index r = 0; r < rows; ++r)
          for (Index k = 0; k < lde; ++k) {
            const float got = e[std::size_t(r * lde + k)];
            if (k >= m) {
              ASSERT_EQ(got, kGuard);
              continue;
            }
            double s = 0, a = 0;
            for (Index j = 0; j < N; ++j) {
              const double t = double(d[std::size_t(r * ldd + j)]) * w[std::size_t(j * ldw + k)];
              s += t, a += std::abs(t);
            }
            expect_close(got, s, a, N, "D·Wᵀ");
          }
      }
}

// W2's first layer (64 × 784 by 784 × 128): every range of columns, and of rows, of each product
// gives exactly the whole product's values there.
TEST(SmallProducts, APartOfAProductIsTheWholeProductsPartBitForBit) {
  SKIP_WITHOUT_AVX512();
  std::mt19937 gen(4);
  const Index N = 64, K = 784, M = 128;
  const auto x = random_floats(std::size_t(N * K), gen);
  const auto w = random_floats(std::size_t(K * M), gen);
  const auto d = random_floats(std::size_t(N * M), gen);
  std::vector<float> z(std::size_t(N * M)), g(std::size_t(K * M)), e(std::size_t(N * K));
  detail::product_xw(N, M, K, x.data(), K, w.data(), K, z.data(), M);
  detail::product_xtd(N, M, K, x.data(), K, d.data(), M, g.data(), K, false);
  detail::product_dwt(N, K, M, d.data(), M, w.data(), K, e.data(), K);
  for (const Index j0 : {0, 1, 5, 16, 37, 64})
    for (const Index j1 : {j0 + 1, j0 + 7, j0 + 16, j0 + 27, M}) {
      if (j1 > M || j1 <= j0) continue;
      const Index n = j1 - j0;
      std::vector<float> zp(std::size_t(N * M)), gp(std::size_t(K * M));
      detail::product_xw(N, n, K, x.data(), K, w.data() + j0 * K, K, zp.data() + j0, M);
      detail::product_xtd(N, n, K, x.data(), K, d.data() + j0, M, gp.data() + j0 * K, K, false);
      for (Index r = 0; r < N; ++r)
        for (Index j = j0; j < j1; ++j)
          ASSERT_EQ(zp[std::size_t(r * M + j)], z[std::size_t(r * M + j)]) << j0 << ".." << j1;
      for (Index j = j0; j < j1; ++j)
        for (Index k = 0; k < K; ++k)
          ASSERT_EQ(gp[std::size_t(j * K + k)], g[std::size_t(j * K + k)]) << j0 << ".." << j1;
      // ∂L/∂X's columns k0 .. k1 (W's rows) and rows r0 .. r1.
      const Index k0 = j0 * 12, k1 = std::min(K, j1 * 12 + 3);
      std::vector<float> ep(std::size_t(N * K));
      detail::product_dwt(N, k1 - k0, M, d.data(), M, w.data() + k0, K, ep.data() + k0, K);
      for (Index r = 0; r < N; ++r)
        for (Index k = k0; k < k1; ++k)
          ASSERT_EQ(ep[std::size_t(r * K + k)], e[std::size_t(r * K + k)]) << k0 << ".." << k1;
    }
  for (const Index r0 : {0, 3, 32})
    for (const Index r1 : {r0 + 1, r0 + 5, N}) {
      std::vector<float> zp(std::size_t(N * M)), ep(std::size_t(N * K));
      detail::product_xw(r1 - r0, M, K, x.data() + r0 * K, K, w.data(), K, zp.data() + r0 * M, M);
      detail::product_dwt(r1 - r0, K, M, d.data() + r0 * M, M, w.data(), K, ep.data() + r0 * K, K);
      for (Index r = r0; r < r1; ++r) {
        for (Index j = 0; j < M; ++j)
          ASSERT_EQ(zp[std::size_t(r * M + j)], z[std::size_t(r * M + j)]) << r0 << ".." << r1;
        for (Index k = 0; k < K; ++k)
          ASSERT_EQ(ep[std::size_t(r * K + k)], e[std::size_t(r * K + k)]) << r0 << ".." << r1;
      }
    }
}

// W2's network (784-128-64-10, ReLU, softmax): every product on these kernels, so a step split
// over two threads (the first layer by columns, the others by rows) computes each value as one
// thread does: the same outputs, gradients, and weights after training, bit for bit.
TEST(SmallProducts, TwoThreadsGiveOneThreadsBits) {
  SKIP_WITHOUT_AVX512();
  if (available_cores() < 2) GTEST_SKIP() << "one core: a network runs one thread";
  NetworkSpec spec{
      .inputs = 784,
      .layers = {{128, Activation::relu}, {64, Activation::relu}, {10, Activation::softmax}},
      .loss = Loss::softmax_cross_entropy};
  Rng rng(5);
  Network<float> one(spec);
  initialize(one, Init::he, rng);
  const Index rows = 640;
  Batch<float> X(rows, 784), Y = Batch<float>::Zero(rows, 10);
  for (Index i = 0; i < X.size(); ++i)
    X.data()[i] = float(rng.uniform());
  for (Index r = 0; r < rows; ++r)
    Y(r, r % 10) = 1;
  Network<float> two = one;
  two.set_threads(2);
  const Batch<float> x64 = X.topRows(64), y64 = Y.topRows(64);
  one.zero_grad();
  two.zero_grad();
  const Batch<float> out_one = one.forward(x64), out_two = two.forward(x64);
  ASSERT_TRUE((out_one.array() == out_two.array()).all());
  one.backward(y64);
  two.backward(y64);
  ASSERT_TRUE(std::equal(one.grads().begin(), one.grads().end(), two.grads().begin()));
  const std::vector<float> initial(one.params().begin(), one.params().end());
  for (Network<float>* net : {&one, &two}) {
    TrainOptions o;
    o.epochs = 2;
    o.batch = 64;
    o.optimizer = {.kind = OptimizerKind::adam, .lr = 1e-3};
    Rng shuffle(6);
    train(*net, X, Y, Batch<float>(0, 784), Batch<float>(0, 10), o, shuffle);
  }
  EXPECT_TRUE(std::equal(one.params().begin(), one.params().end(), two.params().begin()));
  EXPECT_FALSE(std::equal(initial.begin(), initial.end(), one.params().begin()));  // it trained
}

// Over many rows a layer's Z = X·W runs on a row-major copy of W (transpose_weights, then
// product_dwt): the copy exact, Z + b and ReLU within float32's bound of a float64 sum, for
// shapes at and beside the kernels' blocks; and a row's values the same bits whichever block of
// rows (of at least the threshold's) it is computed in.
TEST(SmallProducts, ForwardOverManyRowsOnATransposedCopy) {
  SKIP_WITHOUT_AVX512();
  std::mt19937 gen(6);
  struct Shape {
    Index in, out;
  };
  for (const Shape sh : {Shape{784, 128}, Shape{37, 33}, Shape{100, 64}, Shape{17, 65}}) {
    const Index rows = 520, in = sh.in, out = sh.out;
    ASSERT_TRUE(detail::transposed_forward_fits(rows, in, out));
    ASSERT_FALSE(detail::transposed_forward_fits(64, in, out));  // a training step's rows: not
    const Dense<float> layer(in, out, Activation::relu, 0);
    const auto params = random_floats(std::size_t(in * out + out), gen);
    std::vector<float> wt(std::size_t(in * out));
    detail::transpose_weights(in, out, params.data(), wt.data());
    for (Index k = 0; k < in; ++k)
      for (Index j = 0; j < out; ++j)
        ASSERT_EQ(wt[std::size_t(k * out + j)], params[std::size_t(k + in * j)]);
    const auto xs = random_floats(std::size_t(rows * in), gen);
    const Batch<float> X = Eigen::Map<const Batch<float>>(xs.data(), rows, in);
    Batch<float> Z, A, scratch;
    layer.forward(params.data(), X, Z, A, Dense<float>::Products::native, &scratch);
    ASSERT_EQ(scratch.rows(), in);  // the transposed copy was made and used
    for (Index r = 0; r < rows; ++r)
      for (Index j = 0; j < out; ++j) {
        double s = params[std::size_t(in * out + j)], a = std::abs(s);
        for (Index k = 0; k < in; ++k) {
          const double t = double(X(r, k)) * params[std::size_t(k + in * j)];
          s += t, a += std::abs(t);
        }
        expect_close(Z(r, j), s, a, in + 1, "X·W + b");
        ASSERT_EQ(A(r, j), std::max(Z(r, j), 0.0F));
      }
    Batch<float> Z2, A2;
    for (const Index r0 : {Index(0), Index(260)}) {
      layer.forward(params.data(), X.middleRows(r0, 260), Z2, A2, Dense<float>::Products::native,
                    &scratch);
      ASSERT_TRUE((Z2.array() == Z.middleRows(r0, 260).array()).all()) << in << "×" << out;
    }
  }
}

}  // namespace
}  // namespace chainrule
