// chainrule's side of the benchmark workloads (bench/run drives it). Each command prints one JSON
// object: what was timed (training or reading only, never setup), samples/s and the result.
//   chainrule_bench w1 [--reps N]            the tutorial through the library's trainer
//   chainrule_bench w1-hand [--reps N]       the same run as a hand-written scalar loop
//   chainrule_bench w2 DIR [--threads N]     Fashion-MNIST 784-128-64-10, one epoch, test accuracy
//   chainrule_bench w3 DIR [--threads N] [--dtype bfloat16]  784-1024-1024-10, batch 256: effective
//   GFLOP/s chainrule_bench w4 DIR [--threads N]     inference samples/s at batch 1 and 1024
//   chainrule_bench w5 CSV [--threads N]     a numeric CSV into the float training matrix, MB/s
//   chainrule_bench gemm [--threads N]       OpenBLAS sgemm GFLOP/s at W3's shapes
//   chainrule_bench peak [--threads N]       the cores' float32 multiply-add peak, GFLOP/s
//   chainrule_bench line                     a cache line's round trip between two cores, ns
#include <cblas.h>
#include <fmt/core.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "chainrule/fit.hpp"
#include "chainrule/init.hpp"
#include "chainrule/table.hpp"
#include "chainrule/threads.hpp"
#include "chainrule/trainer.hpp"
#include "chainrule/tutorial.hpp"

using namespace chainrule;
using Clock = std::chrono::steady_clock;

namespace {

// CPU time of the whole process, every thread: CPU time over wall time is the cores it used.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

std::string arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

// ---- W1: the tutorial ----------------------------------------------------------------------

// The initial weights every W1 peer starts from: chainrule's N(0, 1) draws for seed 13, in the
// flat buffer order (W1 (in=2, out=2) column-major, b1, W2 (2, 1), b2).
std::vector<double> w1_initial() {
  Network<double> net(tutorial::spec());
  Rng rng(13);
  initialize(net, Init::normal, rng);
  return {net.params().begin(), net.params().end()};
}

int w1(int reps) {
  const Batch<double> X = tutorial::inputs(), Y = tutorial::targets();
  const std::vector<double> init = w1_initial();
  TrainOptions o;
  o.epochs = 1000;
  o.batch = 1;
  o.shuffle = false;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1};
  const Batch<double> none(0, 2), none_y(0, 1);
  std::vector<double> times;
  double loss = 0;
  for (int r = 0; r < reps; ++r) {
    Network<double> net(tutorial::spec());
    std::copy(init.begin(), init.end(), net.params().begin());
    Rng rng(0);
    const auto t = Clock::now();
    train(net, X, Y, none, none_y, o, rng);
    times.push_back(seconds_since(t));
    loss = tutorial::dataset_loss(net);
  }
  std::sort(times.begin(), times.end());
  fmt::print(
      R"({{"workload":"w1","peer":"chainrule","seconds":{},"steps":4000,"final_loss":{:.17g}}})"
      "\n",
      times[times.size() / 2], loss);
  return 0;
}

// The starting point of the other peers: the initial weights and the four people, as JSON.
int w1_init() {
  std::string x, y, p;
  for (const auto& person : tutorial::people()) {
    x += fmt::format("{}[{},{}]", x.empty() ? "" : ",", person.weight, person.height);
    y += fmt::format("{}[{}]", y.empty() ? "" : ",", person.gender);
  }
  for (const double v : w1_initial())
    p += fmt::format("{}{:.17g}", p.empty() ? "" : ",", v);
  fmt::print(R"({{"X":[{}],"Y":[{}],"params":[{}]}})"
             "\n",
             x, y, p);
  return 0;
}

