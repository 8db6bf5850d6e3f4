#include "chainrule/dataset.hpp"

#include <set>

#include "chainrule/error.hpp"

namespace chainrule {

Dataset::Dataset(const Table& table) : table_(&table) {}

Dataset::Dataset(const CsvScan& scan)
    : table_(&scan.targets()), scan_(&scan), names_(scan.feature_names()) {}

Dataset::Dataset(const MatrixView& X, Targets y, std::vector<std::string> names, std::string source)
    : table_(&targets_), matrix_(X), names_(std::move(names)) {
  if (X.data == nullptr || X.rows < 1 || X.cols < 1)
    throw ConfigError(source + ": expected a matrix of at least one row and one column, got " +
                      std::to_string(X.rows) + " × " + std::to_string(X.cols));
  const Index packed = X.row_major ? X.cols : X.rows;
  if (X.stride != 0 && X.stride < packed)
    throw ConfigError(source + ": a stride of " + std::to_string(X.stride) +
                      " elements is shorter than a " + (X.row_major ? "row" : "column") + " (" +
                      std::to_string(packed) + ")");
  if (names_.empty())
    for (Index c = 0; c < X.cols; ++c)
      names_.push_back("x" + std::to_string(c));
  if (names_.size() != std::size_t(X.cols))
    throw ConfigError(source + ": " + std::to_string(names_.size()) + " feature names for " +
                      std::to_string(X.cols) + " columns");
  std::set<std::string> seen;
  for (const std::string& n : names_)
    if (n.empty() || !seen.insert(n).second)
      throw ConfigError(source + ": feature name '" + n + "' is empty or appears twice");
  targets_.source = std::move(source);
  if (!y.numbers.empty() && !y.labels.empty())
    throw ConfigError(targets_.source + ": targets are numbers or labels, not both");
  const std::size_t n = y.numbers.empty() ? y.labels.size() : y.numbers.size();
  if (n == 0) return;  // predict: no target
  if (n != std::size_t(X.rows))
    throw ConfigError(targets_.source + ": " + std::to_string(n) + " targets for " +
                      std::to_string(X.rows) + " rows");
  if (seen.count(y.name))
    throw ConfigError(targets_.source + ": the target's name '" + y.name + "' is also a feature's");
  Column c;
  c.name = y.name;
  c.field = names_.size() + 1;
  c.numeric = !y.numbers.empty();
  c.numbers.assign(y.numbers.begin(), y.numbers.end());  // (a copy: the table's own buffer type)
  c.text = std::move(y.labels);
  for (std::string& label : c.text)
    if (is_missing(label)) label.clear();  // NA, null ...: missing, as in a CSV file
  targets_.columns.push_back(std::move(c));
}

}  // namespace chainrule
