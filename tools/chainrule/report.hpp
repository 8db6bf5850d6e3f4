// The training report (chainrule report, chainrule train --report): one self-contained HTML
// file with the run, its curves, its metrics on a data file and the network (docs/report.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chainrule/fit.hpp"
#include "chainrule/model.hpp"
#include "data_args.hpp"
#include "lang.hpp"

namespace chainrule::cli {

/// Everything a report shows. A report of a run in progress has settings and history but no
/// model yet.
struct ReportInput {
  Lang lang = Lang::en;
  enum class Status { running, done, interrupted } status = Status::done;
  std::optional<TrainingSettings> settings;
  const Model* model = nullptr;
  std::vector<EpochReport> history;
  std::string train_data;  ///< the training data file, when known
  double seconds = -1;     ///< training wall time, when known
  // With a data file: the model's metrics on it, and for regression its predictions.
  std::string eval_data;
  std::optional<Evaluation> eval;
  std::vector<double> truth, predicted;  ///< regression, in the target's units
  std::size_t gradient_rows = 0;         ///< rows the gradients below were averaged over
  std::vector<std::vector<double>> weight_gradients;  ///< per layer, ∂L/∂W on those rows
};

/// Fills the data-dependent parts of `in` (evaluation, predictions, gradients) from `data`.
void add_data(ReportInput& in, const Model& model, const LoadedData& data, const std::string& path);

/// The report page.
std::string report_html(const ReportInput& in);

}  // namespace chainrule::cli
