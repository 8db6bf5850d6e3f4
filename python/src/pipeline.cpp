// chainrule.train, evaluate, predict and explain: the command line's pipeline (chainrule train,
// eval, predict, explain MODEL DATA --row N) from Python, on a CSV file read by read_csv or on a
// pandas DataFrame converted to a Table here. The options are FitOptions' fields under the
// library's names; what is not given keeps FitOptions{}'s default, as the command line's do, so
// the same file and seed give the same model bytes. The Python signatures, the check of keyword
// names and the pandas results are in chainrule/pipeline.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>

#include "chainrule/error.hpp"
#include "chainrule/explain.hpp"
#ifdef CHAINRULE_HAVE_MPI
#include "chainrule/mpi.hpp"
#endif
#include "chainrule/fit.hpp"
#include "chainrule/init.hpp"
#include "chainrule/metrics.hpp"
#include "chainrule/model.hpp"
#include "chainrule/threads.hpp"

#include "engine_call.hpp"

namespace py = pybind11;
using namespace chainrule;
using chainrule::python::BlasOnOneThread;
using chainrule::python::SigintWatch;

namespace {

// ---- data: a CSV file or a DataFrame as a Table -------------------------------------------------

// A DataFrame's columns in order: numeric dtypes (int, unsigned, float, pandas' nullable ones) as
// numeric columns with NaN for missing; every other dtype (object, string, category, bool,
// datetime) as text, with None/NaN/NaT as the missing value "" and anything else as str(value).
Table table_of_frame(const py::object& frame) {
  Table t;
  t.source = "the DataFrame";
  std::size_t field = 0;
  for (const py::handle item : frame.attr("items")()) {
    const py::tuple pair = py::reinterpret_borrow<py::tuple>(item);
    const py::object series = pair[1];
    Column c;
    c.name = py::str(pair[0]).cast<std::string>();
    c.field = ++field;
    const std::string kind = series.attr("dtype").attr("kind").cast<std::string>();
    c.numeric = kind == "i" || kind == "u" || kind == "f";
    if (c.numeric) {
      const auto values =
          series.attr("to_numpy")(py::arg("dtype") = "float64", py::arg("na_value") = std::nan(""))
              .cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
      c.numbers.assign(values.data(), values.data() + values.size());
    } else {
      const auto missing = series.attr("isna")().attr("to_numpy")().cast<py::array_t<bool>>();
      const py::array values = series.attr("astype")("object").attr("to_numpy")();
      const py::list cells = values.attr("tolist")();
      c.text.reserve(cells.size());
      for (std::size_t r = 0; r < cells.size(); ++r)
        c.text.push_back(missing.at(py::ssize_t(r)) ? std::string()
                                                    : py::str(cells[r]).cast<std::string>());
    }
    t.columns.push_back(std::move(c));
  }
  return t;
}

template <class T>
T get(const py::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : fallback;
}

// The processes of an MPI job, when this one was started by mpirun with others (MPI is
// initialized on the first call, and finalized when the interpreter exits); else null.
const Group* mpi_group() {
#ifdef CHAINRULE_HAVE_MPI
  static const std::unique_ptr<mpi::Session> session = [] {
    return mpi::launched() ? std::make_unique<mpi::Session>() : nullptr;
  }();
  const Group* g = session ? session->group() : nullptr;
  return g && g->size() > 1 ? g : nullptr;
#else
  return nullptr;
#endif
}

// `data` is a path (str) read with read_csv and the CSV options in `csv` (the command line's
// --delimiter, --no-header, --skip-rows, --decimal-comma), or a DataFrame. With a group, a path
// is read in parts (read_csv_shard), and a DataFrame is this process's part of the rows.
CsvOptions csv_options(const py::dict& csv) {
  const CsvOptions defaults;
  const std::string delimiter =
      get<std::string>(csv, "delimiter", std::string(1, defaults.delimiter));
  if (delimiter.size() != 1)
    throw ConfigError("delimiter must be one character, got '" + delimiter + "'", "delimiter");
  CsvOptions o{
      .delimiter = delimiter[0],
      .header = get<bool>(csv, "header", defaults.header),
      .skip_rows = get<std::size_t>(csv, "skip_rows", defaults.skip_rows),
      .threads = std::clamp(get<int>(csv, "threads", available_cores()), 1, available_cores()),
      .decimal_comma = get<bool>(csv, "decimal_comma", defaults.decimal_comma)};
  if (o.decimal_comma && o.delimiter == ',')
    throw ConfigError("decimal_comma needs another delimiter than ',' (such as ';')",
                      "decimal_comma");
  return o;
}

Table table_of(const py::object& data, const py::dict& csv, const Group* group = nullptr) {
  if (!py::isinstance<py::str>(data)) return table_of_frame(data);
  const CsvOptions o = csv_options(csv);
  const std::string path = data.cast<std::string>();
  py::gil_scoped_release release;
  return group ? read_csv_shard(path, o, *group) : read_csv(path, o);
}

py::list notes_of(const std::vector<Note>& notes) {
  py::list out;
  for (const Note& n : notes)
    out.append(py::make_tuple(n.text, n.option));
  return out;
}

// ---- options: FitOptions under the library's names ----------------------------------------------

std::vector<std::string> names_of(const py::object& list) {
  std::vector<std::string> out;
  if (list.is_none()) return out;
  if (py::isinstance<py::str>(list) || py::isinstance<py::int_>(list))
    return {py::str(list).cast<std::string>()};
  for (const py::handle item : list)
    out.push_back(py::str(item).cast<std::string>());
  return out;
}

FitOptions fit_options(const py::dict& d) {
  FitOptions o;  // every default is FitOptions{}'s, as the command line's are
  if (d.contains("target") && !d["target"].is_none())
    o.data.target = py::str(d["target"]).cast<std::string>();
  if (d.contains("drop")) o.data.drop = names_of(d["drop"]);
  if (d.contains("scale")) o.data.scale = parse_scale(d["scale"].cast<std::string>());
  if (d.contains("impute")) {
    const std::string impute = d["impute"].cast<std::string>();
    if (impute != "none" && impute != "mean")
      throw ConfigError("impute must be none or mean, got '" + impute + "'", "impute");
    o.data.impute = impute == "mean" ? Impute::mean : Impute::none;
  }
  if (d.contains("task")) o.data.task = parse_task(d["task"].cast<std::string>());
  o.data.max_categories = get<std::size_t>(d, "max_categories", o.data.max_categories);
  o.data.max_classes = get<std::size_t>(d, "max_classes", o.data.max_classes);
  if (d.contains("layers")) {
    const py::object layers = d["layers"];
    o.layers = py::isinstance<py::int_>(layers) ? std::vector<Index>{layers.cast<Index>()}
                                                : layers.cast<std::vector<Index>>();
    for (const Index units : o.layers)
      if (units < 1 || units > 1'000'000)
        throw ConfigError("layers: " + std::to_string(units) +
                              " is not a layer size: expected a whole number from 1 to 1000000",
                          "layers");
  }
  if (d.contains("activation"))
    o.activation = parse_activation(d["activation"].cast<std::string>());
  if (d.contains("loss")) o.loss = parse_loss(d["loss"].cast<std::string>());
  if (d.contains("init")) o.init = parse_init(d["init"].cast<std::string>());
  o.seed = get<std::uint64_t>(d, "seed", o.seed);
  o.validation = get<double>(d, "val", o.validation);
  if (!(o.validation >= 0 && o.validation < 1))
    throw ConfigError("val must be in [0, 1), got " + py::repr(d["val"]).cast<std::string>(),
                      "val");
  if (d.contains("patience")) o.patience = d["patience"].cast<int>();
  if (d.contains("dtype")) o.dtype = parse_dtype(d["dtype"].cast<std::string>());
  // The command line's default and cap: the cores available (`chainrule train` without
  // --threads); the same count gives the same bytes.
  o.threads = std::min(get<int>(d, "threads", available_cores()), available_cores());
  if (o.threads < 1)
    throw ConfigError("threads must be at least 1, got " + std::to_string(o.threads), "threads");
  o.max_memory = get<std::uint64_t>(d, "max_memory", o.max_memory);
  TrainOptions& t = o.train;
  t.epochs = get<int>(d, "epochs", t.epochs);
  t.batch = get<Index>(d, "batch", t.batch);
  t.shuffle = get<bool>(d, "shuffle", t.shuffle);
  t.timings = get<bool>(d, "timings", false);
  t.dropout = get<double>(d, "dropout", t.dropout);
  t.l2 = get<double>(d, "l2", t.l2);  // --l2
  if (!(t.dropout >= 0 && t.dropout < 1))
    throw ConfigError("dropout must be in [0, 1), got " + std::to_string(t.dropout), "dropout");
  OptimizerOptions& opt = t.optimizer;
  if (d.contains("optimizer")) opt.kind = parse_optimizer(d["optimizer"].cast<std::string>());
  if (d.contains("lr")) opt.lr = d["lr"].cast<double>();
  opt.momentum = get<double>(d, "momentum", opt.momentum);
  opt.nesterov = get<bool>(d, "nesterov", opt.nesterov);
  if (d.contains("weight_decay")) opt.weight_decay = d["weight_decay"].cast<double>();
  opt.beta1 = get<double>(d, "beta1", opt.beta1);
  opt.beta2 = get<double>(d, "beta2", opt.beta2);
  opt.eps = get<double>(d, "eps", opt.eps);
  opt.alpha = get<double>(d, "alpha", opt.alpha);
  if (d.contains("schedule")) t.schedule.kind = parse_schedule(d["schedule"].cast<std::string>());
  if (t.schedule.kind != ScheduleKind::step && (d.contains("step_size") || d.contains("gamma")))
    throw ConfigError("step_size and gamma apply to schedule='step' only", "schedule");
  t.schedule.step_size = get<int>(d, "step_size", t.schedule.step_size);
  t.schedule.gamma = get<double>(d, "gamma", t.schedule.gamma);
  make_optimizer<float>(opt);  // rejects inconsistent optimizer options before any data is read
  return o;
}

// ---- what a model says about itself, as Python data ---------------------------------------------

py::dict split_metrics(const SplitMetrics& s) {
  py::dict d;
  d["loss"] = s.loss;
  d["rows"] = s.rows;
  d["metric"] = std::string(to_string(s.metric));
  d["value"] = s.value;
  return d;
}

py::object metrics_of(const Model& m) {
  if (!m.metrics) return py::none();
  py::dict d;
  d["train"] = split_metrics(m.metrics->train);
  d["validation"] =
      m.metrics->validation ? py::object(split_metrics(*m.metrics->validation)) : py::none();
  d["epochs_run"] = m.metrics->epochs_run;
  d["best_epoch"] = m.metrics->best_epoch;
  d["stopped_early"] = m.metrics->stopped_early;
  // Every epoch's report, as the file keeps it (`chainrule info --json`'s metrics.history).
  py::list history;
  for (const EpochReport& e : m.metrics->history) {
    py::dict r;
    r["epoch"] = e.epoch;
    r["train_loss"] = e.train_loss;
    r["val_loss"] = e.val_loss ? py::object(py::float_(*e.val_loss)) : py::none();
    r["val_metric"] = e.val_metric ? py::object(py::float_(*e.val_metric)) : py::none();
    r["lr"] = e.lr;
    history.append(r);
  }
  d["history"] = history;
  return d;
}

py::object settings_of(const Model& m) {
  if (!m.training) return py::none();
  const TrainingSettings& s = *m.training;
  py::dict d;
  d["rows"] = s.rows;
  d["seed"] = s.seed;
  d["layers"] = s.layers;
  d["activation"] = std::string(to_string(s.activation));
  d["init"] = s.init ? py::object(py::str(std::string(to_string(*s.init)))) : py::none();
  d["optimizer"] = std::string(to_string(s.optimizer));
  d["lr"] = s.lr;
  d["momentum"] = s.momentum;
  d["nesterov"] = s.nesterov;
  d["weight_decay"] = s.weight_decay;
  d["l2"] = s.l2;
  d["monitor_metric"] = s.monitor_metric;
  d["schedule"] = std::string(to_string(s.schedule));
  d["batch"] = s.batch;
  d["epochs"] = s.epochs;
  d["shuffle"] = s.shuffle;
  d["val"] = s.validation;
  d["patience"] = s.patience;
  d["dropout"] = s.dropout;
  d["dtype"] = std::string(to_string(s.dtype));
  return d;
}

py::list features_of(const Model& m) {
  py::list out;
  for (const Feature& f : m.prep.features) {
    py::dict d;
    d["name"] = f.name;
    d["numeric"] = f.numeric;
    if (f.numeric) {
      d["center"] = f.center;
      d["scale"] = f.scale;
      d["fill"] = f.fill;
    } else {
      d["categories"] = f.categories;
    }
    out.append(d);
  }
  return out;
}

std::vector<std::string> input_names(const Model& m) {
  std::vector<std::string> names;
  for (InputColumn& in : m.prep.input_layout())
    names.push_back(std::move(in.name));
  return names;
}

// ---- train
// ---------------------------------------------------------------------------------------

py::tuple train_py(const py::object& data, const py::dict& csv, const py::dict& options,
                   std::shared_ptr<Model> init_from, bool distributed) {
  FitOptions o = fit_options(options);  // every option is checked before the data is read
  o.init_from = init_from.get();
  o.group = distributed ? mpi_group() : nullptr;
  // stream: a CSV path read in passes (CsvScan), as the command line's --stream.
  const std::string stream = get<std::string>(csv, "stream", "auto");
  if (stream != "auto" && stream != "on" && stream != "off")
    throw ConfigError("stream must be 'auto', 'on' or 'off', got '" + stream + "'", "stream");
  std::unique_ptr<CsvScan> scan;
  if (py::isinstance<py::str>(data) && !o.group && stream != "off") {
    const std::string path = data.cast<std::string>();
    const CsvOptions csv_o = csv_options(csv);
    py::gil_scoped_release release;
    if (stream == "on" || CsvScan::large(path))
      scan = CsvScan::open(path, init_from ? init_from->prep.target : o.data.target, csv_o);
  }
  const Table table = scan ? Table() : table_of(data, csv, o.group);
  const Dataset dataset = scan ? Dataset(*scan) : Dataset(table);

  // Ctrl-C: the GIL is released while training. SIGINT is seen after the batch it comes in
  // (SigintWatch, engine_call.hpp); any other signal Python handles, when a batch callback takes
  // the GIL back (at most every 50 ms) to let Python's handlers run: either stops the run when
  // its handler raises.
  std::atomic<bool> interrupt{false};
  o.train.stop = &interrupt;
  SigintWatch sigint(interrupt);
  const BlasOnOneThread blas;
  TrainCallbacks cb;
  auto last = std::chrono::steady_clock::now();
  cb.on_batch = [&](const BatchProgress&) {
    sigint.poll();
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(50)) return;
    last = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      PyErr_Clear();
      interrupt = true;
    }
  };
  FitResult r;
  {
    py::gil_scoped_release release;
    r = fit(dataset, o, cb);
  }
  sigint.finish();
  if (r.history.interrupted || interrupt) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  }
  py::dict h;
  std::vector<double> loss, val_loss, val_metric, lr, seconds;
  for (const EpochReport& e : r.history.history) {
    loss.push_back(e.train_loss);
    if (e.val_loss) val_loss.push_back(*e.val_loss);
    if (e.val_metric) val_metric.push_back(*e.val_metric);
    lr.push_back(e.lr);
    seconds.push_back(e.seconds);
  }
  h["loss"] = loss;
  h["val_loss"] = val_loss;
  h["val_metric"] = val_metric;
  h["metric"] = std::string(
      to_string(r.history.history.empty() ? Metric::none : r.history.history.front().metric));
  h["lr"] = lr;
  h["epoch_seconds"] = seconds;
  h["best_epoch"] = r.history.best_epoch;
  h["stopped_early"] = r.history.stopped_early;
  h["seconds"] = r.seconds;
  h["train_rows"] = r.train_rows;
  h["validation_rows"] = r.validation_rows;
  if (o.train.timings) {  // this process's (TrainResult::timings)
    const StepTimings& t = r.history.timings;
    py::dict d;
    d["steps"] = t.steps;
    d["compute"] = t.compute;
    d["rows"] = t.rows;
    d["sums"] = t.sums;
    d["update"] = t.update;
    d["gather"] = t.gather;
    d["total"] = t.total();
    h["timings"] = d;
  }
  py::list notes = notes_of(table.notes);
  for (const py::handle n : notes_of(r.notes))
    notes.append(n);
  h["notes"] = notes;
  return py::make_tuple(std::make_shared<Model>(std::move(r.model)), h);
}

