#include "chainrule/mpi.hpp"

#include <mpi.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "../prefault.hpp"

namespace chainrule::mpi {

namespace {

// Whether the job may pass data through shared memory: Open MPI's btl list (mpirun --mca btl
// ...) names its shared-memory transport (vader, sm), or is not set. `--mca btl tcp,self` runs
// the ranks of one machine as if they were on different hosts, and so does chainrule.
bool shared_memory_allowed() {
  const char* v = std::getenv("OMPI_MCA_btl");
  if (!v) return true;
  std::string_view list(v);
  const bool excluding = list.starts_with('^');
  bool named = false;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    if (name.starts_with('^')) name.remove_prefix(1);
    named = named || name == "vader" || name == "sm";
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return excluding ? !named : named;
}

// MPI_COMM_WORLD as a Group. Sums are a reduce-scatter (each block added up on its owner in one
// fixed order) followed by an all-gather of the blocks: every process gets the same bytes, run
// after run.
// - Between hosts, both are rings: block sums added up in ring order from the next rank round to
//   the owner; each process sends and receives 2·(N-1)/N of the buffer, as MPI_Allreduce's ring
//   does.
// - When every rank is on one machine, both go through a segment of shared memory that every
//   rank maps (an MPI-3 shared window): each rank copies in the blocks the others own, the owner
//   of a block adds the ranks' values up in rank order straight from there, and writes its block
//   back for the others to copy out. W3's 7 MiB gradient: 0.6-1.1 ms a sum on 2 ranks, against
//   1.7-2.0 ms as ring messages through Open MPI's shared-memory transport (bench/RESULTS.md,
//   issue 12, sixth session).
// - A network placed in a window of its own (place(): the parameters once, every rank's
//   gradients) needs none of those copies: the owners add the blocks up where backward wrote
//   them, update the parameters in place, and the all-gather is a barrier (ninth session).
class World final : public Group {
 public:
  World() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_dup(MPI_COMM_WORLD, &control_);
    counts_.resize(std::size_t(size_));
    displs_.resize(std::size_t(size_));
    if (size_ > 1 && shared_memory_allowed()) {
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node_);
      int node_size = 0;
      MPI_Comm_size(node_, &node_size);
      // Each rank's rank in node_ is its world rank (key 0 keeps the order), so slots and blocks
      // agree.
      if (node_size != size_) {
        MPI_Comm_free(&node_);
        node_ = MPI_COMM_NULL;
      } else {
        MPI_Comm_set_errhandler(node_, MPI_ERRORS_RETURN);
      }
    }
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
  void reduce_scatter(std::span<double> v) const override {
    if (placed_grads(v)) return shared_reduce(v, placed_slots_, placed_win_);
    shared(v) ? shared_reduce(v, slots_, window_) : ring_reduce(v, MPI_DOUBLE, dbuf_);
  }
  void reduce_scatter(std::span<float> v) const override {
    if (placed_grads(v)) return shared_reduce(v, placed_slots_, placed_win_);
    shared(v) ? shared_reduce(v, slots_, window_) : ring_reduce(v, MPI_FLOAT, fbuf_);
  }
  // Placed parameters are where every process reads them: once each has written its block,
  // they are gathered.
  void all_gather_blocks(std::span<double> v) const override {
    if (placed_params(v)) return sync_all(placed_win_);
    shared(v) ? shared_gather(v) : ring_gather(v, MPI_DOUBLE);
  }
  void all_gather_blocks(std::span<float> v) const override {
    if (placed_params(v)) return sync_all(placed_win_);
    shared(v) ? shared_gather(v) : ring_gather(v, MPI_FLOAT);
  }
  // A window of its own, so that a larger sum's new window never moves them: process 0's
  // segment holds its gradients, then the parameters; each other process's its gradients.
  Placed place(const void* params, std::size_t bytes) const override {
    free_window(placed_win_);
    placed_params_ = nullptr;
    if (node_ == MPI_COMM_NULL || bytes == 0) return {};
    const std::size_t slot = (bytes + 4095) / 4096 * 4096;
    if (!allocate_window(rank_ == 0 ? 2 * slot : slot, (std::size_t(size_) + 1) * slot, placed_win_,
                         placed_slots_))
      return {};
    placed_bytes_ = slot;
    placed_params_ = placed_slots_[0] + slot;
    // Every page mapped for writing now, in one call each (prefault.hpp), rather than one fault
    // per 4 KiB page in the first training step (the segment is a file in /dev/shm: no huge
    // pages): this process's gradients, and the parameters (each process writes its block of
    // them). Mapping a page for writing changes none of its bytes.
    std::byte* mine = placed_slots_[std::size_t(rank_)];
    detail::prefault(mine, mine + slot);
    if (rank_ == 0) {
      detail::prefault(placed_params_, placed_params_ + slot);
      std::memcpy(placed_params_, params, bytes);
    }
    sync_all(placed_win_);
    if (rank_ != 0) detail::prefault(placed_params_, placed_params_ + slot);
    return {placed_params_, placed_slots_[std::size_t(rank_)]};
  }
  std::string transport() const override {
    return window_ != MPI_WIN_NULL ? "through shared memory" : "as messages";
  }
  void exchange(std::span<const double> send, std::span<const std::size_t> send_counts,
                std::span<double> recv, std::span<const std::size_t> recv_counts) const override {
    all_to_all(send, send_counts, recv, recv_counts, MPI_DOUBLE);
  }
  void exchange(std::span<const float> send, std::span<const std::size_t> send_counts,
                std::span<float> recv, std::span<const std::size_t> recv_counts) const override {
    all_to_all(send, send_counts, recv, recv_counts, MPI_FLOAT);
  }
  void max(std::span<std::int64_t> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  }
  void max(std::span<double> v) const override {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }
  ~World() override {
    free_window(placed_win_);
    free_window(window_);
    if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
    MPI_Comm_free(&control_);
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

  template <class T>
  void all_to_all(std::span<const T> send, std::span<const std::size_t> send_counts,
                  std::span<T> recv, std::span<const std::size_t> recv_counts,
                  MPI_Datatype type) const {
    const auto n = std::size_t(size_);
    if (send_counts.size() != n || recv_counts.size() != n)
      throw Error("exchange: one count per process is needed");
    if (a2a_.size() != 4 * n) a2a_.resize(4 * n);
    int* sc = a2a_.data();
    int* sd = sc + n;
    int* rc = sd + n;
    int* rd = rc + n;
    std::size_t sent = 0, received = 0;
    for (std::size_t r = 0; r < n; ++r) {
      if (send_counts[r] > std::size_t(INT_MAX) - sent ||
          recv_counts[r] > std::size_t(INT_MAX) - received)
        throw Error("exchange: more than 2^31 values");
      sc[r] = int(send_counts[r]);
      sd[r] = int(sent);
      rc[r] = int(recv_counts[r]);
      rd[r] = int(received);
      sent += send_counts[r];
      received += recv_counts[r];
    }
    if (sent > send.size() || received > recv.size())
      throw Error("exchange: the counts exceed the buffers");
    MPI_Alltoallv(send.data(), sc, sd, type, recv.data(), rc, rd, type, MPI_COMM_WORLD);
  }

  // Whether v's sum goes through shared memory: every rank on this machine, and a segment of
  // v's size mapped. Collective: every rank asks with the same size and gets the same answer.
  template <class T>
  bool shared(std::span<T> v) const {
    const std::size_t bytes = v.size() * sizeof(T);
    if (node_ == MPI_COMM_NULL || bytes == 0) return false;
    if (bytes <= slot_bytes_) return true;
    free_window(window_);  // grows (rarely: the largest buffer so far)
    slot_bytes_ = 0;
    const std::size_t slot = (bytes + 4095) / 4096 * 4096;
    if (!allocate_window(slot, slot * std::size_t(size_), window_, slots_)) return use_messages();
    slot_bytes_ = slot;
    return true;
  }

  // A shared window with `mine` bytes on this rank and `total` on all (collective): every rank
  // gets one, or none does. The segment is a file in /dev/shm (Open MPI's default). One too
  // small for it would fail only when a page is first touched (SIGBUS), so the room is checked
  // first, on every rank, with a margin for the segments Open MPI itself keeps there.
  bool allocate_window(std::size_t mine, std::size_t total, MPI_Win& window,
                       std::vector<std::byte*>& slots) const {
    struct statvfs fs {};
    int room =
        statvfs("/dev/shm", &fs) == 0 && double(fs.f_bavail) * double(fs.f_frsize) >=
                                             2.0 * double(total) + double(std::size_t(64) << 20);
    MPI_Allreduce(MPI_IN_PLACE, &room, 1, MPI_INT, MPI_MIN, node_);
    if (!room) return false;
    void* base = nullptr;
    MPI_Win win = MPI_WIN_NULL;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int ok = MPI_Win_allocate_shared(MPI_Aint(mine), 1, info, node_, &base, &win) == MPI_SUCCESS;
    MPI_Info_free(&info);
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, node_);
    if (!ok) {
      if (win != MPI_WIN_NULL) MPI_Win_free(&win);
      return false;
    }
    window = win;
    slots.resize(std::size_t(size_));
    for (int r = 0; r < size_; ++r) {
      MPI_Aint size = 0;
      int unit = 0;
      void* at = nullptr;
      MPI_Win_shared_query(window, r, &size, &unit, &at);
      slots[std::size_t(r)] = static_cast<std::byte*>(at);
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, window);
    return true;
  }

