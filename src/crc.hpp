// The one CRC-32 of the library (zlib's): model checksums and the data fingerprint of checkpoints.
// Internal (not installed).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace chainrule::detail {

/// CRC-32 of `size` bytes at `data` continued from `crc` (0 to start), fed to zlib in pieces of
/// at most 1 GiB (its length is 32 bits).
inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t size) {
  uLong c = crc;
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {
    const std::size_t n = std::min<std::size_t>(size, std::size_t(1) << 30);
    c = ::crc32(c, p, uInt(n));
    p += n;
    size -= n;
  }
  return std::uint32_t(c);
}

}  // namespace chainrule::detail