// ---- evaluate, predict, explain
// -------------------------------------------------------------------

// The fields of `chainrule eval --json` but the file names.
py::dict evaluate_py(const Model& m, const py::object& data, const py::dict& csv) {
  const Table table = table_of(data, csv);
  Evaluation e;
  {
    const BlasOnOneThread blas;
    py::gil_scoped_release release;
    e = evaluate(m, table);
  }
  py::dict d;
  d["rows"] = e.rows;
  d["loss"] = e.loss;
  if (e.skipped > 0) d["rows_without_target"] = e.skipped;
  if (m.prep.task == Task::classify) {
    d["accuracy"] = e.accuracy;
    py::list classes;
    for (const ClassMetrics& c : e.classes) {
      py::dict k;
      k["class"] = c.label;
      k["precision"] = c.precision;
      k["recall"] = c.recall;
      k["f1"] = c.f1;
      k["support"] = c.support;
      classes.append(k);
    }
    d["classes"] = classes;
    d["confusion_matrix"] = e.confusion;  // rows: true class, columns: predicted class
  } else {
    d["mse"] = e.mse;
    d["mae"] = e.mae;
    d["r2"] = e.r2;
  }
  return d;
}

// (labels: class indices or None, probabilities (rows, classes) or values (rows,)).
py::tuple predict_py(const Model& m, const py::object& data, const py::dict& csv) {
  const Table table = table_of(data, csv);
  Predictions p;
  {
    const BlasOnOneThread blas;
    py::gil_scoped_release release;
    p = predict(m, table);
  }
  if (m.prep.task == Task::regress)
    return py::make_tuple(py::none(),
                          py::array_t<double>(py::ssize_t(p.value.size()), p.value.data()));
  py::array_t<long> labels(py::ssize_t(p.label.size()));
  for (std::size_t i = 0; i < p.label.size(); ++i)
    labels.mutable_at(py::ssize_t(i)) = long(p.label[i]);
  py::array_t<double> prob(
      {py::ssize_t(p.probabilities.rows()), py::ssize_t(p.probabilities.cols())});
  for (Index r = 0; r < p.probabilities.rows(); ++r)
    for (Index c = 0; c < p.probabilities.cols(); ++c)
      prob.mutable_at(r, c) = p.probabilities(r, c);
  return py::make_tuple(labels, prob);
}

