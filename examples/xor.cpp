// The smallest useful program against the library: learn XOR with a 2-4-1 network, tanh hidden
// layer, sigmoid output fused with binary cross-entropy, full-batch SGD with momentum.
// Exits 0 when all four cases are classified correctly (tests run it).
#include <chainrule/init.hpp>
#include <chainrule/network.hpp>
#include <chainrule/optimizer.hpp>
#include <cstdio>

int main() {
  using namespace chainrule;
  Batch<double> X(4, 2), Y(4, 1);
  X << 0, 0, 0, 1, 1, 0, 1, 1;
  Y << 0, 1, 1, 0;

  Network<double> net({.inputs = 2,
                       .layers = {{4, Activation::tanh}, {1, Activation::sigmoid}},
                       .loss = Loss::binary_cross_entropy});
  Rng rng(1);
  initialize(net, Init::xavier, rng);
  Sgd<double> sgd({.lr = 0.5, .momentum = 0.9});
  for (int epoch = 0; epoch < 500; ++epoch) {
    net.zero_grad();
    net.forward(X);  // (4, 1)
    net.backward(Y);
    sgd.step(net.params(), net.grads());
  }

  const Batch<double> p = net.forward(X);
  std::printf("loss %.6f\n", net.loss(Y));
  int correct = 0;
  for (Eigen::Index n = 0; n < 4; ++n) {
    std::printf("%g xor %g -> %.4f\n", X(n, 0), X(n, 1), p(n, 0));
    correct += (p(n, 0) >= 0.5) == (Y(n, 0) == 1);
  }
  return correct == 4 ? 0 : 1;
}
