// Options shared by the commands that read data files (train, eval, predict, explain).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chainrule/model.hpp"
#include "chainrule/table.hpp"

namespace chainrule::cli {

struct DataArgs {
  std::string path;
  std::string labels;  ///< IDX labels file
  std::string delimiter = ",";
  bool no_header = false;
  std::size_t skip_rows = 0;
};
// As JSON, for the settings a checkpoint stores.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DataArgs, path, labels, delimiter, no_header, skip_rows)

/// Adds DATA (positional) and --labels, --delimiter, --no-header, --skip-rows to `app`.
void add_data_options(CLI::App* app, DataArgs& args);

/// Reads the data file: IDX when --labels is given or the name ends in "-ubyte" (optionally
/// ".gz"), CSV otherwise.
Table load_table(const DataArgs& args);

/// Comma-separated list ("64,32" or "name,id") into its items; empty items are dropped.
std::vector<std::string> split_list(const std::string& s);

/// Validators with messages that say the allowed range.
CLI::Validator positive();            ///< > 0
CLI::Validator at_least(double min);  ///< >= min
CLI::Validator in_unit_interval();    ///< [0, 1)

/// Writes a CSV field, quoted when it holds the delimiter, a quote or a line break.
std::string csv_field(const std::string& s, char delimiter = ',');

}  // namespace chainrule::cli
