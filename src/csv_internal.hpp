// Internal: what the CSV readers share beyond the fast path (csv.cpp): a regular file read by
// byte ranges, its preamble and header, and the UTF-8 check. The sharded reader (read_csv_shard)
// and the reader in passes (CsvScan, csv_scan.cpp) are built on them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "chainrule/table.hpp"

namespace chainrule::detail {

/// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s);

/// A regular, uncompressed file read by byte ranges (pread).
class RangeFile {
 public:
  /// Opens `path`; a file that is not regular or is gzip-compressed is a DataError that says
  /// `reading` ("several processes read their parts of a file by byte ranges") cannot use it.
  RangeFile(const std::string& path, const std::string& reading);
  /// The same, or null when `path` is not a regular uncompressed file (or cannot be opened).
  static std::unique_ptr<RangeFile> open_plain(const std::string& path);
  ~RangeFile();
  RangeFile(const RangeFile&) = delete;
  RangeFile& operator=(const RangeFile&) = delete;

  std::size_t size() const { return size_; }
  /// Bytes [from, to) (to clipped to the size), appended to `out`. DataError on a read error or
  /// a file that shrank.
  void read(std::size_t from, std::size_t to, std::string& out) const;
  /// The same into dst (room for to - from bytes); returns how many (to clipped to the size).
  std::size_t read(std::size_t from, std::size_t to, char* dst) const;
  /// Whether the file is still the one opened: the same size, modification time and inode.
  bool unchanged() const;

 private:
  RangeFile() = default;
  // Opens and checks; an empty string when it can be read by ranges, else what it is.
  std::string open(const std::string& path);

  std::string path_;
  int fd_ = -1;
  std::size_t size_ = 0;
  std::int64_t mtime_ns_ = 0;
  ino_t inode_ = 0;
};

/// The file's preamble (options.skip_rows lines) and header, or without one its first row, which
/// sets the width: `t`'s columns (named, no values) and where the data rows start (byte and line).
/// Read from a prefix of the file that grows (up to the input limit) until what it needs ends
/// before the prefix does. Returns the prefix. Throws DataError (LimitError for a header longer
/// than the limit).
std::string read_head(const RangeFile& file, const std::string& path, const CsvOptions& options,
                      Table& t, std::size_t& data_start, std::size_t& data_line);

}  // namespace chainrule::detail