  static void free_window(MPI_Win& window) {
    if (window == MPI_WIN_NULL) return;
    MPI_Win_unlock_all(window);
    MPI_Win_free(&window);
    window = MPI_WIN_NULL;
  }

  // Whether v is the gradients, or the parameters, of a network placed in place()'s window.
  template <class T>
  bool placed_grads(std::span<T> v) const {
    return placed_params_ != nullptr &&
           static_cast<const void*>(v.data()) == placed_slots_[std::size_t(rank_)] &&
           v.size_bytes() <= placed_bytes_;
  }
  template <class T>
  bool placed_params(std::span<T> v) const {
    return placed_params_ != nullptr && static_cast<const void*>(v.data()) == placed_params_ &&
           v.size_bytes() <= placed_bytes_;
  }

  // From now on, every sum as messages (shared() answers false).
  bool use_messages() const {
    MPI_Comm_free(&node_);
    node_ = MPI_COMM_NULL;
    return false;
  }

  // Every rank's writes to the window's segments so far are visible to every rank.
  void sync_all(MPI_Win window) const {
    MPI_Win_sync(window);
    MPI_Barrier(node_);
    MPI_Win_sync(window);
  }

  template <class T>
  T* slot(int r) const {
    return reinterpret_cast<T*>(slots_[std::size_t(r)]);
  }

