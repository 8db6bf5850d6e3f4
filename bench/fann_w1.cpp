// W1 in FANN (Debian's libfann-dev, double precision): the tutorial's 2-2-1 sigmoid network,
// per-sample (incremental) training from chainrule's initial weights for seed 13. FANN's gradient
// is that of ½(y - ŷ)², so its learning rate 0.2 is chainrule's 0.1 on (y - ŷ)². Its sigmoid is
// 1/(1 + e^(-2sx)): steepness 0.5 is the standard one.
#include <doublefann.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "chainrule/init.hpp"
#include "chainrule/tutorial.hpp"

int main(int argc, char** argv) {
  const int reps = argc > 2 && std::strcmp(argv[1], "--reps") == 0 ? std::atoi(argv[2]) : 15;
  chainrule::Network<double> ref(chainrule::tutorial::spec());
  chainrule::Rng rng(13);
  chainrule::initialize(ref, chainrule::Init::normal, rng);
  const std::vector<double> w(ref.params().begin(), ref.params().end());
  double X[4][2], Y[4][1];  // the four people (examples/people.csv)
  for (std::size_t n = 0; n < 4; ++n) {
    X[n][0] = chainrule::tutorial::people()[n].weight;
    X[n][1] = chainrule::tutorial::people()[n].height;
    Y[n][0] = chainrule::tutorial::people()[n].gender;
  }

  std::vector<double> times;
  double loss = 0;
  for (int r = 0; r < reps; ++r) {
    fann* ann = fann_create_standard(3, 2, 2, 1);
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(ann, 0.5);
    fann_set_activation_steepness_output(ann, 0.5);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    fann_set_learning_rate(ann, 0.2f);
    fann_set_learning_momentum(ann, 0.0f);
    // Neurons: inputs 0, 1, bias 2; hidden 3, 4, bias 5; output 6. chainrule's buffer: W1 (2, 2)
    // column-major [input + 2·hidden], b1, W2 (2, 1), b2.
    std::vector<fann_connection> conn(fann_get_total_connections(ann));
    fann_get_connection_array(ann, conn.data());
    for (fann_connection& c : conn) {
      if (c.to_neuron <= 4) {
        const unsigned j = c.to_neuron - 3;
        c.weight = c.from_neuron == 2 ? w[4 + j] : w[c.from_neuron + 2 * j];
      } else {
        c.weight = c.from_neuron == 5 ? w[8] : w[6 + (c.from_neuron - 3)];
      }
    }
    fann_set_weight_array(ann, conn.data(), unsigned(conn.size()));
    const auto t = std::chrono::steady_clock::now();
    for (int epoch = 0; epoch < 1000; ++epoch)
      for (int n = 0; n < 4; ++n)
        fann_train(ann, X[n], Y[n]);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
    loss = 0;
    for (int n = 0; n < 4; ++n) {
      const double o = fann_run(ann, X[n])[0];
      loss += (Y[n][0] - o) * (Y[n][0] - o) / 4;
    }
    fann_destroy(ann);
  }
  std::sort(times.begin(), times.end());
  fmt::print(R"({{"workload":"w1","peer":"FANN","seconds":{},"steps":4000,"final_loss":{:.17g}}})"
             "\n",
             times[times.size() / 2], loss);
}
