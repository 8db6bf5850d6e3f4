// Rows picked out of a large matrix into a batch's rows (the trainer's shuffled batches).
#pragma once

#include <algorithm>
#include <cstring>
#include <span>

#include "chainrule/types.hpp"

namespace chainrule::detail {

// Copies rows rows[0..n) of X into the rows of `out` (n rows of X.cols(), `stride` apart). The
// rows lie scattered through a matrix far larger than the caches: each row's memory is asked for
// some rows ahead (about 12 KiB ahead; at least 4 rows, at most 32 for short rows such as a
// class's one-hot targets), so that the copies do not wait for memory one row at a time.
template <class T>
void gather_rows(const BatchView<T>& X, std::span<const Index> rows, T* out, Index stride) {
  const std::size_t row_bytes = std::size_t(X.cols()) * sizeof(T), n = rows.size();
  if (row_bytes == 0) return;
  constexpr std::size_t kAheadBytes = 4 * 784 * sizeof(float);  // 4 Fashion-MNIST rows
  const std::size_t ahead = std::clamp<std::size_t>(kAheadBytes / row_bytes, 4, 32);
  const auto prefetch = [&](Index r) {
    const char* p = reinterpret_cast<const char*>(X.row(r).data());
    for (std::size_t b = 0; b < row_bytes; b += 64)
      __builtin_prefetch(p + b);
  };
  for (std::size_t i = 0; i < std::min(ahead, n); ++i)
    prefetch(rows[i]);
  for (std::size_t i = 0; i < n; ++i) {
    if (i + ahead < n) prefetch(rows[i + ahead]);
    std::memcpy(out + Index(i) * stride, X.row(rows[i]).data(), row_bytes);
  }
}

}  // namespace chainrule::detail
