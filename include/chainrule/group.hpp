// Processes that train one model together (the ranks of an MPI job): the few collective
// operations the library needs of them, behind an interface, so that the library itself links no
// MPI. chainrule::mpi (mpi.hpp, its own target) implements it over MPI; a front-end passes one to
// fit() (FitOptions::group) and to the sharded readers (read_csv_shard, and read_idx_pixels
// with a part).
//
// Every call is collective: all processes of the group make it, in the same order, with the same
// sizes. Results are the same bytes on every process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chainrule/error.hpp"

namespace chainrule {

class Group {
 public:
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Element-wise sums across the processes, in place. Each element is added up in one fixed
  /// order (the same for every run with the same number of processes), and every process gets
  /// the same bytes.
  virtual void sum(std::span<double> values) const = 0;
  virtual void sum(std::span<float> values) const = 0;
  /// The block of an n-element buffer that process `rank` owns in reduce_scatter and
  /// all_gather_blocks: [n·rank/size, n·(rank+1)/size).
  std::pair<std::size_t, std::size_t> block(std::size_t n, int rank) const {
    return {n * std::size_t(rank) / std::size_t(size()),
            n * std::size_t(rank + 1) / std::size_t(size())};
  }
  /// The first half of sum(): afterwards this process's block of `values` holds the sums of
  /// that block (added up in one fixed order); the rest of `values` is undefined.
  virtual void reduce_scatter(std::span<double> values) const = 0;
  virtual void reduce_scatter(std::span<float> values) const = 0;
  /// The second half: every process's block of `values` copied to every process.
  virtual void all_gather_blocks(std::span<double> values) const = 0;
  virtual void all_gather_blocks(std::span<float> values) const = 0;
  /// Every process sends send_counts[r] values of `send` (in rank order, one run after another)
  /// to process r, and receives recv_counts[r] values from process r into `recv` (in rank
  /// order). The counts must match: what r sends to this process is what this one receives
  /// from r.
  virtual void exchange(std::span<const double> send, std::span<const std::size_t> send_counts,
                        std::span<double> recv, std::span<const std::size_t> recv_counts) const = 0;
  virtual void exchange(std::span<const float> send, std::span<const std::size_t> send_counts,
                        std::span<float> recv, std::span<const std::size_t> recv_counts) const = 0;
  /// Element-wise maxima across the processes, in place.
  virtual void max(std::span<std::int64_t> values) const = 0;
  virtual void max(std::span<double> values) const = 0;
  /// Memory the processes share, for a network's flat buffers of `bytes` each: `params`, one
  /// region that every process maps (the same memory on all), filled from this call's `params`
  /// of process 0; and `grads`, this process's own region, which the others read. A network
  /// placed there (Network::place) needs no copies: reduce_scatter of its gradients sums the
  /// blocks where they are, and all_gather_blocks of its parameters only waits until every
  /// process has written its block of them. Both null where the processes share no memory (the
  /// default; then nothing is placed). Collective; the memory lasts as long as the group, or
  /// until the next place().
  struct Placed {
    void* params = nullptr;
    void* grads = nullptr;
  };
  virtual Placed place(const void* params, std::size_t bytes) const {
    (void)params;
    (void)bytes;
    return {};
  }
  /// How sums went between the processes so far, for a log line: "through shared memory" (one
  /// machine) or "as messages".
  virtual std::string transport() const { return "as messages"; }
  /// Every process's `mine`, in rank order.
  virtual std::vector<std::string> all_gather(std::string_view mine) const = 0;

  /// Ends a phase in which any process may have failed (`local`: its error, or null): when one
  /// did, the first that did (lowest rank) rethrows its own error and the others throw
  /// PeerError, so that every process leaves the phase together and one speaks.
  void agree(std::exception_ptr local) const;
  /// Runs `phase` on every process, then agree() on how it went.
  template <class F>
  auto together(F&& phase) const {
    std::exception_ptr error;
    using R = decltype(phase());
    if constexpr (std::is_void_v<R>) {
      try {
        phase();
      } catch (...) {
        error = std::current_exception();
      }
      agree(error);
    } else {
      R r{};
      try {
        r = phase();
      } catch (...) {
        error = std::current_exception();
      }
      agree(error);
      return r;
    }
  }
  /// The exclusive prefix sum of `mine` over the ranks (0 on rank 0) and the total.
  std::pair<std::uint64_t, std::uint64_t> offset_of(std::uint64_t mine) const;

 protected:
  /// max() for agree(), kept apart from the training's collective operations where the
  /// implementation can (MPI: a communicator of its own), so that a process that failed alone
  /// never completes another process's step.
  virtual void control_max(std::span<std::int64_t> values) const { max(values); }
};

/// g->together(phase) with a group; phase() alone without one (null: this process is alone).
template <class F>
auto together(const Group* g, F&& phase) {
  return g ? g->together(phase) : phase();
}

/// Another process of the group failed and reported why: this one stops quietly (a front-end
/// exits non-zero without a second message).
class PeerError : public Error {
 public:
  PeerError() : Error("another process of the job failed") {}
};

}  // namespace chainrule
