// Tabular data in: CSV (RFC 4180, optionally gzip-compressed) and IDX (the MNIST family) files,
// read into typed columns. Every error names the file, line and column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chainrule/buffer.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

struct CsvOptions {
  char delimiter = ',';
  bool header = true;         ///< false: columns are named c0, c1, ...
  std::size_t skip_rows = 0;  ///< lines to skip before the header (a preamble)
  /// Threads that read the data rows of a large file in spans (0 counts as 1). The table is
  /// the same for every count.
  int threads = 1;
  /// Data rows of fewer bytes than this are read on one thread (spans are at least a quarter).
  std::size_t parallel_bytes = std::size_t(1) << 20;
  /// Numbers written with a decimal comma (1,5) under another delimiter are read as numbers.
  /// Without it, a column of them is read as text and the table gets a Note saying so.
  bool decimal_comma = false;
  /// Bytes the file may hold once decompressed (0: default_max_input_bytes(), file_io.hpp),
  /// checked as it is read: a LimitError beyond.
  std::uint64_t max_bytes = 0;
  /// CsvScan (csv_scan.hpp): the text read and parsed at a time, at least 64 KiB. Each pass holds
  /// this and its doubles (about as many bytes again), whatever the file's size.
  std::size_t scan_block_bytes = std::size_t(16) << 20;
};

/// One column: numbers (missing values are NaN) or text (missing values are empty strings).
struct Column {
  std::string name;
  bool numeric = true;
  PagedVector<double> numbers;    ///< when numeric (large columns in huge pages: buffer.hpp)
  std::vector<std::string> text;  ///< when not numeric
  std::size_t field = 0;          ///< 1-based position in the file's rows, for messages
};

/// Something a reader or trainer noticed that is not an error but may be a mistake (a column of
/// numbers read as text). `option` names the library option that changes it, empty if none.
struct Note {
  std::string text;
  std::string option;
};

/// A table read from a file: columns of equal length, and where each row starts in the file.
struct Table {
  std::string source;  ///< the file name, used in messages
  std::vector<Column> columns;
  std::vector<std::size_t> lines;  ///< 1-based line of each row (empty for binary formats)
  /// When `lines` is empty and this is not 0: row r is on line first_line + r (a file without
  /// blank lines between its rows, whose lines need not be kept one by one).
  std::size_t first_line = 0;
  std::vector<Note> notes;  ///< what the reader noticed (see Note)

  std::size_t rows() const {
    return columns.empty()      ? 0
           : columns[0].numeric ? columns[0].numbers.size()
                                : columns[0].text.size();
  }
  std::size_t cols() const { return columns.size(); }
  /// Index of the column called `name`, or of the 0-based index `name` spells; -1 if none.
  long find(std::string_view name) const;
  /// The 1-based line of row `row`, 0 if not known.
  std::size_t line_of(std::size_t row) const {
    return row < lines.size() ? lines[row] : lines.empty() && first_line > 0 ? first_line + row : 0;
  }
  /// "file:line:field" for a cell, as far as it is known.
  std::string where(std::size_t row, const Column& column) const;
};

/// Shortest text that reads back as the same double ("1", "2.5", "0.1").
std::string format_number(double v);

/// Missing-value spellings: the empty field, NA, NaN (any case), N/A, null.
bool is_missing(std::string_view field);

/// Parses CSV text. `source` names it in messages. Throws DataError.
Table parse_csv(std::string_view text, const std::string& source, const CsvOptions& options = {});

/// Reads a CSV file, gzip-compressed or not (detected from its content). Throws DataError.
Table read_csv(const std::string& path, const CsvOptions& options = {});

/// IDX images straight into a matrix (N, rows·cols) of pixel·scale, with no table in between:
/// sizeof(T) bytes per pixel, for data sets too large for a table of doubles. Throws DataError.
template <class T>
Batch<T> read_idx_images(const std::string& path, double scale = 1, std::uint64_t max_bytes = 0);
/// IDX labels (N unsigned bytes) as integers. Throws DataError.
/// With parts > 1, only labels [N·part/parts, N·(part+1)/parts), as read_idx_pixels.
std::vector<int> read_idx_labels(const std::string& path, std::uint64_t max_bytes = 0, int part = 0,
                                 int parts = 1);

/// Reads IDX images (`images`, N × rows × cols of unsigned bytes, plain or .gz) as numeric columns
/// px0, px1, ..., and, when `labels` is not empty, the labels (N unsigned bytes) as a last numeric
/// column "label". Throws DataError.
/// `max_bytes` bounds the data an IDX header may declare (0: default_max_input_bytes()), checked
/// before it is read; the stream must then hold exactly that much.
Table read_idx(const std::string& images, const std::string& labels = "",
               std::uint64_t max_bytes = 0);

class Group;
/// This process's part of a CSV file read by several processes together (group.hpp): the
/// records from the first record boundary at or after byte size·rank/processes to the first at or
/// after the next process's cut, so that the parts, in rank order, are the whole file; no
/// process reads more than its part (and the header). Columns are typed by the counts of every
/// process, so every part has the same columns of the same types, those a single read_csv
/// gives. The file must be a regular, uncompressed file. Collective; throws DataError on the
/// process whose part holds the first error, PeerError on the others.
Table read_csv_shard(const std::string& path, const CsvOptions& options, const Group& group);

namespace detail {
/// How many CSV texts so far had their data rows read in parallel spans (for the tests).
std::size_t csv_parallel_reads();
/// How many CSV files so far were read in blocks rather than whole (for the tests).
std::size_t csv_block_reads();
}  // namespace detail

}  // namespace chainrule
