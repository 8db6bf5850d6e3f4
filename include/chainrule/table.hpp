// Tabular data in: CSV (RFC 4180, optionally gzip-compressed) and IDX (the MNIST family) files,
// read into typed columns. Every error names the file, line and column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "chainrule/types.hpp"

namespace chainrule {

struct CsvOptions {
  char delimiter = ',';
  bool header = true;         ///< false: columns are named c0, c1, ...
  std::size_t skip_rows = 0;  ///< lines to skip before the header (a preamble)
  /// Threads that read the data rows of a large file in spans; 0: the setting of
  /// set_blas_threads (threads.hpp). The table is the same for every count.
  int threads = 0;
  /// Data rows of fewer bytes than this are read on one thread (spans are at least a quarter).
  std::size_t parallel_bytes = std::size_t(1) << 20;
};

/// One column: numbers (missing values are NaN) or text (missing values are empty strings).
struct Column {
  std::string name;
  bool numeric = true;
  std::vector<double> numbers;    ///< when numeric
  std::vector<std::string> text;  ///< when not numeric
  std::size_t field = 0;          ///< 1-based position in the file's rows, for messages
};

/// A table read from a file: columns of equal length, and where each row starts in the file.
struct Table {
  std::string source;  ///< the file name, used in messages
  std::vector<Column> columns;
  std::vector<std::size_t> lines;  ///< 1-based line of each row (empty for binary formats)

  std::size_t rows() const {
    return columns.empty()      ? 0
           : columns[0].numeric ? columns[0].numbers.size()
                                : columns[0].text.size();
  }
  std::size_t cols() const { return columns.size(); }
  /// Index of the column called `name`, or of the 0-based index `name` spells; -1 if none.
  long find(std::string_view name) const;
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
Batch<T> read_idx_images(const std::string& path, double scale = 1);
/// IDX labels (N unsigned bytes) as integers. Throws DataError.
std::vector<int> read_idx_labels(const std::string& path);

/// Reads IDX images (`images`, N × rows × cols of unsigned bytes, plain or .gz) as numeric columns
/// px0, px1, ..., and, when `labels` is not empty, the labels (N unsigned bytes) as a last numeric
/// column "label". Throws DataError.
Table read_idx(const std::string& images, const std::string& labels = "");

/// Reads a whole file, decompressing gzip transparently. Throws DataError.
std::string read_file(const std::string& path);

namespace detail {
/// How many CSV texts so far had their data rows read in parallel spans (for the tests).
std::size_t csv_parallel_reads();
}  // namespace detail

}  // namespace chainrule
