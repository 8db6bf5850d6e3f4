// Internal: the pages of a large new buffer, faulted in by one call ahead of its first writes, or
// asked to be huge pages.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

/// The free 2 MiB blocks that a /proc/buddyinfo text counts: the free blocks of each order in
/// every zone, where an order-9 block is one and an order-10 block two.
inline std::uint64_t huge_blocks_in_buddyinfo(const char* text) {
  std::uint64_t blocks = 0;
  for (const char* p = text; (p = std::strstr(p, "zone")) != nullptr;) {
    p += 4;
    while (*p == ' ')
      ++p;
    while (*p && *p != ' ' && *p != '\n')
      ++p;  // the zone's name
    for (int order = 0;; ++order) {
      while (*p == ' ')
        ++p;
      if (*p < '0' || *p > '9') break;
      char* end = nullptr;
      const unsigned long long n = std::strtoull(p, &end, 10);
      if (order >= 9 && order < 40) blocks += std::uint64_t(n) << (order - 9);
      p = end;
    }
  }
  return blocks;
}

/// 2 MiB blocks the kernel has free now (/proc/buddyinfo); 0 where it cannot be read.
inline std::uint64_t free_huge_blocks() {
#ifdef __linux__
  std::FILE* f = std::fopen("/proc/buddyinfo", "re");
  if (!f) return 0;
  char text[8192];
  const std::size_t n = std::fread(text, 1, sizeof text - 1, f);
  std::fclose(f);
  text[n] = 0;
  return huge_blocks_in_buddyinfo(text);
#else
  return 0;
#endif
}

/// Asks for transparent huge pages over the whole 2 MiB blocks of [begin, end), a new buffer of at
/// least 4 MiB that is about to be written whole (MADV_HUGEPAGE, as numpy asks for its arrays):
/// one page fault per 2 MiB instead of 512, and one TLB entry. On the virtual machines of this
/// project's sessions a 4 KiB page's first write cost 5-12 µs, and freeing any large buffer made
/// the next touch of every 4 KiB page cost about 5 µs again; huge pages took W2's 188 MB matrix
/// from 0.41-0.53 s to 0.17-0.20 s (docs/design-notes.md, "Large buffers"). Asked only when the
/// kernel has free 2 MiB blocks for all of it and half again, so that no fault waits while the
/// kernel compacts memory to make them (1.6 s for 200 MB on one machine). CHAINRULE_HUGE_PAGES=0
/// turns it off. Returns whether they were asked for; the caller may prefault otherwise.
/// `min_bytes`: the smallest buffer asked for (a PageAllocator's are whole blocks from 1 MiB).
inline bool advise_huge_pages(const void* begin, const void* end,
                              std::uintptr_t min_bytes = std::uintptr_t(1) << 22) {
#ifdef __linux__
  constexpr std::uintptr_t kHuge = std::uintptr_t(1) << 21;
  static const bool allowed = [] {
    const char* v = std::getenv("CHAINRULE_HUGE_PAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  const auto a = (reinterpret_cast<std::uintptr_t>(begin) + kHuge - 1) & ~(kHuge - 1);
  const auto b = reinterpret_cast<std::uintptr_t>(end) & ~(kHuge - 1);
  if (!allowed || b <= a ||
      reinterpret_cast<std::uintptr_t>(end) - reinterpret_cast<std::uintptr_t>(begin) < min_bytes)
    return false;
  const std::uint64_t need = (b - a) / kHuge;
  if (free_huge_blocks() < need + need / 2) return false;
  return ::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE) == 0;
#else
  (void)begin;
  (void)end;
  return false;
#endif
}

}  // namespace chainrule::detail
