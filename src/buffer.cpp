#include "chainrule/buffer.hpp"

#include <cstdlib>
#include <new>

#include "prefault.hpp"

namespace chainrule::detail {

namespace {
constexpr std::size_t kBlock = std::size_t(2) << 20;  // a transparent huge page
// Smaller buffers from 4 KiB start on a cache line: threads that update neighbouring ranges of
// one (the split by columns, network.cpp) then share no line but at the ranges' own edges. Not
// below: a table of a million columns holds a small buffer per column, and aligned ones cost
// more memory each.
constexpr std::align_val_t kLine{64};
constexpr std::size_t kLineFrom = 4096;
}  // namespace

void* allocate_pages(std::size_t bytes) {
  if (bytes < kLineFrom) return ::operator new(bytes);
  if (bytes < kPagedBytes) return ::operator new(bytes, kLine);
  if (bytes > std::size_t(-1) - kBlock) throw std::bad_alloc();
  const std::size_t whole = (bytes + kBlock - 1) / kBlock * kBlock;
  void* p = std::aligned_alloc(kBlock, whole);
  if (p == nullptr) throw std::bad_alloc();
  // Before any write: a page faulted in as 4 KiB stays so.
  advise_huge_pages(p, static_cast<char*>(p) + whole, kBlock);
  return p;
}

void free_pages(void* p, std::size_t bytes) noexcept {
  if (bytes < kLineFrom)
    ::operator delete(p);
  else if (bytes < kPagedBytes)
    ::operator delete(p, kLine);
  else
    std::free(p);
}

}  // namespace chainrule::detail