// What `chainrule explain MODEL DATA --row N --json` prints, as Python data: the same parameters
// (`params` names, else the `top` largest gradients, else all of a network of at most 100
// parameters and the 10 largest gradients of a larger one) and the same numbers.
py::dict explain_py(const Model& m, const py::object& data, long row, const py::dict& csv,
                    const std::vector<std::string>& params, std::size_t top, double fd_step,
                    const std::string& name) {
  const Table t = table_of(data, csv);
  if (row < 0 || std::size_t(row) >= t.rows())
    throw ConfigError("row " + std::to_string(row) + " is out of range: " + name + " has " +
                          std::to_string(t.rows()) + " data rows (0 to " +
                          std::to_string(long(t.rows()) - 1) + ")",
                      "row");
  if (!m.prep.has_target(t))
    throw DataError(name + ": no target column '" + m.prep.target +
                    "': explain needs the true value");
  const std::vector<std::size_t> rows{std::size_t(row)};
  const Batch<double> X = m.prep.transform<double>(t, rows);
  const Batch<double> Y = m.prep.targets<double>(t, rows);
  const Network<double> net = m.network<double>();  // explained in double precision
  const std::span<const double> x(X.data(), std::size_t(X.cols())),
      y(Y.data(), std::size_t(Y.cols()));
  ExplainOptions options;
  options.fd_step = fd_step;
  options.input_names = input_names(m);
  for (const std::string& p : params)
    options.params.push_back(find_param(net, p));
  if (options.params.empty()) {
    const std::size_t k = top > 0 ? top : net.num_params() > 100 ? 10 : 0;
    if (k > 0 && k < std::size_t(net.num_params()))
      options.params = largest_gradients(net, x, y, k);
  }
  const Explanation e = explain(net, x, y, options);

  py::dict j;
  std::string sample = "row " + std::to_string(row) + " of " + name;
  if (const std::size_t line = t.line_of(std::size_t(row)); line > 0)
    sample += " (line " + std::to_string(line) + ")";
  j["sample"] = sample;
  py::dict inputs;
  for (std::size_t i = 0; i < e.x.size(); ++i)
    inputs[py::str(e.input_names[i])] = e.x[i];
  j["inputs"] = inputs;
  j["targets"] = e.y;
  j["outputs"] = e.output_names;
  py::list neurons;
  for (const NeuronTrace& n : e.neurons) {
    py::dict d;
    d["name"] = n.name;
    d["layer"] = n.layer;
    d["activation"] = std::string(to_string(n.activation));
    d["inputs"] = n.inputs;
    d["weights"] = n.weights;
    d["input_values"] = n.input_values;
    d["weight_values"] = n.weight_values;
    d["bias"] = n.bias;
    d["bias_value"] = n.bias_value;
    d["z"] = n.z;
    d["a"] = n.a;
    d["dL_da"] = n.grad_a;
    d["dL_dz"] = n.grad_z;
    neurons.append(d);
  }
  j["neurons"] = neurons;
  py::dict loss;
  loss["function"] = std::string(to_string(e.loss));
  loss["formula"] = e.loss_formula;
  loss["value"] = e.loss_value;
  j["loss"] = loss;
  j["finite_difference_step"] = e.fd_step;
  py::list out;
  for (const ParamTrace& p : e.params) {
    py::list factors;
    for (const Factor& f : p.factors) {
      py::dict d;
      d["symbol"] = f.symbol;
      d["formula"] = f.formula;
      d["value"] = f.value;
      factors.append(d);
    }
    py::dict d;
    d["name"] = p.name;
    d["tensor"] = p.tensor;
    d["index"] =
        p.col < 0 ? py::list(py::make_tuple(p.row)) : py::list(py::make_tuple(p.row, p.col));
    d["from"] = p.from;
    d["to"] = p.to;
    d["value"] = p.value;
    d["factors"] = factors;
    d["gradient"] = p.chain;
    d["backprop"] = p.backprop;
    d["finite_difference"] = p.finite_difference;
    d["relative_error"] = p.relative_error;
    d["reading"] = p.reading;
    out.append(d);
  }
  j["parameters"] = out;
  return j;
}

}  // namespace

