// What fit, evaluate and predict read: a Table (a CSV or IDX file), features that are already in
// memory (a numpy array, an MPI rank's shard, IDX pixels) as a matrix view read in place, with
// the targets beside it, or a numeric CSV file read in passes (CsvScan). A Table converts
// implicitly, so every Table call site works unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chainrule/csv_scan.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/table.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

/// The element type of a matrix in memory.
enum class ElementType { u8, f32, f64 };

/// A rows × cols matrix owned by the caller, read in place (never copied into a table): row-major
/// (C order, numpy's default) or column-major (Fortran order, Eigen's default), with a stride
/// between rows (row-major) or columns (column-major) of at least the packed one. NaN in a float
/// matrix is a missing value. Each element is multiplied by `scale` when read (IDX pixels: 1/255).
struct MatrixView {
  const void* data = nullptr;
  Index rows = 0, cols = 0;
  ElementType type = ElementType::f64;
  bool row_major = true;
  Index stride = 0;  ///< elements from one row (column) to the next; 0: packed (cols or rows)
  double scale = 1;

  /// Where element (r, c) is, in elements from `data`.
  Index offset(Index r, Index c) const {
    const Index s = stride > 0 ? stride : row_major ? cols : rows;
    return row_major ? r * s + c : c * s + r;
  }
  /// Element (r, c) times scale.
  double at(Index r, Index c) const {
    const Index i = offset(r, c);
    switch (type) {
      case ElementType::u8:
        return double(static_cast<const std::uint8_t*>(data)[i]) * scale;
      case ElementType::f32:
        return double(static_cast<const float*>(data)[i]) * scale;
      case ElementType::f64:
        break;
    }
    return static_cast<const double*>(data)[i] * scale;
  }
};

/// The pixels of an IDX images file, N images of rows·cols unsigned bytes, kept as bytes (one
/// per pixel: the smallest form a network can read them from).
struct IdxImages {
  Bytes pixels;
  Index count = 0, features = 0;
  /// The pixels as a row-major u8 matrix (count, features), each times `scale`.
  MatrixView view(double scale = 1) const {
    return {.data = pixels.data(),
            .rows = count,
            .cols = features,
            .type = ElementType::u8,
            .scale = scale};
  }
};
/// Reads an IDX images file (plain, gzip or a pipe; the declared size checked against
/// `max_bytes`, 0: default_max_input_bytes()). Throws DataError. With parts > 1, keeps only
/// images [N·part/parts, N·(part+1)/parts) (several processes each reading their share; the
/// whole stream is still read and checked).
IdxImages read_idx_pixels(const std::string& path, std::uint64_t max_bytes = 0, int part = 0,
                          int parts = 1);

/// Targets of a matrix's rows, one per row: numbers (regression, or numeric class labels; NaN is
/// missing) or text labels (empty is missing). Leave both empty for predict.
struct Targets {
  std::string name = "y";  ///< the target column's name, stored in the model
  std::vector<double> numbers;
  std::vector<std::string> labels;
};

class Dataset {
 public:
  /// A table: its columns are the features and the target. Not copied: it must outlive this.
  Dataset(const Table& table);  // NOLINT(google-explicit-constructor): a table is a dataset
  /// A matrix of numeric features, read in place (it must outlive this), named `feature_names`
  /// (default x0, x1, ...), with `targets`. `source` names it in messages. Throws ConfigError
  /// when the shapes disagree.
  Dataset(const MatrixView& features, Targets targets = {},
          std::vector<std::string> feature_names = {}, std::string source = "the matrix");
  /// A numeric CSV file read in passes: its target column in memory, its features read from the
  /// file whenever they are needed (each pass over them reads the file again). Not copied: it
  /// must outlive this. The rows a call is given must be in ascending order (as split_rows,
  /// all_rows and rows_with_target give them): statistics are sums in row order.
  explicit Dataset(const CsvScan& scan);
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  std::size_t rows() const {
    return matrix_ ? std::size_t(matrix_->rows) : scan_ ? scan_->rows() : table_->rows();
  }
  const std::string& source() const { return table_->source; }
  /// The table: all columns, or for a matrix or a scan the target column alone (which may be
  /// absent for a matrix).
  const Table& table() const { return *table_; }
  /// The matrix of features, when the features are one.
  const MatrixView* matrix() const { return matrix_ ? &*matrix_ : nullptr; }
  /// The file read in passes, when the features are one.
  const CsvScan* scan() const { return scan_; }
  /// The matrix's (or the file's) feature names.
  const std::vector<std::string>& feature_names() const { return names_; }

 private:
  const Table* table_;
  Table targets_;  // a matrix's target column
  std::optional<MatrixView> matrix_;
  const CsvScan* scan_ = nullptr;
  std::vector<std::string> names_;
};

}  // namespace chainrule