  // Each rank's values into its slot (unless they are there: a placed network's gradients), but
  // for its own block, which only it adds up (from v); this rank's block of v becomes the sum over
  // the ranks in rank order, ((v₀ + v₁) + v₂) + ...; then every rank has read what it needs.
  template <class T>
  void shared_reduce(std::span<T> v, const std::vector<std::byte*>& slots, MPI_Win window) const {
    const auto [b, e] = block(v.size(), rank_);
    T* mine = reinterpret_cast<T*>(slots[std::size_t(rank_)]);
    if (mine != v.data()) {
      std::memcpy(mine, v.data(), b * sizeof(T));
      std::memcpy(mine + e, v.data() + e, (v.size() - e) * sizeof(T));
    }
    sync_all(window);
    auto values = [&](int r) -> const T* {
      return r == rank_ ? v.data() + b : reinterpret_cast<const T*>(slots[std::size_t(r)]) + b;
    };
    // In pieces: this rank's own values are read (from v) before its sums overwrite them.
    constexpr std::size_t kPiece = 1024;
    T sums[kPiece];
    for (std::size_t at = 0; at < e - b; at += kPiece) {
      const std::size_t m = std::min(kPiece, e - b - at);
      const T* first = values(0) + at;
      const T* second = values(1) + at;
      for (std::size_t i = 0; i < m; ++i)
        sums[i] = first[i] + second[i];
      for (int r = 2; r < size_; ++r) {
        const T* add = values(r) + at;
        for (std::size_t i = 0; i < m; ++i)
          sums[i] = sums[i] + add[i];
      }
      std::memcpy(v.data() + b + at, sums, m * sizeof(T));
    }
    sync_all(window);
  }

  // This rank's block into its slot (where no rank reads after shared_reduce), then every other
  // rank's block out of theirs.
  template <class T>
  void shared_gather(std::span<T> v) const {
    const auto [b, e] = block(v.size(), rank_);
    std::memcpy(slot<T>(rank_) + b, v.data() + b, (e - b) * sizeof(T));
    sync_all(window_);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      const auto [rb, re] = block(v.size(), r);
      std::memcpy(v.data() + rb, slot<T>(r) + rb, (re - rb) * sizeof(T));
    }
    sync_all(window_);
  }

  int rank_ = 0, size_ = 1;
  mutable MPI_Comm node_ = MPI_COMM_NULL;  // every rank, when all share this machine
  mutable MPI_Win window_ = MPI_WIN_NULL;
  mutable std::size_t slot_bytes_ = 0;
  mutable std::vector<std::byte*> slots_;
  mutable MPI_Win placed_win_ = MPI_WIN_NULL;  // place()'s
  mutable std::size_t placed_bytes_ = 0;
  mutable std::vector<std::byte*> placed_slots_;
  mutable std::byte* placed_params_ = nullptr;
  MPI_Comm control_ = MPI_COMM_NULL;  // agree()'s, apart from the training's
  mutable std::vector<int> counts_, displs_, a2a_;
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
