// chainrule eval and chainrule predict: replay a model's preprocessing on new data.
#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/trainer.hpp"
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

// Class probabilities (rows, classes) from the network outputs.
Batch<double> probabilities(const Model& m, const Batch<double>& P) {
  if (m.prep.classes.size() != 2) return P;
  Batch<double> Q(P.rows(), 2);
  Q.col(1) = P.col(0);
  Q.col(0) = 1.0 - P.col(0).array();
  return Q;
}

int run_eval(const EvalArgs& a) {
  const Model m = load_model(a.model);
  const Table t = load_table(a.data);
  if (!m.prep.has_target(t))
    throw DataError(a.data.path + ": no target column '" + m.prep.target + "' to evaluate against");
  const auto rows = all_rows(t.rows());
  const Batch<double> X = m.prep.transform<double>(t, rows);
  const Batch<double> Y = m.prep.targets<double>(t, rows);
  const Batch<double> P = run_model(m, X);
  double loss;
  {
    Network<double> net = m.network<double>();
    net.forward(X);
    loss = net.loss(Y);
  }
  nlohmann::json j = {
      {"model", a.model}, {"data", a.data.path}, {"rows", t.rows()}, {"loss", loss}};
  if (m.prep.task == Task::classify) {
    const std::size_t K = m.prep.classes.size();
    const Batch<double> Q = probabilities(m, P);
    const std::vector<int> truth = m.prep.class_ids(t);
    std::vector<std::vector<long>> confusion(K, std::vector<long>(K, 0));
    long correct = 0;
    for (Index n = 0; n < Q.rows(); ++n) {
      Index pred;
      Q.row(n).maxCoeff(&pred);
      ++confusion[std::size_t(truth[std::size_t(n)])][std::size_t(pred)];
      correct += pred == truth[std::size_t(n)];
    }
    j["accuracy"] = double(correct) / double(t.rows());
    j["classes"] = nlohmann::json::array();
    for (std::size_t k = 0; k < K; ++k) {
      long tp = confusion[k][k], predicted = 0, actual = 0;
      for (std::size_t i = 0; i < K; ++i) {
        predicted += confusion[i][k];
        actual += confusion[k][i];
      }
      const double precision = predicted ? double(tp) / double(predicted) : 0.0;
      const double recall = actual ? double(tp) / double(actual) : 0.0;
      const double f1 =
          precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
      j["classes"].push_back({{"class", m.prep.classes[k]},
                              {"precision", precision},
                              {"recall", recall},
                              {"f1", f1},
                              {"support", actual}});
    }
    j["confusion_matrix"] = confusion;  // rows: true class, columns: predicted class
  } else {
    double se = 0, ae = 0, mean = 0;
    std::vector<double> y(std::size_t(t.rows())), p(y.size());
    for (Index n = 0; n < P.rows(); ++n) {
      y[std::size_t(n)] = Y(n, 0) * m.prep.target_scale + m.prep.target_center;
      p[std::size_t(n)] = P(n, 0) * m.prep.target_scale + m.prep.target_center;
      mean += y[std::size_t(n)];
    }
    mean /= double(y.size());
    double st = 0;
    for (std::size_t n = 0; n < y.size(); ++n) {
      se += (y[n] - p[n]) * (y[n] - p[n]);
      ae += std::abs(y[n] - p[n]);
      st += (y[n] - mean) * (y[n] - mean);
    }
    j["mse"] = se / double(y.size());
    j["mae"] = ae / double(y.size());
    j["r2"] = st > 0 ? 1 - se / st : 0.0;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return kOk;
  }
  fmt::print("{} rows of {}, model {}\nloss {:.6f}\n", t.rows(), a.data.path, a.model, loss);
  if (m.prep.task == Task::regress) {
    fmt::print("mse {:.6g}\nmae {:.6g}\nr2 {:.6f}\n", j["mse"].get<double>(),
               j["mae"].get<double>(), j["r2"].get<double>());
    return kOk;
  }
  fmt::print("accuracy {:.4f}\n\n{:>12} {:>9} {:>9} {:>9} {:>8}\n", j["accuracy"].get<double>(),
             "class", "precision", "recall", "f1", "support");
  for (const auto& c : j["classes"])
    fmt::print("{:>12} {:>9.4f} {:>9.4f} {:>9.4f} {:>8}\n", c["class"].get<std::string>(),
               c["precision"].get<double>(), c["recall"].get<double>(), c["f1"].get<double>(),
               c["support"].get<long>());
  fmt::print("\nconfusion matrix (rows: true class, columns: predicted)\n{:>12}", "");
  for (const auto& c : m.prep.classes)
    fmt::print(" {:>8}", c);
  fmt::print("\n");
  for (std::size_t k = 0; k < m.prep.classes.size(); ++k) {
    fmt::print("{:>12}", m.prep.classes[k]);
    for (long v : j["confusion_matrix"][k].get<std::vector<long>>())
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
  const Model m = load_model(a.model);
  const Table t = load_table(a.data);
  std::vector<const Column*> keep;
  for (const std::string& k : split_list(a.keep)) {
    const long c = t.find(k);
    if (c < 0) throw DataError(a.data.path + ": no column '" + k + "' to --keep");
    keep.push_back(&t.columns[std::size_t(c)]);
  }
  const auto rows = all_rows(t.rows());
  const Batch<double> P = run_model(m, m.prep.transform<double>(t, rows));

  std::string out;
  for (const Column* c : keep)
    out += csv_field(c->name) + ",";
  if (m.prep.task == Task::classify) {
    out += csv_field(m.prep.target);
    for (const auto& c : m.prep.classes)
      out += "," + csv_field("p_" + c);
  } else {
    out += csv_field(m.prep.target);
  }
  out += "\n";
  const Batch<double> Q = m.prep.task == Task::classify ? probabilities(m, P) : P;
  for (Index n = 0; n < Q.rows(); ++n) {
    for (const Column* c : keep)
      out += csv_field(cell_text(*c, std::size_t(n))) + ",";
    if (m.prep.task == Task::classify) {
      Index k;
      Q.row(n).maxCoeff(&k);
      out += csv_field(m.prep.classes[std::size_t(k)]);
      for (Index j = 0; j < Q.cols(); ++j)
        out += fmt::format(",{:.6g}", Q(n, j));
    } else {
      out += format_number(P(n, 0) * m.prep.target_scale + m.prep.target_center);
    }
    out += "\n";
  }
  if (a.out.empty())
    std::cout << out << std::flush;
  else
    write_file_atomically(a.out, out);
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
