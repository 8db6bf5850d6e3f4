// Preprocessing: from a Table to the matrices a network trains on, and back to labels. Fitted on
// the training split only, stored in the model, replayed by eval, predict and explain.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chainrule/dataset.hpp"
#include "chainrule/table.hpp"
#include "chainrule/types.hpp"

namespace chainrule {

class Group;

enum class Scale { standard, minmax, none };
enum class Task { classify, regress };
/// Missing feature values: an error (none), or filled (mean): a numeric gap with the training
/// mean, a text gap with a category of its own ("", the input '<column>=').
enum class Impute { none, mean };

/// The name used on the command line and in model files.
std::string_view to_string(Scale s);
/// The name used on the command line and in model files.
std::string_view to_string(Task t);
/// Inverse of to_string; throws ConfigError naming the allowed values.
Scale parse_scale(std::string_view s);
/// Inverse of to_string; throws ConfigError naming the allowed values.
Task parse_task(std::string_view s);

struct PreprocessOptions {
  std::string target;             ///< column name or 0-based index; empty: the last column
  std::vector<std::string> drop;  ///< columns to ignore (names or indices)
  Scale scale = Scale::standard;
  Impute impute = Impute::none;
  std::optional<Task> task;  ///< empty: inferred from the target
  /// Limits checked before anything of that size is allocated (LimitError beyond): the
  /// categories of one text feature (each is a network input) and the classes of the target.
  std::size_t max_categories = 10000;
  std::size_t max_classes = 10000;
  /// Classification with its classes known ahead (scikit-learn's partial_fit `classes`): the
  /// model's outputs are these, whether or not each occurs among the rows, and a target value
  /// outside them is a DataError. class_values for a numeric target, class_labels for text;
  /// both empty: the classes the rows hold.
  std::vector<double> class_values;
  std::vector<std::string> class_labels;
};

/// One input column and how it becomes network inputs.
struct Feature {
  std::string name;
  bool numeric = true;
  double center = 0, scale = 1;         ///< numeric: x' = (x - center) / scale
  double fill = 0;                      ///< numeric: the value of a missing x under --impute mean
  std::vector<std::string> categories;  ///< text: one input per category (sorted), one-hot
};

/// One network input: the feature it comes from and its name.
struct InputColumn {
  std::size_t feature = 0;  ///< index into Preprocessor::features
  long category = -1;       ///< text feature: index into its categories (one-hot); numeric: -1
  Index offset = 0;         ///< its column in the network input (transform's matrix)
  std::string name;         ///< the feature's name, or "name=category" for a one-hot input
};

struct Preprocessor {
  std::vector<Feature> features;
  std::string target;
  Task task = Task::classify;
  bool target_numeric = true;
  std::vector<std::string> classes;            ///< classify: labels in sorted order
  std::vector<double> class_values;            ///< classify with a numeric target: the numbers
  double target_center = 0, target_scale = 1;  ///< regress: y' = (y - center) / scale
  Scale scale = Scale::standard;
  Impute impute = Impute::none;

  /// Number of network inputs (one per numeric feature, one per category of a text feature).
  Index inputs() const;
  /// The network inputs in order, one entry each: the one place that lays out one-hot columns
  /// (transform, the ONNX export and explain read it).
  std::vector<InputColumn> input_layout() const;
  /// Number of network outputs: 1 for regression and two classes, else one per class.
  Index outputs() const;
  /// A regression output in the target's units: the inverse of the target's scaling.
  double target_value(double y) const { return y * target_scale + target_center; }

  /// Fits the target (task, classes) on every row and the features on `train_rows` only; a
  /// large table's statistics on `threads` threads, the same numbers for every count.
  static Preprocessor fit(const Dataset& data, std::span<const std::size_t> train_rows,
                          const PreprocessOptions& options, int threads = 1);
  /// Fits only the target part (used first, to stratify the validation split).
  static Preprocessor fit_target(const Table& table, const PreprocessOptions& options);
  /// Fits the features on `train_rows` to the target part `target` (fit_target's). With a
  /// group (several processes, each holding a part of the rows), on every process's rows:
  /// every process gets the same preprocessing, as one process with all the rows would get it
  /// up to the order of additions.
  static Preprocessor fit_features(Preprocessor target, const Dataset& data,
                                   std::span<const std::size_t> train_rows,
                                   const PreprocessOptions& options, const Group* group = nullptr,
                                   int threads = 1);

  /// Class index (classify) of every row, -1 where the target is missing; throws DataError on
  /// an unknown label.
  std::vector<int> class_ids(const Table& table) const;
  /// The rows whose target is present: the examples (a row with a missing target is none).
  std::vector<std::size_t> rows_with_target(const Table& table) const;
  /// Network inputs (rows, inputs()). Columns are matched by name, in any order. A large
  /// matrix is written in `threads` row spans at once; the matrix is the same for every count.
  template <class T>
  Batch<T> transform(const Dataset& data, std::span<const std::size_t> rows, int threads = 1) const;
  /// transform of the training rows and of the validation rows: for a file read in passes
  /// (CsvScan), in one pass over it instead of two.
  template <class T>
  std::pair<Batch<T>, Batch<T>> transform_split(const Dataset& data,
                                                std::span<const std::size_t> train,
                                                std::span<const std::size_t> validation,
                                                int threads = 1) const;
  /// Network targets (rows, outputs()): one-hot, 0/1 for two classes, or the scaled value.
  template <class T>
  Batch<T> targets(const Table& table, std::span<const std::size_t> rows) const;
  /// Whether the table holds the target column.
  bool has_target(const Table& table) const { return table.find(target) >= 0; }
};

/// Splits rows 0..n-1 into training and validation rows: a `fraction` of them (rounded) go to
/// validation, drawn at random from `rng`, per class when `strata` is given (stratified).
struct Split {
  std::vector<std::size_t> train, validation;
};
class Rng;
Split split_rows(std::size_t n, double fraction, Rng& rng,
                 const std::vector<int>* strata = nullptr);

/// 0, 1, ..., n-1 (from 1 MiB up in whole 2 MiB blocks asking for huge pages: buffer.hpp).
PagedVector<std::size_t> all_rows(std::size_t n);

}  // namespace chainrule
