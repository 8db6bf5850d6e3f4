// chainrule demo: the tutorial, exactly, in double precision.
#include <fmt/core.h>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "chainrule/tutorial.hpp"
#include "commands.hpp"

namespace chainrule::cli {

namespace {

struct DemoOptions {
  tutorial::Options train;
  int sweep = 0;
  bool exact = false;
};

double predict(Network<double>& net, double weight, double height) {
  Batch<double> x(1, 2);
  x << weight, height;
  return net.forward(x)(0, 0);
}

int run_sweep(const DemoOptions& o) {
  int converged = 0;
  for (int i = 0; i < o.sweep; ++i) {
    tutorial::Options t = o.train;
    t.seed = o.train.seed + std::uint64_t(i);
    if (tutorial::train(t).final_loss < 0.01) ++converged;
  }
  fmt::print("{} of {} seeds ({}..{}) converged (final loss < 0.01) with lr {} and {} epochs\n",
             converged, o.sweep, o.train.seed, o.train.seed + std::uint64_t(o.sweep) - 1,
             o.train.lr, o.train.epochs);
  return kOk;
}

int run_demo(const DemoOptions& o) {
  if (o.sweep > 0) return run_sweep(o);
  fmt::print(
      "chainrule demo: the tutorial's 2-2-1 sigmoid network, MSE loss, per-sample SGD\n"
      "(learning rate {}, {} epochs, weights and biases from N(0, 1) with seed {})\n\n",
      o.train.lr, o.train.epochs, o.train.seed);

  std::vector<std::pair<int, double>> reports;
  reports.reserve(std::size_t(o.train.epochs / 10 + 1));
  const auto start = std::chrono::steady_clock::now();
  tutorial::Result r =
      tutorial::train(o.train, [&](int epoch, double loss) { reports.emplace_back(epoch, loss); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  for (const auto& [epoch, loss] : reports)
    fmt::print("Epoch {} loss: {:.3f}\n", epoch, loss);
  fmt::print("\nFinal loss {:.6f} after {} epochs ({} SGD steps, trained in {:.2f} ms)\n\n",
             r.final_loss, o.train.epochs, 4 * o.train.epochs, seconds * 1e3);

  fmt::print("Predictions: probability of gender 1, label 1 when it is at least 0.5\n");
  fmt::print("  {:<6} {:>6} {:>6} {:>9} {:>6} {:>6}\n", "name", "weight", "height", "p(1)", "label",
             "true");
  int correct = 0;
  for (const auto& p : tutorial::people()) {
    const double prob = predict(r.net, p.weight, p.height);
    const int label = prob >= 0.5 ? 1 : 0;
    correct += label == int(p.gender);
    fmt::print("  {:<6} {:>6} {:>6} {:>9.6f} {:>6} {:>6}{}\n", p.name, p.weight, p.height, prob,
               label, int(p.gender), label == int(p.gender) ? "" : "  (wrong)");
  }
  for (const auto& p : tutorial::newcomers()) {
    const double prob = predict(r.net, p.weight, p.height);
    fmt::print("  {:<6} {:>6} {:>6} {:>9.6f} {:>6} {:>6}\n", p.name, p.weight, p.height, prob,
               prob >= 0.5 ? 1 : 0, "new");
  }
  fmt::print("\n{} of 4 training people classified correctly; {}.\n", correct,
             r.final_loss < 0.01 ? "converged (final loss < 0.01)"
                                 : "did NOT converge (final loss >= 0.01): try another --seed");
  if (o.exact) {  // every digit, to check another implementation against (17 digits: the double)
    fmt::print("\nExact values (17 significant digits):\n");
    for (const auto& [epoch, loss] : reports)
      fmt::print("epoch {} loss {:.17g}\n", epoch, loss);
    fmt::print("final loss {:.17g}\n", r.final_loss);
    fmt::print("parameters (the flat buffer: W1 column-major, b1, W2, b2):");
    for (const double v : r.net.params())
      fmt::print(" {:.17g}", v);
    fmt::print("\n");
  }
  return kOk;
}

}  // namespace

Command add_demo(CLI::App& root) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* app = root.add_subcommand(
      "demo", "Train the tutorial's 2-2-1 network on the four people and predict Emily and Frank");
  app->add_option("--seed", o->train.seed, "Seed of the N(0, 1) initial weights")
      ->capture_default_str();
  app->add_option("--epochs", o->train.epochs, "Passes over the four people")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  app->add_option("--lr", o->train.lr, "SGD learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--sweep", o->sweep,
                  "Instead of one run, train with N seeds from --seed on and count how many "
                  "converge (final loss < 0.01)")
      ->check(CLI::Range(1, 1'000'000));
  app->add_flag("--exact", o->exact,
                "Also print every reported loss, the final loss and the trained parameters with "
                "17 significant digits (the exact doubles), to compare another implementation "
                "with");
  return {app, [o] { return run_demo(*o); }};
}

}  // namespace chainrule::cli
