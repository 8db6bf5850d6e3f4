// What one step's gradient sum costs under mpirun (bench/distributed.py runs it with 2 ranks):
// Group::sum (reduce-scatter + all-gather) of the flat float gradient buffer of W2's and W3's
// networks, median of 50 calls after 5 warm-up calls. Rank 0 prints one JSON line per size.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "chainrule/mpi.hpp"

int main() {
  chainrule::mpi::Session session;
  const chainrule::Group* g = session.group();
  if (!g) {
    fmt::print(stderr, "allreduce_bench: run it under mpirun\n");
    return 2;
  }
  struct Net {
    const char* name;
    std::size_t params;
  };
  // 784-128-64-10 (W2) and 784-1024-1024-10 (W3): weights and biases.
  const Net nets[] = {
      {"W2 784-128-64-10", 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10},
      {"W3 784-1024-1024-10", 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10}};
  for (const Net& n : nets) {
    std::vector<float> grads(n.params, 1.0f);
    std::vector<double> seconds;
    for (int i = 0; i < 55; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      g->sum(grads);
      const auto t1 = std::chrono::steady_clock::now();
      if (i >= 5) seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
      std::fill(grads.begin(), grads.end(), 1.0f);
    }
    std::sort(seconds.begin(), seconds.end());
    if (g->rank() == 0)
      fmt::print(
          "{{\"network\": \"{}\", \"params\": {}, \"bytes\": {}, \"ranks\": {}, "
          "\"seconds\": {:.6g}}}\n",
          n.name, n.params, n.params * sizeof(float), g->size(), seconds[seconds.size() / 2]);
  }
  return 0;
}