// The limit: the same 4000 steps as straight-line scalar code, nothing shared with the library.
int w1_hand(int reps) {
  const std::vector<double> init = w1_initial();
  double X[4][2], Y[4];  // the four people (examples/people.csv)
  for (int n = 0; n < 4; ++n) {
    X[n][0] = tutorial::people()[std::size_t(n)].weight;
    X[n][1] = tutorial::people()[std::size_t(n)].height;
    Y[n] = tutorial::people()[std::size_t(n)].gender;
  }
  std::vector<double> times;
  double loss = 0;
  for (int r = 0; r < reps; ++r) {
    // W1 column-major (in, out): w[i + 2j] is input i -> hidden j.
    double w11 = init[0], w21 = init[1], w12 = init[2], w22 = init[3], b1 = init[4], b2 = init[5];
    double v1 = init[6], v2 = init[7], c = init[8];
    const auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
    const auto t = Clock::now();
    for (int epoch = 0; epoch < 1000; ++epoch)
      for (int n = 0; n < 4; ++n) {
        const double x1 = X[n][0], x2 = X[n][1];
        const double h1 = sig(w11 * x1 + w21 * x2 + b1), h2 = sig(w12 * x1 + w22 * x2 + b2);
        const double o = sig(v1 * h1 + v2 * h2 + c);
        const double d_o = 2 * (o - Y[n]) * o * (1 - o);  // ∂L/∂z_out for L = (y - o)²
        const double d_h1 = d_o * v1 * h1 * (1 - h1), d_h2 = d_o * v2 * h2 * (1 - h2);
        v1 -= 0.1 * d_o * h1;
        v2 -= 0.1 * d_o * h2;
        c -= 0.1 * d_o;
        w11 -= 0.1 * d_h1 * x1;
        w21 -= 0.1 * d_h1 * x2;
        b1 -= 0.1 * d_h1;
        w12 -= 0.1 * d_h2 * x1;
        w22 -= 0.1 * d_h2 * x2;
        b2 -= 0.1 * d_h2;
      }
    times.push_back(seconds_since(t));
    loss = 0;
    for (int n = 0; n < 4; ++n) {
      const double h1 = sig(w11 * X[n][0] + w21 * X[n][1] + b1);
      const double h2 = sig(w12 * X[n][0] + w22 * X[n][1] + b2);
      const double o = sig(v1 * h1 + v2 * h2 + c);
      loss += (Y[n] - o) * (Y[n] - o) / 4;
    }
  }
  std::sort(times.begin(), times.end());
  fmt::print(
      R"({{"workload":"w1","peer":"hand-written loop","seconds":{},"steps":4000,"final_loss":{:.17g}}})"
      "\n",
      times[times.size() / 2], loss);
  return 0;
}

// ---- Fashion-MNIST ---------------------------------------------------------------------------

struct Data {
  Batch<float> X, Y;  // pixels / 255, one-hot labels
  std::vector<int> labels;
};

// IDX straight into a float matrix (pixels / 255), one-hot labels: no table in between.
Data fashion(const std::string& dir, const std::string& prefix, Index limit = -1) {
  Data d;
  d.X = read_idx_images<float>(dir + "/" + prefix + "-images-idx3-ubyte.gz", 1.0 / 255);
  d.labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (limit > 0 && limit < d.X.rows()) {
    d.X.conservativeResize(limit, Eigen::NoChange);
    d.labels.resize(std::size_t(limit));
  }
  d.Y = Batch<float>::Zero(d.X.rows(), 10);
  for (Index r = 0; r < d.X.rows(); ++r)
    d.Y(r, d.labels[std::size_t(r)]) = 1;
  return d;
}

NetworkSpec mlp(std::vector<Index> hidden) {
  NetworkSpec s{.inputs = 784, .layers = {}, .loss = Loss::softmax_cross_entropy};
  for (Index h : hidden)
    s.layers.push_back({h, Activation::relu});
  s.layers.push_back({10, Activation::softmax});
  return s;
}

double test_accuracy(Network<float>& net, const Data& test) {
  const Batch<float>& P = net.infer(test.X);
  Index correct = 0;
  for (Index r = 0; r < P.rows(); ++r) {
    Index k;
    P.row(r).maxCoeff(&k);
    correct += k == test.labels[std::size_t(r)];
  }
  return double(correct) / double(P.rows());
}

