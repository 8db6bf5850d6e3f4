// What the binding sets up around a call into the engine that runs without the GIL (training,
// prediction): OpenBLAS on one thread for the call, and Ctrl-C within one batch.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <csignal>
#include <mutex>

namespace chainrule::python {

/// OpenBLAS on one thread while at least one engine call runs, as the command line sets it
/// (chainrule::set_openblas_threads): the parallelism is the network's own (`threads`), and the
/// bytes of a model are then the command line's for the same options whatever numpy's OpenBLAS
/// setting is (OpenBLAS's threads would split a large product otherwise, and may change its last
/// bits). OpenBLAS's count is process-wide and Debian's 0.3.21 has no per-call one, so the first
/// call to enter saves it and the last to leave puts it back: numpy's products in other Python
/// threads run on one OpenBLAS thread meanwhile.
class BlasOnOneThread {
 public:
  BlasOnOneThread();
  ~BlasOnOneThread();
  BlasOnOneThread(const BlasOnOneThread&) = delete;
  BlasOnOneThread& operator=(const BlasOnOneThread&) = delete;
};

/// Ctrl-C within one batch. While the engine trains without the GIL, Python's own SIGINT handler
/// (which only notes the signal for the interpreter) is replaced by one that notes it for the
/// batch callback: poll(), called after every batch, sees it at once, hands it to Python's
/// handler (the GIL taken only then) and stops the run when that raises (KeyboardInterrupt by
/// default); a handler that returns lets the run go on. Installed from the main thread only
/// (where Python runs its signal handlers), and only where Python handles SIGINT (not SIG_IGN or
/// SIG_DFL); the previous action is restored by the destructor. finish() hands Python a signal
/// that came after the last batch (preprocessing, the final scores) and throws what its handler
/// raised.
class SigintWatch {
 public:
  explicit SigintWatch(std::atomic<bool>& stop);  // the GIL held
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;
  void poll();    // without the GIL, on the training thread
  void finish();  // the GIL held, after the engine returned
  bool installed() const { return installed_; }

 private:
  std::atomic<bool>& stop_;
  bool installed_ = false;
  struct sigaction previous_ {};
};

}  // namespace chainrule::python
