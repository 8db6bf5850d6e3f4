// Threads: OpenBLAS's, for the matrix products, are chainrule's only pool. The same setting says
// how many short-lived threads read a large CSV file and write its input matrix (before any
// product runs, so the two never compete).
#pragma once

#include <cstddef>
#include <functional>

namespace chainrule {

/// Threads OpenBLAS may use for one matrix product (n >= 1): chainrule's only worker threads,
/// so there is no oversubscription between two pools. Also the threads that read a large CSV
/// file (CsvOptions::threads = 0) and that write Preprocessor::transform's large matrices. The
/// library's default is 1 (unless the OPENBLAS_NUM_THREADS environment variable says otherwise);
/// the command line's is every core. With n > 1 each large product allocates OpenBLAS's job queue,
/// and OpenBLAS runs small products on one thread anyway. Results are bit-identical for a fixed n.
void set_blas_threads(int n);

/// The current setting of set_blas_threads.
int blas_threads();

namespace detail {
/// Applies the default once per process; every Network constructor calls it.
void configure_blas_once();
/// Before a matrix product of this many multiply-adds: small products run on one thread.
void threads_for_product(double multiply_adds);
/// Runs work(0), ..., work(n - 1) at once and returns when all are done: work(0) on the calling
/// thread, each other on a short-lived thread of its own, or on the calling thread after work(0)
/// where no thread can be started. `work` must not throw (it runs on other threads).
void run_spans(std::size_t n, const std::function<void(std::size_t)>& work);
}  // namespace detail

}  // namespace chainrule
