#include "chainrule/threads.hpp"

#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"

extern "C" {
// OpenBLAS's own extensions (cblas.h declares them; we avoid pulling in the whole header).
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
}

namespace chainrule {

namespace {
std::once_flag default_once;  // the default applies once, and never after set_blas_threads
int setting = 1;              // what set_blas_threads asked for
int active = 1;               // what OpenBLAS is set to now
}  // namespace

void set_blas_threads(int n) {
  if (n < 1) throw ConfigError("thread count must be at least 1, got " + std::to_string(n));
  std::call_once(default_once, [] {});
  setting = active = n;
  openblas_set_num_threads(n);
}

int blas_threads() {
  return setting;
}

void detail::threads_for_product(double multiply_adds) {
  // Measured (bench W2, W3): below ~16 M multiply-adds, waking a second thread costs more than
  // it saves ((64×784)·(784×128) is slower on two threads than on one).
  const int want = multiply_adds >= 16e6 ? setting : 1;
  if (want != active) {
    openblas_set_num_threads(want);
    active = want;
  }
}

void detail::run_spans(std::size_t n, const std::function<void(std::size_t)>& work) {
  std::vector<std::size_t> inline_spans;
  {
    std::vector<std::jthread> pool;
    pool.reserve(n);
    for (std::size_t i = 1; i < n; ++i) {
      try {
        pool.emplace_back(work, i);
      } catch (const std::system_error&) {  // no more threads: this one does the rest
        inline_spans.push_back(i);
      }
    }
    if (n > 0) work(0);
    for (const std::size_t i : inline_spans)
      work(i);
  }  // the jthreads join here
}

void detail::configure_blas_once() {
  std::call_once(default_once, [] {
    if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr)
      openblas_set_num_threads(1);
    else
      setting = active = openblas_get_num_threads();
  });
}

}  // namespace chainrule