int w2(const std::string& dir, int threads) {
  const Data train_set = fashion(dir, "train"), test = fashion(dir, "t10k");
  Network<float> net(mlp({128, 64}));
  net.set_threads(threads);
  Rng rng(1);
  initialize(net, Init::he, rng);
  TrainOptions o;
  o.epochs = 1;
  o.batch = 64;
  o.shuffle = false;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.05};
  const auto t = Clock::now();
  const double cpu = cpu_seconds();
  train(net, train_set.X, train_set.Y, Batch<float>(0, 784), Batch<float>(0, 10), o, rng);
  const double s = seconds_since(t), cores = (cpu_seconds() - cpu) / s;  // before the test set's
  fmt::print(
      R"({{"workload":"w2","peer":"chainrule","threads":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"accuracy":{},"peak_rss_mib":{:.0f}}})"
      "\n",
      threads, s, 60000 / s, cores, test_accuracy(net, test), peak_rss_mib());
  return 0;
}

int w3(const std::string& dir, int threads, const std::string& dtype) {
  const Index n = 256 * 40;
  const Data d = fashion(dir, "train", n);
  Network<float> net(mlp({1024, 1024}));
  net.set_threads(threads);
  if (dtype == "bfloat16") net.set_bf16_products(true);
  Rng rng(1);
  initialize(net, Init::he, rng);
  TrainOptions o;
  o.epochs = 1;
  o.batch = 256;
  o.shuffle = false;
  o.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.01};
  const Batch<float> none(0, 784), none_y(0, 10);
  const Batch<float> wx = d.X.topRows(512), wy = d.Y.topRows(512);
  train(net, wx, wy, none, none_y, o, rng);  // warm up
  const auto t = Clock::now();
  const double cpu = cpu_seconds();
  train(net, d.X, d.Y, none, none_y, o, rng);
  const double s = seconds_since(t);
  const double gflops = 6.0 * double(net.num_params()) * double(n) / s / 1e9;
  fmt::print(
      R"({{"workload":"w3","peer":"chainrule","dtype":"{}","threads":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"gflops":{}}})"
      "\n",
      dtype, threads, s, double(n) / s, (cpu_seconds() - cpu) / s, gflops);
  return 0;
}

int w4(const std::string& dir, int threads) {
  const Data test = fashion(dir, "t10k");
  Network<float> net(mlp({128, 64}));
  net.set_threads(threads);
  Rng rng(1);
  initialize(net, Init::he, rng);
  for (const Index batch : {Index(1), Index(1024)}) {
    const Index n =
        batch == 1 ? 10000 : 100 * 1024;  // 100 batches: 0.3 s, long enough to see past the noise
    net.infer(test.X.topRows(batch));     // warm up, sizes the workspaces
    const auto t = Clock::now();
    const double cpu = cpu_seconds();
    float sink = 0;
    for (Index first = 0; first < n; first += batch)
      sink += net.infer(test.X.middleRows(first % (10000 - batch + 1), batch))(0, 0);
    const double s = seconds_since(t);
    fmt::print(
        R"({{"workload":"w4","peer":"chainrule","threads":{},"batch":{},"seconds":{},"samples_per_s":{},"cores":{:.2f},"check":{}}})"
        "\n",
        threads, batch, s, double(n) / s, (cpu_seconds() - cpu) / s, sink);
  }
  return 0;
}

int w5(const std::string& csv, int threads) {
  const double mb = double(std::filesystem::file_size(csv)) / 1e6;
  const auto t = Clock::now();
  const Table table = read_csv(csv, {.threads = threads});
  const double read_s = seconds_since(t);
  PreprocessOptions p;
  p.scale = Scale::none;
  p.task = Task::regress;
  const auto rows = all_rows(table.rows());
  const Preprocessor prep = Preprocessor::fit(table, rows, p, threads);
  const double fit_s = seconds_since(t) - read_s;
  const Batch<float> X = prep.transform<float>(table, rows, threads);
  const double s = seconds_since(t);
  fmt::print(
      R"({{"workload":"w5","peer":"chainrule","threads":{},"seconds":{},"read_s":{:.3f},"fit_s":{:.3f},"transform_s":{:.3f},"mb_per_s":{},"rows":{},"cols":{},"peak_rss_mib":{:.0f}}})"
      "\n",
      threads, s, read_s, fit_s, s - read_s - fit_s, mb / s, X.rows(), X.cols() + 1,
      peak_rss_mib());
  return 0;
}

