#include "chainrule/buffer.hpp"

#include <cstdlib>
#include <new>

#include "prefault.hpp"

namespace chainrule::detail {

namespace {
constexpr std::size_t kBlock = std::size_t(2) << 20;  // a transparent huge page
}

void* allocate_pages(std::size_t bytes) {
  if (bytes < kPagedBytes) return ::operator new(bytes);
  if (bytes > std::size_t(-1) - kBlock) throw std::bad_alloc();
  const std::size_t whole = (bytes + kBlock - 1) / kBlock * kBlock;
  void* p = std::aligned_alloc(kBlock, whole);
  if (p == nullptr) throw std::bad_alloc();
  // Before any write: a page faulted in as 4 KiB stays so.
  advise_huge_pages(p, static_cast<char*>(p) + whole, kBlock);
  return p;
}

void free_pages(void* p, std::size_t bytes) noexcept {
  if (bytes < kPagedBytes)
    ::operator delete(p);
  else
    std::free(p);
}

}  // namespace chainrule::detail
