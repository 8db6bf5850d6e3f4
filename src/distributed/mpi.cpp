#include "chainrule/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

namespace chainrule::mpi {

namespace {

// MPI_COMM_WORLD as a Group. Sums are a ring reduce-scatter (each block added up on its owner,
// in ring order from the next rank round to the owner: one fixed order) followed by a ring
// all-gather of the blocks: every process gets the same bytes, run after run, and sends and
// receives 2·(N-1)/N of the buffer, as MPI_Allreduce's ring does.
class World final : public Group {
 public:
  World() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_dup(MPI_COMM_WORLD, &control_);
    counts_.resize(std::size_t(size_));
    displs_.resize(std::size_t(size_));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(std::span<double> v) const override {
    reduce_scatter(v);
    all_gather_blocks(v);
  }
  void sum(std::span<float> v) const override {
    reduce_scatter(v);
    all_gather_blocks(v);
  }
  void reduce_scatter(std::span<double> v) const override { ring_reduce(v, MPI_DOUBLE, dbuf_); }
  void reduce_scatter(std::span<float> v) const override { ring_reduce(v, MPI_FLOAT, fbuf_); }
  void all_gather_blocks(std::span<double> v) const override { ring_gather(v, MPI_DOUBLE); }
  void all_gather_blocks(std::span<float> v) const override { ring_gather(v, MPI_FLOAT); }
  void max(std::span<std::int64_t> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  }
  void max(std::span<double> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }
  ~World() override { MPI_Comm_free(&control_); }
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
    // Pieces whose total over the ranks fits MPI's int counts.
    const std::int64_t piece = std::min<std::int64_t>(std::int64_t(1) << 30, INT_MAX / size_);
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

 protected:
  void control_max(std::span<std::int64_t> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_INT64_T, MPI_MAX, control_);
  }

 private:
  int left() const { return (rank_ + size_ - 1) % size_; }
  int right() const { return (rank_ + 1) % size_; }
  int wrap(int k) const { return ((k % size_) + size_) % size_; }

  // Step s of N - 1: send the partial sum of block rank - s - 1 to the right, receive that of
  // block rank - s - 2 from the left and add this process's values to it. At the end this
  // process holds the whole sum of its own block, added up from rank + 1 round to rank.
  template <class T>
  void ring_reduce(std::span<T> v, MPI_Datatype type, std::vector<T>& in) const {
    const std::size_t n = v.size();
    in.resize(n / std::size_t(size_) + 1);  // grows once: steps allocate nothing
    for (int s = 0; s + 1 < size_; ++s) {
      const auto [sb, se] = block(n, wrap(rank_ - s - 1));
      const auto [rb, re] = block(n, wrap(rank_ - s - 2));
      MPI_Sendrecv(v.data() + sb, int(se - sb), type, right(), 0, in.data(), int(re - rb), type,
                   left(), 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      T* __restrict out = v.data() + rb;
      const T* __restrict add = in.data();
      for (std::size_t i = 0; i < re - rb; ++i)
        out[i] = add[i] + out[i];
    }
  }

  // Step s: send block rank - s to the right, receive block rank - s - 1 from the left.
  template <class T>
  void ring_gather(std::span<T> v, MPI_Datatype type) const {
    const std::size_t n = v.size();
    for (int s = 0; s + 1 < size_; ++s) {
      const auto [sb, se] = block(n, wrap(rank_ - s));
      const auto [rb, re] = block(n, wrap(rank_ - s - 1));
      MPI_Sendrecv(v.data() + sb, int(se - sb), type, right(), 1, v.data() + rb, int(re - rb), type,
                   left(), 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  }

  int rank_ = 0, size_ = 1;
  MPI_Comm control_ = MPI_COMM_NULL;  // agree()'s, apart from the training's
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