int gemm(int threads) {
  set_openblas_threads(threads);  // OpenBLAS's own threads: what sgemm alone does with the cores
  // W3's largest products: (256, 1024)·(1024, 1024), forward and both backward shapes alike.
  const int m = 256, k = 1024, n = 1024;
  std::vector<float> A(std::size_t(m) * k, 0.5f), B(std::size_t(k) * n, 0.25f),
      C(std::size_t(m) * n);
  for (int i = 0; i < 3; ++i)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, A.data(), k, B.data(), n, 0,
                C.data(), n);
  const int reps = 60;
  const auto t = Clock::now();
  for (int i = 0; i < reps; ++i)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, A.data(), k, B.data(), n, 0,
                C.data(), n);
  const double s = seconds_since(t);
  fmt::print(R"({{"workload":"gemm","peer":"OpenBLAS sgemm","threads":{},"gflops":{}}})"
             "\n",
             threads, 2.0 * m * n * k * reps / s / 1e9);
  return 0;
}

// The limit of any float32 product on these cores: independent chains of fused multiply-adds
// (AVX-512 when the CPU has it, else AVX2 and FMA, else SSE multiplies and adds) kept in
// registers, no memory traffic. Each thread runs its own; GFLOP/s counts a multiply-add as 2.
// AVX-512 matters: cores with full-width 512-bit units (AMD Zen 5, Intel server cores) do twice
// AVX2's multiply-adds per cycle, and OpenBLAS's sgemm uses them (on such a core it outran the
// AVX2 "peak" by 40%).
__attribute__((target("avx512f"))) double fma512_chains(long n) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i)
    a[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (long k = 0; k < n; ++k)
    for (int i = 0; i < 12; ++i)
      a[i] = _mm512_fmadd_ps(a[i], x, y);
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    sum += _mm512_reduce_add_ps(a[i]);
  return double(sum);
}

__attribute__((target("avx2,fma"))) double fma_chains(long n) {
  __m256 a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (long k = 0; k < n; ++k)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm256_fmadd_ps(a[i], x, y);
  float sum = 0, out[8];
  for (int i = 0; i < 10; ++i) {
    _mm256_storeu_ps(out, a[i]);
    sum += out[0];
  }
  return double(sum);
}

double sse_chains(long n) {
  __m128 a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm_set1_ps(float(i) * 1e-3f);
  const __m128 x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
  for (long k = 0; k < n; ++k)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm_add_ps(_mm_mul_ps(a[i], x), y);
  float sum = 0, out[4];
  for (int i = 0; i < 10; ++i) {
    _mm_storeu_ps(out, a[i]);
    sum += out[0];
  }
  return double(sum);
}

int peak(int threads) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const long n = avx512 ? 50'000'000 : 100'000'000;  // per thread: 12 (or 10) chains of n steps
  const double flops =
      avx512 ? 2.0 * 12 * 16 * double(n) : 2.0 * 10 * (fma ? 8 : 4) * double(n);  // per thread
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<std::thread> pool;
    std::vector<double> sink(static_cast<std::size_t>(threads));
    const auto t = Clock::now();
    for (int i = 0; i < threads; ++i)
      pool.emplace_back([&, i] {
        sink[std::size_t(i)] = avx512 ? fma512_chains(n) : fma ? fma_chains(n) : sse_chains(n);
      });
    for (std::thread& th : pool)
      th.join();
    best = std::max(best, flops * threads / seconds_since(t) / 1e9);
  }
  fmt::print(R"({{"workload":"peak","peer":"{}","threads":{},"gflops":{}}})"
             "\n",
             avx512 ? "AVX-512 FMA"
             : fma  ? "AVX2 FMA"
                    : "SSE",
             threads, best);
  return 0;
}

