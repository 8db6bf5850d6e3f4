// A numeric CSV file read in passes straight from the file, never held whole: for a table whose
// text and table of doubles would not fit in memory together (a 1 GB CSV file of numbers is
// 1 GB of text and about as much again in doubles; the float32 matrix a network trains on is
// half of that). Each pass parses the file again, in blocks of rows, exactly as read_csv would:
// a Dataset over a CsvScan (dataset.hpp) gives fit, evaluate and predict the same numbers, in the
// same order, as one over read_csv's table, so the same model, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "chainrule/table.hpp"

namespace chainrule {

namespace detail {
class RangeFile;
struct Rows;
}  // namespace detail

class CsvScan {
 public:
  /// Reads `path` once: its header, every field (each a number or missing, except in the target
  /// column, which may hold text labels) and the target column, which is kept. `target`: the
  /// target column's name or 0-based index (empty: the last column).
  /// Returns null when the file needs read_csv instead, which then reads it and reports any error
  /// where it is: not a regular uncompressed file (a pipe, gzip), options.decimal_comma, a field
  /// of a feature column that is not a number or missing, a quoted field, a row of another length,
  /// a NUL byte, no data rows, no such target column. Throws DataError for a header read_csv
  /// would refuse as well. options.max_bytes, when set, bounds the file's size (LimitError); when
  /// 0 nothing does, as the file is never held. The target column it keeps is bounded by
  /// options.max_bytes or default_max_input_bytes() (LimitError).
  static std::unique_ptr<CsvScan> open(const std::string& path, const std::string& target = "",
                                       const CsvOptions& options = {});
  /// Files at least this large are worth reading in passes when nothing says otherwise (the
  /// command line's --stream auto, the Python package's stream='auto'): each pass reads and
  /// parses the file again (about twice the time of one read all told), to hold a fraction of
  /// the memory.
  static constexpr std::uint64_t kLargeBytes = std::uint64_t(256) << 20;
  /// Whether `path` is a file of at least kLargeBytes.
  static bool large(const std::string& path);
  ~CsvScan();
  CsvScan(const CsvScan&) = delete;
  CsvScan& operator=(const CsvScan&) = delete;

  const std::string& source() const { return targets_.source; }
  std::size_t rows() const { return rows_; }
  /// The target column of every row, named as in the file (with the line of each row).
  const Table& targets() const { return targets_; }
  /// The other columns, in the file's order.
  const std::vector<std::string>& feature_names() const { return names_; }
  /// The feature called `name`, or in the file's column whose 0-based index `name` spells: its
  /// index among feature_names(); -1 if none (or the target).
  long find(const std::string& name) const;
  /// Whether `name` (a name, or a 0-based index in the file) is the target column.
  bool is_target(const std::string& name) const { return header_.find(name) == long(target_); }

  /// Consecutive rows [first_row, first_row + rows) of the file.
  class Block {
   public:
    std::size_t first_row = 0, rows = 0;
    /// Feature `j`'s values in these rows (NaN: missing).
    std::span<const double> values(std::size_t j) const { return columns_[j]; }

   private:
    friend class CsvScan;
    std::vector<std::span<const double>> columns_;
  };
  /// Reads the file again, calling `visit` with its rows in blocks, in order. Throws DataError
  /// when the file changed since open (its size, modification time, inode or rows).
  void scan(const std::function<void(const Block&)>& visit) const;
  /// Feature `j`'s value in row `row`: a pass over the file up to it (for messages).
  double value(std::size_t row, std::size_t j) const;
  /// "file:line:field" of feature `j` in row `row`.
  std::string where(std::size_t row, std::size_t j) const;

 private:
  CsvScan() = default;
  /// Calls f(rows, first_row, text) for each block of whole rows, in order, the fields that are
  /// not plain numbers parsed into `rows.values` (NaN when missing or text). `target_labels`, if
  /// given, counts the target's fields that are text. False when some row needs read_csv.
  bool blocks(const std::function<bool(detail::Rows&, std::size_t, std::string_view)>& f,
              std::size_t* target_labels = nullptr) const;
  bool read_target_labels();
  [[noreturn]] void changed() const;
  // A LimitError when the target column (`bytes` of it) outgrows the input limit.
  void check_room(std::uint64_t bytes) const;

  std::unique_ptr<detail::RangeFile> file_;
  Table header_;   // every column, named, without values
  Table targets_;  // the target column, every row
  std::vector<std::string> names_;
  std::vector<std::size_t> columns_;  // the file column of each feature
  std::size_t target_ = 0;            // the target's file column
  std::size_t data_start_ = 0, data_line_ = 1, rows_ = 0;
  char delimiter_ = ',';
  int threads_ = 1;
  std::size_t block_bytes_ = 0, parallel_bytes_ = 0;
  std::uint64_t max_bytes_ = 0;
};

}  // namespace chainrule
