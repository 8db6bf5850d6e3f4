// Test helper: the VmFlags of a mapping of this process (MADV_HUGEPAGE shows as "hg").
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

// The VmFlags of the mapping that holds `p` (/proc/self/smaps), or "" where none does.
inline std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &lo, &hi) == 2 && line.find(':') > 8 &&
        line.find('-') < line.find(' '))
      inside = a >= lo && a < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return "";
}
