// Probe for issue 12: can a rank that finishes its pass early compute part of a slower rank's
// first-layer weight gradient, with the same bits whichever rank computes it?
//
// A dense layer's weight gradient is dW = Xᵀ·dZ, (in, out), column-major (Dense::backward, the
// product handed to OpenBLAS through Eigen). Cut by columns (output units) into pieces, each
// piece dW[:, j0:j1] = Xᵀ·dZ[:, j0:j1] is a product of its own. This probe checks, for W3's first
// layer at a rank's 256 rows (784 × 1024) and its second (1024 × 1024), in float and in double:
// - whether the pieces' bytes equal the whole product's (then any rank may compute any piece
//   and the model's bytes do not depend on who did: work can move between ranks without changing
//   a bit);
// - what cutting costs: each piece packs Xᵀ again, so P pieces read X P times.
//
//   g++ -O3 -march=native -std=c++20 -DEIGEN_USE_BLAS -I/usr/include/eigen3 \
//       -o /tmp/dw_column_pieces bench/probes/dw_column_pieces.cpp -lopenblas
//   env -u OPENBLAS_CORETYPE taskset -c 0 /tmp/dw_column_pieces
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

template <class T>
using Rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Cols = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

template <class F>
double median_ms(F&& f, int reps = 41) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[std::size_t(reps / 2)];
}

template <class T>
void probe(const char* type, Eigen::Index rows, Eigen::Index in, Eigen::Index out) {
  std::mt19937_64 gen(42);
  std::normal_distribution<double> normal;
  Rows<T> X(rows, in), dZ(rows, out);
  for (Eigen::Index i = 0; i < X.size(); ++i)
    X.data()[i] = T(std::max(0.0, normal(gen)));  // a ReLU layer's output: half zeros
  for (Eigen::Index i = 0; i < dZ.size(); ++i)
    dZ.data()[i] = T(normal(gen) * 1e-3);
  Cols<T> whole(in, out), cut(in, out);
  auto all = [&] { whole.noalias() = X.transpose() * dZ; };
  all();
  const double t_all = median_ms(all);
  for (const Eigen::Index pieces : {2, 4, 8, 16, 32}) {
    auto by_pieces = [&] {
      for (Eigen::Index p = 0; p < pieces; ++p) {
        const Eigen::Index j0 = out * p / pieces, j1 = out * (p + 1) / pieces;
        cut.middleCols(j0, j1 - j0).noalias() = X.transpose() * dZ.middleCols(j0, j1 - j0);
      }
    };
    cut.setConstant(T(-1));
    by_pieces();
    const bool same =
        std::memcmp(whole.data(), cut.data(), sizeof(T) * std::size_t(whole.size())) == 0;
    const double t_cut = median_ms(by_pieces);
    std::printf(
        "%s %ld x %ld at %ld rows: %2ld pieces of %4ld columns: bytes %s the whole "
        "product's; %.3f ms against %.3f (%.2fx)\n",
        type, long(in), long(out), long(rows), long(pieces), long(out / pieces),
        same ? "equal" : "DIFFER from", t_cut, t_all, t_cut / t_all);
  }
}

int main() {
  probe<float>("float ", 256, 784, 1024);
  probe<float>("float ", 256, 1024, 1024);
  probe<double>("double", 256, 784, 1024);
  probe<double>("double", 256, 1024, 1024);
}
