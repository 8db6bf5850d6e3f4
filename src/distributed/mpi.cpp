#include "chainrule/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace chainrule::mpi {

namespace {

// MPI_COMM_WORLD as a Group. Sums are a reduce-scatter (each element added up on one process,
// in the order MPI's algorithm for this many processes and bytes fixes) and an all-gather of the
// results: every process gets the same bytes, run after run.
class World final : public Group {
 public:
  World() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    counts_.resize(std::size_t(size_));
    displs_.resize(std::size_t(size_));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(std::span<double> v) const override { sum_of(v, MPI_DOUBLE, dbuf_); }
  void sum(std::span<float> v) const override { sum_of(v, MPI_FLOAT, fbuf_); }
  void max(std::span<std::int64_t> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  }
  void max(std::span<double> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }
  std::vector<std::string> all_gather(std::string_view mine) const override {
    // Sizes first, then the bytes; parts over 2 GiB go in 1 GiB pieces of the largest.
    const std::int64_t n = std::int64_t(mine.size());
    std::vector<std::int64_t> sizes(static_cast<std::size_t>(size_));
    MPI_Allgather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, MPI_COMM_WORLD);
    std::vector<std::string> all(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r)
      all[std::size_t(r)].resize(std::size_t(sizes[std::size_t(r)]));
    std::int64_t largest = 0;
    for (const std::int64_t s : sizes)
      largest = std::max(largest, s);
    const std::int64_t piece = std::int64_t(1) << 30;
    std::vector<char> recv;
    for (std::int64_t at = 0; at < largest; at += piece) {
      int total = 0;
      for (int r = 0; r < size_; ++r) {
        const std::int64_t s = sizes[std::size_t(r)];
        counts_[std::size_t(r)] = int(std::clamp<std::int64_t>(s - at, 0, piece));
        displs_[std::size_t(r)] = total;
        total += counts_[std::size_t(r)];
      }
      recv.resize(std::size_t(total));
      MPI_Allgatherv(mine.data() + std::min<std::int64_t>(at, n), counts_[std::size_t(rank_)],
                     MPI_CHAR, recv.data(), counts_.data(), displs_.data(), MPI_CHAR,
                     MPI_COMM_WORLD);
      for (int r = 0; r < size_; ++r)
        std::copy_n(recv.data() + displs_[std::size_t(r)], counts_[std::size_t(r)],
                    all[std::size_t(r)].data() + at);
    }
    return all;
  }

 private:
  // Element i of the sum is computed on the process whose block holds it (blocks of nearly equal
  // size, in rank order), then every block is gathered into `v` itself.
  template <class T>
  void sum_of(std::span<T> v, MPI_Datatype type, std::vector<T>& part) const {
    const std::size_t n = v.size(), N = std::size_t(size_);
    int at = 0;
    for (std::size_t r = 0; r < N; ++r) {
      counts_[r] = int(n / N + (r < n % N));
      displs_[r] = at;
      at += counts_[r];
    }
    part.resize(std::size_t(counts_[std::size_t(rank_)]));  // grows once: steps allocate nothing
    MPI_Reduce_scatter(v.data(), part.data(), counts_.data(), type, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allgatherv(part.data(), counts_[std::size_t(rank_)], type, v.data(), counts_.data(),
                   displs_.data(), type, MPI_COMM_WORLD);
  }

  int rank_ = 0, size_ = 1;
  mutable std::vector<int> counts_, displs_;
  mutable std::vector<double> dbuf_;
  mutable std::vector<float> fbuf_;
};

}  // namespace

bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

Session::Session() {
  if (!launched()) return;
  int provided = 0;
  // Threads of chainrule's own pools never call MPI: only the main thread does.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  group_ = std::make_unique<World>();
}

Session::~Session() {
  if (group_) {
    group_.reset();
    MPI_Finalize();
  }
}

}  // namespace chainrule::mpi