// Called by PYBIND11_MODULE(_core) in core.cpp, after chainrule._core.Model is registered.
void bind_pipeline(py::module_& m) {
  auto model = py::reinterpret_borrow<py::class_<Model, std::shared_ptr<Model>>>(m.attr("Model"));
  model
      .def_property_readonly("features", &features_of,
                             "The input columns as fitted: name, numeric; center, scale and fill "
                             "of a numeric one, categories (one-hot) of a text one.")
      .def_property_readonly("input_names", &input_names,
                             "The network's inputs: feature names, 'name=category' when one-hot.")
      .def_property_readonly("scale",
                             [](const Model& mm) { return std::string(to_string(mm.prep.scale)); })
      .def_property_readonly(
          "impute",
          [](const Model& mm) { return mm.prep.impute == Impute::mean ? "mean" : "none"; })
      .def_property_readonly("metrics", &metrics_of,
                             "Loss and the task's metric of the final weights on the training and "
                             "validation rows, epochs run, best epoch, early stop (None if not "
                             "recorded).")
      .def_property_readonly("settings", &settings_of,
                             "The training settings the model file records (None if not "
                             "recorded).")
      .def_property_readonly(
          "history",
          [](const py::object& self) -> py::object {
            const py::dict attrs = self.attr("__dict__");
            return attrs.contains("history") ? py::object(attrs["history"]) : py::none();
          },
          "Per-epoch losses, validation loss and metric, learning rates and times of the "
          "chainrule.train run that made this model (None for a loaded model).");

  m.def("train", &train_py, py::arg("data"), py::arg("csv"), py::arg("options"),
        py::arg("init_from") = nullptr, py::arg("distributed") = false,
        "chainrule train on a CSV path or a DataFrame; returns (Model, history).");
  // The MPI job this process belongs to (rank 0 of 1 when it was not started by mpirun).
  m.def("mpi_rank", [] { return mpi_group() ? mpi_group()->rank() : 0; });
  m.def("mpi_size", [] { return mpi_group() ? mpi_group()->size() : 1; });
  m.def("evaluate", &evaluate_py, py::arg("model"), py::arg("data"), py::arg("csv"));
  m.def("predict_table", &predict_py, py::arg("model"), py::arg("data"), py::arg("csv"));
  m.def("explain_row", &explain_py, py::arg("model"), py::arg("data"), py::arg("row"),
        py::arg("csv"), py::arg("params"), py::arg("top"), py::arg("fd_step"), py::arg("name"));
}
