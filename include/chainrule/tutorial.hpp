// The beginner's tutorial, done right: a 2-2-1 sigmoid network that tells gender from centered
// weight and height, trained on four people with MSE and per-sample SGD.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string_view>

#include "chainrule/network.hpp"

namespace chainrule::tutorial {

/// One row of examples/people.csv.
struct Person {
  std::string_view name;
  double weight;  ///< x1, centered
  double height;  ///< x2, centered
  double gender;  ///< y: 1 or 0
};

/// The four training people, in table order (examples/people.csv).
const std::array<Person, 4>& people();
/// The two people the tutorial predicts after training: Emily and Frank (no label).
const std::array<Person, 2>& newcomers();

/// 2 inputs, 2 sigmoid hidden neurons, 1 sigmoid output, MSE.
NetworkSpec spec();
/// The four people as a batch X (4, 2) and targets Y (4, 1).
Batch<double> inputs();
Batch<double> targets();

/// The tutorial's recipe. The default seed is one whose run converges (only about half do:
/// docs/backprop.md).
struct Options {
  std::uint64_t seed = 13;
  int epochs = 1000;
  double lr = 0.1;
  int report_every = 10;  ///< call on_report after epochs 0, 10, 20, ... (the tutorial's cadence)
};

/// What a run leaves behind.
struct Result {
  Network<double> net;
  double final_loss;  ///< mean MSE over the four people after the last epoch
};

/// Draws every weight and bias from N(0, 1), then trains with per-sample SGD (one update per
/// person, in table order). on_report(epoch, loss over all four) follows the tutorial's cadence.
Result train(const Options& options,
             const std::function<void(int epoch, double loss)>& on_report = {});

/// Mean loss of `net` over the four people.
double dataset_loss(Network<double>& net);

}  // namespace chainrule::tutorial
