#include "chainrule/threads.hpp"

#include <cstdlib>
#include <mutex>
#include <string>

#include "chainrule/error.hpp"

extern "C" {
// OpenBLAS's own extensions (cblas.h declares them; we avoid pulling in the whole header).
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
}

namespace chainrule {

namespace {
std::once_flag default_once;  // the default applies once, and never after set_blas_threads
}

void set_blas_threads(int n) {
  if (n < 1) throw ConfigError("thread count must be at least 1, got " + std::to_string(n));
  std::call_once(default_once, [] {});
  openblas_set_num_threads(n);
}

int blas_threads() {
  return openblas_get_num_threads();
}

void detail::configure_blas_once() {
  std::call_once(default_once, [] {
    if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) openblas_set_num_threads(1);
  });
}

}  // namespace chainrule
