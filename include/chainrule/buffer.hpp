// The large flat buffers of training (a network's parameters and gradients, an optimizer's
// state): std::vectors whose memory, from 1 MiB up, is whole 2 MiB blocks asking for transparent
// huge pages.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace chainrule {

namespace detail {
/// `bytes` of memory for a PageAllocator: under kPagedBytes, from operator new; from there,
/// 2 MiB-aligned and rounded up to whole 2 MiB blocks that ask for huge pages (prefault.hpp's
/// advise_huge_pages: only where the kernel has the free blocks; CHAINRULE_HUGE_PAGES=0 turns it
/// off). Throws std::bad_alloc.
void* allocate_pages(std::size_t bytes);
/// Frees what allocate_pages(bytes) returned, with the same `bytes`.
void free_pages(void* p, std::size_t bytes) noexcept;
inline constexpr std::size_t kPagedBytes = std::size_t(1) << 20;
}  // namespace detail

/// A std::allocator for the buffers above. On the virtual machines of this project's sessions a
/// 4 KiB page's first write cost about 11 µs, a 2 MiB page's about 90 µs: a 784-1024-1024-10
/// network's parameters, gradients and momentum (21 MiB) took 60 ms to fault in page by page in
/// the first training step, and 1-2 ms in huge pages (docs/design-notes.md, "Large buffers").
template <class T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() noexcept = default;
  template <class U>
  PageAllocator(const PageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::allocate_pages(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { detail::free_pages(p, n * sizeof(T)); }
  friend bool operator==(const PageAllocator&, const PageAllocator&) noexcept { return true; }
};

/// A flat buffer of values in PageAllocator's memory.
template <class T>
using Buffer = std::vector<T, PageAllocator<T>>;

}  // namespace chainrule
