#include "chainrule/activation.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include <cmath>

#include "chainrule/error.hpp"

namespace chainrule {
namespace {

const Activation kElementwise[] = {Activation::identity, Activation::sigmoid, Activation::tanh,
                                   Activation::relu, Activation::leaky_relu};

TEST(Activation, KnownValues) {
  // Hand values: σ(0) = 1/2, σ(3) = 1/(1 + e^-3), tanh(1), relu and leaky_relu by definition.
  EXPECT_EQ(scalar::activate(Activation::sigmoid, 0.0), 0.5);
  EXPECT_NEAR(scalar::activate(Activation::sigmoid, 3.0), 0.9525741268224334, 1e-15);
  EXPECT_NEAR(scalar::activate(Activation::sigmoid, -3.0), 1 - 0.9525741268224334, 1e-15);
  EXPECT_NEAR(scalar::activate(Activation::tanh, 1.0), 0.7615941559557649, 1e-15);
  EXPECT_EQ(scalar::activate(Activation::relu, -2.0), 0.0);
  EXPECT_EQ(scalar::activate(Activation::relu, 2.5), 2.5);
  EXPECT_DOUBLE_EQ(scalar::activate(Activation::leaky_relu, -2.0), -0.02);
  EXPECT_EQ(scalar::activate(Activation::identity, -7.25), -7.25);
}

TEST(Activation, DerivativeMatchesCentralDifference) {
  const double h = 1e-6;
  for (Activation act : kElementwise)
    for (double z : {-3.7, -1.2, -0.3, 0.4, 1.1, 2.9}) {
      const double fd = (scalar::activate(act, z + h) - scalar::activate(act, z - h)) / (2 * h);
      const double d = scalar::derivative_from_output(act, scalar::activate(act, z));
      EXPECT_NEAR(d, fd, 1e-8 * std::max(1.0, std::abs(fd))) << to_string(act) << " z=" << z;
    }
}

TEST(Activation, BatchMatchesScalar) {
  Batch<double> Z(2, 3), A;
  Z << -1, 0.5, 2, 3, -4, 0.25;
  for (Activation act : kElementwise) {
    activate(act, Z, A);
    for (Index i = 0; i < Z.size(); ++i)
      EXPECT_EQ(A.data()[i], scalar::activate(act, Z.data()[i])) << to_string(act);
  }
}

TEST(Activation, SoftmaxRowsAndJacobian) {
  Batch<double> Z(2, 3), A, dA(2, 3), dZ;
  Z << 1, 2, 3, -1, 0, 5;
  dA << 0.3, -0.2, 0.7, 1.0, -0.5, 0.25;
  activate(Activation::softmax, Z, A);
  // Row 0 by hand: e^1, e^2, e^3 over their sum.
  const double s = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(A(0, 0), std::exp(1.0) / s, 1e-15);
  EXPECT_NEAR(A(0, 2), std::exp(3.0) / s, 1e-15);
  EXPECT_NEAR(A.row(1).sum(), 1.0, 1e-15);

  // dZ against the central difference of f(Z) = Σ dA ⊙ softmax(Z).
  activation_backward(Activation::softmax, A, dA, dZ);
  const double h = 1e-6;
  for (Index n = 0; n < 2; ++n)
    for (Index k = 0; k < 3; ++k) {
      Batch<double> Zp = Z, Zm = Z, Ap, Am;
      Zp(n, k) += h;
      Zm(n, k) -= h;
      activate(Activation::softmax, Zp, Ap);
      activate(Activation::softmax, Zm, Am);
      const double fd = (dA.cwiseProduct(Ap).sum() - dA.cwiseProduct(Am).sum()) / (2 * h);
      EXPECT_NEAR(dZ(n, k), fd, 1e-9);
    }
  EXPECT_GT(dZ.cwiseAbs().maxCoeff(), 1e-3);  // not a trivially zero gradient
}

TEST(Activation, StableForHugeInputs) {
  Batch<double> Z(1, 4), A, dZ;
  Z << -1e4, 1e4, -800, 800;
  for (Activation act : {Activation::sigmoid, Activation::tanh, Activation::softmax}) {
    activate(act, Z, A);
    const Batch<double> ones = Batch<double>::Ones(1, 4);
    activation_backward(act, A, ones, dZ);
    EXPECT_TRUE(A.allFinite()) << to_string(act);
    EXPECT_TRUE(dZ.allFinite()) << to_string(act);
  }
  activate(Activation::sigmoid, Z, A);
  EXPECT_EQ(A(0, 0), 0.0);
  EXPECT_EQ(A(0, 1), 1.0);
  Batch<float> Zf = Z.cast<float>(), Af;
  activate(Activation::softmax, Zf, Af);
  EXPECT_FLOAT_EQ(Af(0, 1), 1.0f);
  EXPECT_TRUE(Af.allFinite());
}

TEST(Activation, NamesRoundTripAndUnknownNameIsAnError) {
  for (Activation act : {Activation::identity, Activation::sigmoid, Activation::tanh,
                         Activation::relu, Activation::leaky_relu, Activation::softmax})
    EXPECT_EQ(parse_activation(to_string(act)), act);
  EXPECT_THROW(parse_activation("swish"), ConfigError);
}

// The vectorized forms (relu, leaky_relu, identity; relu in the widest instruction set the CPU
// has) give the scalar forms' values bit for bit, zeros, signed zeros and NaN included, forward and
// backward (also in place, as the network runs it), in float and double, over a length that
// leaves a remainder after every vector width.
template <class T>
void vectorized_forms_equal_scalar_ones() {
  const T special[] = {T(1.5),  T(-2),    T(0.0), T(-0.0), T(1e-30),    T(-1e-30),    T(3),  T(-7),
                       T(1e30), T(-1e30), T(0.5), T(-0.5), T(INFINITY), T(-INFINITY), T(NAN)};
  Batch<T> Z(3, 37), dA(3, 37);
  for (Index i = 0; i < Z.size(); ++i) {
    Z.data()[i] = special[std::size_t(i) % std::size(special)] * T(1 + i % 3);
    dA.data()[i] = special[std::size_t(i * 7 + 3) % std::size(special)];
  }
  for (const Activation act : {Activation::relu, Activation::leaky_relu, Activation::identity}) {
    Batch<T> A, dZ, in_place = dA;
    activate(act, Z, A);
    activation_backward(act, A, dA, dZ);
    activation_backward(act, A, in_place, in_place);
    // And over a block of columns 5..29 of every row (rows 37 apart), leaving the rest alone.
    Batch<T> A_block = Batch<T>::Constant(3, 37, T(7)), dZ_block = dA;
    activate_block(act, Z.data() + 5, A_block.data() + 5, 3, 25, 37);
    activation_backward_block(act, A.data() + 5, dA.data() + 5, dZ_block.data() + 5, 3, 25, 37);
    for (Index r = 0; r < 3; ++r)
      for (Index c = 0; c < 37; ++c) {
        const bool in = c >= 5 && c < 30;
        const T a = in ? detail::activate_one(act, Z(r, c)) : T(7);
        const T dz = in ? dA(r, c) * detail::derivative_one(act, A(r, c)) : dA(r, c);
        EXPECT_EQ(std::memcmp(&A_block(r, c), &a, sizeof a), 0) << to_string(act) << r << c;
        EXPECT_EQ(std::memcmp(&dZ_block(r, c), &dz, sizeof dz), 0) << to_string(act) << r << c;
      }
    for (Index i = 0; i < Z.size(); ++i) {
      const T a = detail::activate_one(act, Z.data()[i]);
      const T dz = dA.data()[i] * detail::derivative_one(act, a);
      EXPECT_EQ(std::memcmp(&A.data()[i], &a, sizeof a), 0) << to_string(act) << " " << i;
      EXPECT_EQ(std::memcmp(&dZ.data()[i], &dz, sizeof dz), 0) << to_string(act) << " " << i;
      EXPECT_EQ(std::memcmp(&in_place.data()[i], &dz, sizeof dz), 0) << to_string(act) << " " << i;
    }
  }
}

TEST(Activation, VectorizedFormsEqualTheScalarOnes) {
  vectorized_forms_equal_scalar_ones<float>();
  vectorized_forms_equal_scalar_ones<double>();
}

}  // namespace
}  // namespace chainrule