// What a value written on one core costs the other to read: one cache line passed back and
// forth between two threads pinned to two cores (each waits for the other's number, then
// writes the next), the median of five runs of 100,000 round trips. A split of one batch's work
// between the cores moves hundreds of lines a step, each at this latency at worst: on the
// virtual machines of this project it was 80 ns where the two vCPUs shared an L3 cache and
// 360-470 ns where they did not, the same machine from one hour to the next (bench/RESULTS.md).
int line_round_trip() {
  cpu_set_t cores;
  int first = -1, second = -1;  // the first two cores this process may run on (0 and 1 here)
  if (sched_getaffinity(0, sizeof cores, &cores) == 0)
    for (int c = 0; c < CPU_SETSIZE && second < 0; ++c)
      if (CPU_ISSET(c, &cores)) (first < 0 ? first : second) = c;
  if (second < 0) {
    fmt::print(stderr, "chainrule_bench: line needs two cores\n");
    return 1;
  }
  const auto pin = [](int core) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(core, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
  };
  if (!pin(first)) return 1;  // before the other thread starts: no thread left waiting
  constexpr long kTrips = 100'000;
  std::vector<double> runs;
  for (int run = 0; run < 5; ++run) {
    alignas(64) std::atomic<long> line{0};
    std::thread other([&] {
      pin(second);
      for (long i = 0; i < kTrips; ++i) {
        while (line.load(std::memory_order_acquire) != 2 * i + 1) {
        }
        line.store(2 * i + 2, std::memory_order_release);
      }
    });
    const auto t = Clock::now();
    for (long i = 0; i < kTrips; ++i) {
      line.store(2 * i + 1, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != 2 * i + 2) {
      }
    }
    runs.push_back(seconds_since(t) / double(kTrips) * 1e9);
    other.join();
  }
  std::sort(runs.begin(), runs.end());
  fmt::print(R"({{"workload":"line","peer":"cores {} and {}","threads":2,"round_trip_ns":{:.1f}}})"
             "\n",
             first, second, runs[runs.size() / 2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: chainrule_bench w1|w1-hand|w2|w3|w4|w5|gemm|peak|line|blas ...\n");
    return 2;
  }
  const std::string cmd = argv[1];
  const int threads = std::stoi(arg(argc, argv, "--threads", "1"));
  const int reps = std::stoi(arg(argc, argv, "--reps", "15"));
  // As the command line: OpenBLAS on one thread, the networks' own threads share the work.
  set_openblas_threads(1);
  try {
    if (cmd == "blas") {  // the kernel set OpenBLAS chose for this CPU (or OPENBLAS_CORETYPE's)
      fmt::print(R"({{"workload":"blas","peer":"OpenBLAS","kernels":"{}","bf16":{}}})"
                 "\n",
                 openblas_get_corename(), bf16_products_available());
      return 0;
    }
    if (cmd == "w1") return w1(reps);
    if (cmd == "w1-hand") return w1_hand(reps);
    if (cmd == "w1-init") return w1_init();
    if (cmd == "w2") return w2(argv[2], threads);
    if (cmd == "w3") return w3(argv[2], threads, arg(argc, argv, "--dtype", "float32"));
    if (cmd == "w4") return w4(argv[2], threads);
    if (cmd == "w5") return w5(argv[2], threads);
    if (cmd == "gemm") return gemm(threads);
    if (cmd == "peak") return peak(threads);
    if (cmd == "line") return line_round_trip();
  } catch (const std::exception& e) {
    fmt::print(stderr, "chainrule_bench: {}\n", e.what());
    return 1;
  }
  fmt::print(stderr, "chainrule_bench: unknown workload {}\n", cmd);
  return 2;
}
