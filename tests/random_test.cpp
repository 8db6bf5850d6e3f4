#include "chainrule/random.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace chainrule {
namespace {

TEST(Rng, SameSeedSameSequence) {
  Rng a(123), b(123), c(124);
  for (int i = 0; i < 100; ++i) {
    const double x = a.normal();
    EXPECT_EQ(x, b.normal());
    EXPECT_NE(x, c.normal());
  }
}

TEST(Rng, UniformUsesTheTop53BitsOfMt19937_64) {
  // The C++ standard fixes mt19937_64's output: with the default seed 5489, the first value is
  // 14514284786278117030.
  Rng rng(5489);
  EXPECT_EQ(rng.uniform(), double(14514284786278117030ULL >> 11) * 0x1.0p-53);
}

TEST(Rng, NormalHasMeanZeroAndVarianceOne) {
  Rng rng(9);
  const int n = 200000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng.normal();
    sum += x;
    sq += x * x;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // Standard errors: 1/sqrt(n) ≈ 0.0022 for the mean, sqrt(2/n) ≈ 0.0032 for the variance.
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(var, 1.0, 0.015);
}

TEST(Rng, BelowIsInRangeAndUniform) {
  Rng rng(4);
  std::vector<int> counts(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    const auto k = rng.below(7);
    ASSERT_LT(k, 7u);
    ++counts[k];
  }
  double chi2 = 0;  // 6 degrees of freedom: the 99.9% quantile is 22.5
  for (int c : counts)
    chi2 += (c - n / 7.0) * (c - n / 7.0) / (n / 7.0);
  EXPECT_LT(chi2, 22.5);
}

}  // namespace
}  // namespace chainrule
