// Options shared by the commands that read data files (train, eval, predict, explain).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chainrule/dataset.hpp"
#include "chainrule/model.hpp"
#include "chainrule/table.hpp"

namespace chainrule::cli {

struct DataArgs {
  std::string path;
  std::string labels;  ///< IDX labels file
  std::string delimiter = ",";
  bool no_header = false;
  std::size_t skip_rows = 0;
  bool decimal_comma = false;
  std::string max_input;  ///< --max-input-size; a limit of this machine, not a setting to store
};
// As JSON, for the settings a checkpoint stores.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DataArgs, path, labels, delimiter, no_header,
                                                skip_rows, decimal_comma)

/// Adds DATA (positional) and --labels, --delimiter, --no-header, --skip-rows to `app`.
void add_data_options(CLI::App* app, DataArgs& args);

/// Reads the data file as a table: IDX when --labels is given or the name ends in "-ubyte"
/// (optionally ".gz"), CSV otherwise.
Table load_table(const DataArgs& args);

/// How train reads a CSV file (--stream): in passes straight from the file (CsvScan) when `mode`
/// is "on" and the file allows it, or "auto" and it is also CsvScan::large; whole ("off", and
/// under mpirun, where each process holds its part alone).
struct Stream {
  std::string mode = "off";
  std::string target;  ///< the target column, as --target gives it (empty: the last)
};

/// A data file as train, eval and predict read it: a CSV table, a numeric CSV file read in passes
/// (train, --stream), or IDX images kept as their bytes (a u8 matrix read in place: one byte per
/// pixel, not a table of doubles) with their labels.
class LoadedData {
 public:
  /// With a group (under mpirun): this process's part of the rows (read_csv_shard, or its
  /// share of the IDX images), the parts in rank order making up the file.
  explicit LoadedData(const DataArgs& args, const Group* group = nullptr,
                      const Stream& stream = {});
  const Dataset& dataset() const { return *dataset_; }
  /// The CSV table, or the IDX labels as a column "label" (absent without --labels).
  const Table& table() const { return dataset_->table(); }
  std::size_t rows() const { return dataset_->rows(); }

 private:
  Table table_;
  std::unique_ptr<CsvScan> scan_;
  IdxImages images_;
  std::unique_ptr<Dataset> dataset_;
};

/// Checks an output file before any work: writable (file_io.hpp's check_writable, `stream_ok`:
/// a device or pipe may be written to) and none of `inputs` (an output over an input would
/// destroy data the user may have only there). `flag` and `role` name it in the errors.
void check_output(const std::string& path, const std::string& flag, const std::string& role,
                  const std::vector<std::string>& inputs, bool stream_ok = false);
/// What the CLI tells a user to do about a library option named in a LimitError or Note.
std::string hint_for(const std::string& option);
/// Prints notes as "chainrule: warning: ..." lines with the CLI's hint.
void print_notes(const std::vector<Note>& notes);

/// Comma-separated list ("64,32", "name,id", "layers.0.weight[0,1],layers.1.bias[0]") into its
/// items; commas inside brackets do not split. An empty item is a ConfigError naming `option`.
std::vector<std::string> split_list(const std::string& s, const std::string& option);

/// Validators with messages that say the allowed range.
CLI::Validator positive();            ///< > 0
CLI::Validator at_least(double min);  ///< >= min
CLI::Validator in_unit_interval();    ///< [0, 1)
/// Plain digits that fit in 64 bits (no sign, no exponent).
CLI::Validator whole_number(const std::string& description);

/// Writes a CSV field, quoted when it holds the delimiter, a quote or a line break.
std::string csv_field(const std::string& s, char delimiter = ',');

}  // namespace chainrule::cli
