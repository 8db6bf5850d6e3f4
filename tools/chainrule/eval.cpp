// chainrule eval and chainrule predict: replay a model's preprocessing on new data.
#include <fmt/core.h>

#include <unistd.h>
#include <cmath>
#include <fstream>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/fit.hpp"
#include "commands.hpp"
#include "data_args.hpp"

namespace chainrule::cli {

namespace {

struct EvalArgs {
  std::string model;
  DataArgs data;
  bool json = false;
};

struct PredictArgs {
  std::string model;
  DataArgs data;
  std::string out, keep;
};

int run_eval(const EvalArgs& a) {
  const Model m = load_model(a.model);
  const LoadedData data(a.data);
  const Evaluation e = evaluate(m, data.dataset(), threads());
  nlohmann::json j = {
      {"model", a.model}, {"data", a.data.path}, {"rows", e.rows}, {"loss", e.loss}};
  if (e.skipped > 0) {
    j["rows_without_target"] = e.skipped;
    fmt::print(stderr,
               "chainrule: note: {} rows have no value in the target column '{}': left out\n",
               e.skipped, m.prep.target);
  }
  if (m.prep.task == Task::classify) {
    j["accuracy"] = e.accuracy;
    j["classes"] = nlohmann::json::array();
    for (const ClassMetrics& c : e.classes)
      j["classes"].push_back({{"class", c.label},
                              {"precision", c.precision},
                              {"recall", c.recall},
                              {"f1", c.f1},
                              {"support", c.support}});
    j["confusion_matrix"] = e.confusion;  // rows: true class, columns: predicted class
  } else {
    j["mse"] = e.mse;
    j["mae"] = e.mae;
    j["r2"] = e.r2;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kOk;
  }
  fmt::print("{} rows of {}, model {}\nloss {:.6f}\n", e.rows, a.data.path, a.model, e.loss);
  if (m.prep.task == Task::regress) {
    fmt::print("mse {:.6g}\nmae {:.6g}\nr2 {:.6f}\n", e.mse, e.mae, e.r2);
    return kOk;
  }
  fmt::print("accuracy {:.4f}\n\n{:>12} {:>9} {:>9} {:>9} {:>8}\n", e.accuracy, "class",
             "precision", "recall", "f1", "support");
  for (const ClassMetrics& c : e.classes)
    fmt::print("{:>12} {:>9.4f} {:>9.4f} {:>9.4f} {:>8}\n", c.label, c.precision, c.recall, c.f1,
               c.support);
  fmt::print("\nconfusion matrix (rows: true class, columns: predicted)\n{:>12}", "");
  for (const auto& c : m.prep.classes)
    fmt::print(" {:>8}", c);
  fmt::print("\n");
  for (std::size_t k = 0; k < e.confusion.size(); ++k) {
    fmt::print("{:>12}", m.prep.classes[k]);
    for (long v : e.confusion[k])
      fmt::print(" {:>8}", v);
    fmt::print("\n");
  }
  return kOk;
}

std::string cell_text(const Column& c, std::size_t r) {
  if (!c.numeric) return c.text[r];
  return std::isnan(c.numbers[r]) ? "" : format_number(c.numbers[r]);
}

int run_predict(const PredictArgs& a) {
  if (!a.out.empty()) {
    check_output(a.out, "--out", "the predictions", {a.model, a.data.path, a.data.labels}, true);
  }
  const Model m = load_model(a.model);
  const LoadedData data(a.data);
  const Table& t = data.table();  // a CSV's columns; for IDX images, their labels
  std::vector<const Column*> keep;
  for (const std::string& k : split_list(a.keep, "--keep")) {
    const long c = t.find(k);
    if (c < 0) throw DataError(a.data.path + ": no column '" + k + "' to --keep");
    keep.push_back(&t.columns[std::size_t(c)]);
  }
  const Predictions p = predict(m, data.dataset(), threads());

  // The prediction column is named after the target; when the target itself is kept (to compare),
  // the prediction becomes <target>_predicted, so that the header's names stay distinct.
  std::string predicted = m.prep.target;
  const auto kept = [&](const std::string& name) {
    return std::any_of(keep.begin(), keep.end(), [&](const Column* c) { return c->name == name; });
  };
  while (kept(predicted))
    predicted += "_predicted";
  std::string out;
  for (const Column* c : keep)
    out += csv_field(c->name) + ",";
  out += csv_field(predicted);
  if (m.prep.task == Task::classify)
    for (const auto& c : m.prep.classes)
      out += "," + csv_field("p_" + c);
  out += "\n";
  for (std::size_t n = 0; n < data.rows(); ++n) {
    for (const Column* c : keep)
      out += csv_field(cell_text(*c, n)) + ",";
    if (m.prep.task == Task::classify) {
      out += csv_field(m.prep.classes[p.label[n]]);
      for (Index j = 0; j < p.probabilities.cols(); ++j)
        out += fmt::format(",{:.6g}", p.probabilities(Index(n), j));
    } else {
      out += format_number(p.value[n]);
    }
    out += "\n";
  }
  if (a.out.empty())
    write_all(STDOUT_FILENO, out, "standard output");
  else
    write_output(a.out, out);
  return kOk;
}

}  // namespace

Command add_eval(CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* app =
      root.add_subcommand("eval", "Loss and metrics of a model on a labelled data file");
  app->add_option("MODEL", a->model, "Model file")->required();
  app->add_option("DATA", a->data.path, "CSV or IDX file with the target column")->required();
  add_data_options(app, a->data);
  app->add_flag("--json", a->json, "Print the metrics as JSON");
  return {app, [a] { return run_eval(*a); }};
}

Command add_predict(CLI::App& root) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* app =
      root.add_subcommand("predict", "Predictions of a model for every row of a data file, as CSV");
  app->add_option("MODEL", a->model, "Model file")->required();
  app->add_option("DATA", a->data.path, "CSV or IDX file (the target column may be absent)")
      ->required();
  add_data_options(app, a->data);
  app->add_option("--out", a->out, "CSV file to write (default: standard output)");
  app->add_option("--keep", a->keep, "Columns to copy through, comma-separated (identifiers)");
  return {app, [a] { return run_predict(*a); }};
}

}  // namespace chainrule::cli
