#include "chainrule/tutorial.hpp"

#include "chainrule/init.hpp"
#include "chainrule/optimizer.hpp"
#include "chainrule/random.hpp"

namespace chainrule::tutorial {

const std::array<Person, 4>& people() {
  static const std::array<Person, 4> rows{{
      {"youge", -2, 5, 1},
      {"share", -5, -2, 1},
      {"naive", -23, -11, 0},
      {"beyes", 30, 8, 0},
  }};
  return rows;
}

const std::array<Person, 2>& newcomers() {
  static const std::array<Person, 2> rows{{{"Emily", -7, -3, 1}, {"Frank", 20, 2, 0}}};
  return rows;
}

NetworkSpec spec() {
  return {.inputs = 2,
          .layers = {{2, Activation::sigmoid}, {1, Activation::sigmoid}},
          .loss = Loss::mse};
}

Batch<double> inputs() {
  Batch<double> X(4, 2);
  for (Index n = 0; n < 4; ++n)
    X.row(n) << people()[n].weight, people()[n].height;
  return X;
}

Batch<double> targets() {
  Batch<double> Y(4, 1);
  for (Index n = 0; n < 4; ++n)
    Y(n, 0) = people()[n].gender;
  return Y;
}

double dataset_loss(Network<double>& net) {
  net.forward(inputs());
  return net.loss(targets());
}

Result train(const Options& options, const std::function<void(int, double)>& on_report) {
  Network<double> net(spec());
  Rng rng(options.seed);
  initialize(net, Init::normal, rng);
  Sgd<double> sgd({.lr = options.lr});

  const Batch<double> X = inputs(), Y = targets();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (Index n = 0; n < X.rows(); ++n) {  // per-sample SGD: a batch of one, in table order
      net.zero_grad();
      net.forward(X.row(n));
      net.backward(Y.row(n));
      sgd.step(net.params(), net.grads());
    }
    if (on_report && options.report_every > 0 && epoch % options.report_every == 0)
      on_report(epoch, dataset_loss(net));
  }
  const double final_loss = dataset_loss(net);
  return {std::move(net), final_loss};
}

}  // namespace chainrule::tutorial
