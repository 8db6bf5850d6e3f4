// The large flat buffers of training (a network's parameters and gradients, an optimizer's
// state): std::vectors whose memory, from 1 MiB up, is whole 2 MiB blocks asking for transparent
// huge pages.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace chainrule {

namespace detail {
/// `bytes` of memory for a PageAllocator: under kPagedBytes, from operator new (64-byte aligned
/// from 4 KiB); from there, 2 MiB-aligned and rounded up to whole 2 MiB blocks that ask for huge
/// pages (prefault.hpp's advise_huge_pages: only where the kernel has the free blocks;
/// CHAINRULE_HUGE_PAGES=0 turns it off). Throws std::bad_alloc.
void* allocate_pages(std::size_t bytes);
/// Frees what allocate_pages(bytes) returned, with the same `bytes`. (From kPagedBytes the
/// memory is std::aligned_alloc's, which std::free also frees: file_io.cpp's Bytes rely on it.)
void free_pages(void* p, std::size_t bytes) noexcept;
inline constexpr std::size_t kPagedBytes = std::size_t(1) << 20;
}  // namespace detail

/// allocate_pages' memory as a std::allocator, with no state, so that a vector of it is no larger
/// than a std::vector (a table of a million columns holds a million of them).
template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() noexcept = default;
  template <class U>
  BlockAllocator(const BlockAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::allocate_pages(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { detail::free_pages(p, n * sizeof(T)); }
  friend bool operator==(const BlockAllocator&, const BlockAllocator&) noexcept { return true; }
};

/// BlockAllocator with an arena: the training buffers of this header's first lines. On the virtual
/// machines of this project's sessions a 4 KiB page's first write cost about 11 µs, a 2 MiB page's
/// about 90 µs: a 784-1024-1024-10 network's parameters, gradients and momentum (21 MiB) took 60 ms
/// to fault in page by page in the first training step, and 1-2 ms in huge pages
/// (docs/design-notes.md, "Large buffers").
template <class T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() noexcept = default;
  /// Hands out `arena` (memory someone else owns, `n` values: Network::place) for one buffer
  /// of at most n values, and frees nothing. Elements the vector default-constructs there keep
  /// the arena's values; copies of such a vector get memory of their own.
  PageAllocator(T* arena, std::size_t n) noexcept : arena_(arena), arena_size_(n) {}
  template <class U>
  PageAllocator(const PageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (arena_ != nullptr) {
      if (n > arena_size_) throw std::bad_alloc();
      return arena_;
    }
    return BlockAllocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (arena_ == nullptr) BlockAllocator<T>().deallocate(p, n);
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0)
      if (arena_ != nullptr) {
        ::new (static_cast<void*>(p)) U;  // default-initialized: the arena's value stays
        return;
      }
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  PageAllocator select_on_container_copy_construction() const noexcept { return {}; }
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  friend bool operator==(const PageAllocator& a, const PageAllocator& b) noexcept {
    return a.arena_ == b.arena_;
  }

 private:
  T* arena_ = nullptr;
  std::size_t arena_size_ = 0;
};

/// A flat buffer of values in PageAllocator's memory.
template <class T>
using Buffer = std::vector<T, PageAllocator<T>>;

/// A std::vector whose memory, from 1 MiB up, is whole 2 MiB blocks asking for huge pages: a
/// table's columns (table.hpp). PageAllocator adds an arena to it: the network's buffers.
template <class T>
using PagedVector = std::vector<T, BlockAllocator<T>>;

}  // namespace chainrule
