// W2, W3 and W4 in libtorch, PyTorch's C++ library (Debian's libtorch-dev): the same networks,
// data, batches and initialisation scheme as peers.py's PyTorch runs, without Python in the loop.
// The data is read with chainrule's IDX reader (not timed); nothing of libtorch enters chainrule.
//   libtorch_peer w2|w3|w4 DIR THREADS
// Prints one JSON object per measurement, as chainrule_bench does. OpenBLAS's and OpenMP's thread
// counts come from the environment (bench/run sets them before the process starts).
#include <fmt/core.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>

#include "chainrule/table.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double cpu_seconds() {
  return double(std::clock()) / CLOCKS_PER_SEC;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024;
}

struct Data {
  torch::Tensor X, y;
};

Data fashion(const std::string& dir, const std::string& prefix, long limit = -1) {
  const auto images =
      chainrule::read_idx_images<float>(dir + "/" + prefix + "-images-idx3-ubyte.gz", 1.0 / 255);
  const auto labels = chainrule::read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  const long n = limit > 0 ? std::min<long>(limit, long(images.rows())) : long(images.rows());
  Data d;
  d.X = torch::from_blob(const_cast<float*>(images.data()), {n, 784}, torch::kFloat32).clone();
  d.y = torch::empty({n}, torch::kInt64);
  for (long r = 0; r < n; ++r)
    d.y[r] = labels[std::size_t(r)];
  return d;
}

torch::nn::Sequential mlp(std::initializer_list<long> hidden) {
  torch::nn::Sequential s;
  long in = 784;
  for (long h : hidden) {
    s->push_back(torch::nn::Linear(in, h));
    s->push_back(torch::nn::ReLU());
    in = h;
  }
  s->push_back(torch::nn::Linear(in, 10));
  return s;
}

// One epoch of SGD over the first n rows, batch b; returns the seconds and the cores busy.
std::pair<double, double> epoch(torch::nn::Sequential& model, torch::optim::SGD& opt, const Data& d,
                                long n, long b) {
  const auto t = Clock::now();
  const double cpu = cpu_seconds();
  for (long first = 0; first < n; first += b) {
    const long e = std::min(first + b, n);
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(d.X.slice(0, first, e)),
                                         d.y.slice(0, first, e))
        .backward();
    opt.step();
  }
  const double s = seconds_since(t);
  return {s, (cpu_seconds() - cpu) / s};
}

int w2(const std::string& dir, int threads) {
  const Data train = fashion(dir, "train"), test = fashion(dir, "t10k");
  auto model = mlp({128, 64});
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05));
  const auto [s, cores] = epoch(model, opt, train, 60000, 64);
  torch::NoGradGuard no_grad;
  const double acc =
      model->forward(test.X).argmax(1).eq(test.y).to(torch::kFloat64).mean().item<double>();
  fmt::print(
      R"({{"workload":"w2","peer":"libtorch","threads":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"accuracy":{},"peak_rss_mib":{:.0f}}})"
      "\n",
      threads, s, 60000 / s, cores, acc, peak_rss_mib());
  return 0;
}

int w3(const std::string& dir, int threads) {
  const long n = 256 * 40;
  const Data d = fashion(dir, "train", n);
  auto model = mlp({1024, 1024});
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01));
  epoch(model, opt, d, 512, 256);  // warm up
  const auto [s, cores] = epoch(model, opt, d, n, 256);
  long params = 0;
  for (const auto& p : model->parameters())
    params += p.numel();
  fmt::print(
      R"({{"workload":"w3","peer":"libtorch","threads":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"gflops":{}}})"
      "\n",
      threads, s, double(n) / s, cores, 6.0 * double(params) * double(n) / s / 1e9);
  return 0;
}

int w4(const std::string& dir, int threads) {
  const Data test = fashion(dir, "t10k");
  auto model = mlp({128, 64});
  model->eval();
  torch::InferenceMode guard;
  for (const long batch : {1L, 1024L}) {
    const long n = batch == 1 ? 10000 : 100 * 1024;  // as chainrule_bench
    model->forward(test.X.slice(0, 0, batch));
    const auto t = Clock::now();
    const double cpu = cpu_seconds();
    float sink = 0;
    for (long first = 0; first < n; first += batch) {
      const long f = first % (10000 - batch + 1);
      sink += model->forward(test.X.slice(0, f, f + batch))[0][0].item<float>();
    }
    const double s = seconds_since(t);
    fmt::print(
        R"({{"workload":"w4","peer":"libtorch","threads":{},"batch":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"check":{}}})"
        "\n",
        threads, batch, s, double(n) / s, (cpu_seconds() - cpu) / s, sink);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fmt::print(stderr, "usage: libtorch_peer w2|w3|w4 DIR THREADS\n");
    return 2;
  }
  const std::string cmd = argv[1];
  const int threads = std::stoi(argv[3]);
  // ATen's own (OpenMP) thread count: OMP_NUM_THREADS when bench/run sets it (it tries several
  // settings on 2 cores), else the cores allowed. set_num_threads would override the variable.
  const char* omp = std::getenv("OMP_NUM_THREADS");
  torch::set_num_threads(omp && std::atoi(omp) > 0 ? std::atoi(omp) : threads);
  torch::manual_seed(1);
  if (cmd == "w2") return w2(argv[2], threads);
  if (cmd == "w3") return w3(argv[2], threads);
  if (cmd == "w4") return w4(argv[2], threads);
  fmt::print(stderr, "libtorch_peer: unknown workload {}\n", cmd);
  return 2;
}
