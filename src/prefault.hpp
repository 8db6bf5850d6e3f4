// Internal: the pages of a large new buffer faulted in by one call ahead of its first writes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace chainrule::detail {

/// Faults in the pages of [begin, end) for writing in one call (MADV_POPULATE_WRITE, Linux 5.14),
/// rather than one page fault per page at the first writes: the kernel's entry and exit once per
/// range instead of once per 4 KiB. W5's 100 MB table of doubles and its 48 MB matrix took half
/// the time to write on a virtual machine whose page faults are slow (docs/design-notes.md,
/// "Reading CSV fast"). Faulting a page in writes nothing to it, so the rounding outwards to whole
/// pages may take in a neighbour's page without harm. On an older kernel, or without the memory,
/// nothing happens and the writes fault as before. For ranges under 256 KiB the call costs more
/// than it saves, and is skipped.
inline void prefault(const void* begin, const void* end) {
#ifdef __linux__
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE, not in every libc's headers
  static const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
  const auto a = reinterpret_cast<std::uintptr_t>(begin) & ~(page - 1);
  const auto b = (reinterpret_cast<std::uintptr_t>(end) + page - 1) & ~(page - 1);
  if (b > a && b - a >= (std::uintptr_t(1) << 18))
    (void)::madvise(reinterpret_cast<void*>(a), b - a, kPopulateWrite);
#else
  (void)begin;
  (void)end;
#endif
}

}  // namespace chainrule::detail
