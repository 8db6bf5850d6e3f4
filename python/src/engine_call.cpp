#include "engine_call.hpp"

#include <pybind11/pybind11.h>

extern "C" {
// OpenBLAS's own extensions (cblas.h declares them; the whole header is not needed).
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
}

namespace py = pybind11;

namespace chainrule::python {

namespace {

std::mutex blas_mutex;
int blas_users = 0;  // engine calls running
int blas_saved = 1;  // OpenBLAS's count before the first of them

// A SIGINT noted by SigintWatch's handler, not yet handed to Python.
volatile std::sig_atomic_t sigint_pending = 0;
std::atomic<bool> watch_installed{false};

extern "C" void note_sigint(int) {
  sigint_pending = 1;
}

}  // namespace

BlasOnOneThread::BlasOnOneThread() {
  const std::lock_guard<std::mutex> lock(blas_mutex);
  if (blas_users++ == 0) {
    blas_saved = openblas_get_num_threads();
    if (blas_saved != 1) openblas_set_num_threads(1);
  }
}

BlasOnOneThread::~BlasOnOneThread() {
  const std::lock_guard<std::mutex> lock(blas_mutex);
  if (--blas_users == 0 && blas_saved != 1) openblas_set_num_threads(blas_saved);
}

SigintWatch::SigintWatch(std::atomic<bool>& stop) : stop_(stop) {
  const py::object threading = py::module_::import("threading");
  if (!threading.attr("main_thread")().is(threading.attr("current_thread")())) return;
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler == SIG_IGN ||
      current.sa_handler == SIG_DFL || (current.sa_flags & SA_SIGINFO) != 0)
    return;
  bool expected = false;
  if (!watch_installed.compare_exchange_strong(expected, true)) return;  // one at a time
  struct sigaction mine {};
  mine.sa_handler = note_sigint;
  sigemptyset(&mine.sa_mask);
  sigint_pending = 0;
  if (sigaction(SIGINT, &mine, &previous_) != 0) {
    watch_installed = false;
    return;
  }
  installed_ = true;
}

SigintWatch::~SigintWatch() {
  if (!installed_) return;
  sigaction(SIGINT, &previous_, nullptr);
  watch_installed = false;
}

void SigintWatch::poll() {
  if (!installed_ || sigint_pending == 0) return;
  sigint_pending = 0;
  py::gil_scoped_acquire gil;
  // Python's handler for SIGINT, as if the signal had come to it (its own C handler does the
  // same), run now.
  PyErr_SetInterruptEx(SIGINT);
  if (PyErr_CheckSignals() != 0) {
    PyErr_Clear();
    stop_ = true;
  }
}

void SigintWatch::finish() {
  if (!installed_ || sigint_pending == 0) return;
  sigint_pending = 0;
  PyErr_SetInterruptEx(SIGINT);
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace chainrule::python
