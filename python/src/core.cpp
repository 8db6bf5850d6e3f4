// chainrule._core: the C++ library seen from Python (pybind11). The estimators (chainrule/
// estimators.py) are written on top of four things here: fit() and predict() on numpy matrices
// read in place (a Dataset over a MatrixView), the Model they return (its flat parameter buffer
// as a numpy view, save/load), and the low-level Network, optimizers and explain() for the
// tutorial. Library errors become Python exceptions derived from ValueError, with `option`.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "chainrule/error.hpp"
#include "chainrule/explain.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/init.hpp"
#include "chainrule/model.hpp"
#ifdef CHAINRULE_HAVE_ONNX
#include "chainrule/onnx_export.hpp"
#endif
#include "chainrule/network.hpp"
#include "chainrule/optimizer.hpp"

#include "engine_call.hpp"

namespace py = pybind11;
using namespace chainrule;
using namespace pybind11::literals;
using chainrule::python::BlasOnOneThread;
using chainrule::python::SigintWatch;

// chainrule.train, evaluate, predict, explain on tables (pipeline.cpp).
void bind_pipeline(py::module_& m);

namespace {

// ---- numpy matrices as MatrixViews ------------------------------------------------------------

// A 2-D float32/float64 array as a view read in place: row-major when its rows are contiguous
// (C order, or rows of a wider array), column-major when its columns are (Fortran order). Any
// other array (other dtypes, other strides) is converted to a C-ordered float64 copy first,
// kept alive in `keep`.
MatrixView view_of(py::array a, py::object& keep) {
  if (a.ndim() != 2) throw ConfigError("expected a 2-D array of features");
  const bool f32 = a.dtype().is(py::dtype::of<float>());
  const bool f64 = a.dtype().is(py::dtype::of<double>());
  const py::ssize_t size = f32 ? 4 : 8;
  MatrixView v{.data = a.data(),
               .rows = Index(a.shape(0)),
               .cols = Index(a.shape(1)),
               .type = f32 ? ElementType::f32 : ElementType::f64};
  const py::ssize_t s0 = a.strides(0), s1 = a.strides(1);
  if (f32 || f64) {
    if ((s1 == size || a.shape(1) <= 1) && s0 % size == 0 && s0 / size >= a.shape(1) && s0 >= 0) {
      v.row_major = true;
      v.stride = Index(s0 / size);
      if (v.stride == 0) v.stride = v.cols;
      keep = a;
      return v;
    }
    if (s0 == size && s1 % size == 0 && s1 / size >= a.shape(0) && s1 >= 0) {
      v.row_major = false;
      v.stride = Index(s1 / size);
      if (v.stride == 0) v.stride = v.rows;
      keep = a;
      return v;
    }
  }
  auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!c) throw ConfigError("the features must be numbers");
  keep = c;
  v.data = c.data();
  v.type = ElementType::f64;
  v.row_major = true;
  v.stride = v.cols;
  return v;
}

template <class T>
T get(const py::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : fallback;
}

// ---- fit ---------------------------------------------------------------------------------------

FitOptions fit_options(const py::dict& d) {
  FitOptions o;
  o.data.target = "y";
  o.data.task =
      get<std::string>(d, "task", "classify") == "regress" ? Task::regress : Task::classify;
  o.data.scale = parse_scale(get<std::string>(d, "scale", "standard"));
  // partial_fit's `classes`, given on its first call
  o.data.class_values = get<std::vector<double>>(d, "class_values", {});
  o.data.class_labels = get<std::vector<std::string>>(d, "class_labels", {});
  o.layers = get<std::vector<Index>>(d, "layers", {100});
  o.activation = parse_activation(get<std::string>(d, "activation", "tanh"));
  if (d.contains("init") && !d["init"].is_none())
    o.init = parse_init(d["init"].cast<std::string>());
  o.seed = get<std::uint64_t>(d, "seed", 42);
  o.validation = get<double>(d, "validation", 0.1);
  if (d.contains("patience") && !d["patience"].is_none()) o.patience = d["patience"].cast<int>();
  o.dtype = parse_dtype(get<std::string>(d, "dtype", "float32"));
  o.threads = get<int>(d, "threads", 1);
  o.measure_train = get<bool>(d, "measure_train", true);
  TrainOptions& t = o.train;
  t.epochs = get<int>(d, "epochs", t.epochs);
  t.batch = get<Index>(d, "batch", t.batch);
  t.shuffle = get<bool>(d, "shuffle", t.shuffle);
  t.dropout = get<double>(d, "dropout", 0);
  t.l2 = get<double>(d, "l2", 0);  // scikit-learn's alpha
  t.monitor_metric = get<bool>(d, "monitor_metric", false);
  t.optimizer.kind = parse_optimizer(get<std::string>(d, "optimizer", "adam"));
  if (d.contains("lr") && !d["lr"].is_none()) t.optimizer.lr = d["lr"].cast<double>();
  t.optimizer.momentum = get<double>(d, "momentum", 0);
  t.optimizer.nesterov = get<bool>(d, "nesterov", false);
  if (d.contains("weight_decay") && !d["weight_decay"].is_none())
    t.optimizer.weight_decay = d["weight_decay"].cast<double>();
  t.optimizer.beta1 = get<double>(d, "beta1", t.optimizer.beta1);
  t.optimizer.beta2 = get<double>(d, "beta2", t.optimizer.beta2);
  t.optimizer.eps = get<double>(d, "eps", t.optimizer.eps);
  t.schedule.kind = parse_schedule(get<std::string>(d, "schedule", "constant"));
  t.schedule.step_size = get<int>(d, "step_size", t.schedule.step_size);
  t.schedule.gamma = get<double>(d, "gamma", t.schedule.gamma);
  return o;
}

// scikit-learn's stopping rule (MLP._update_no_improvement_count), kept in the one place the
// trainer lets a front-end decide to stop: after `n_iter_no_change` epochs in a row in which the
// training loss did not fall below the best by `tol` (or, with a validation split, the
// validation score did not rise above the best by `tol`), the run stops early.
struct SklearnStop {
  double tol = 1e-4;
  int n_iter_no_change = 10;
  bool on_validation = false;
  double best = INFINITY;  // the best loss, or minus the best score
  int count = 0;
  bool epoch_ended = false;

  void epoch(const EpochReport& r) {
    epoch_ended = true;
    const double value = on_validation ? -r.val_metric.value_or(-INFINITY) : r.train_loss;
    if (value > best - tol)
      ++count;
    else
      count = 0;
    if (value < best) best = value;
  }
  StopReason decide(StopReason local) {
    if (!epoch_ended) return local;
    epoch_ended = false;
    if (local == StopReason::none && count > n_iter_no_change) return StopReason::early_stop;
    return local;
  }
};

struct FitOutput {
  std::shared_ptr<Model> model;
  py::dict history;
};

py::tuple fit_py(py::array X, py::object y_numbers, py::object y_labels,
                 std::vector<std::string> names, const py::dict& options,
                 std::shared_ptr<Model> init_from) {
  py::object keep;
  const MatrixView view = view_of(X, keep);
  Targets targets;
  if (!y_numbers.is_none()) targets.numbers = y_numbers.cast<std::vector<double>>();
  if (!y_labels.is_none()) targets.labels = y_labels.cast<std::vector<std::string>>();
  FitOptions o = fit_options(options);
  o.init_from = init_from.get();
  // partial_fit: the optimizer's state from the last call (its step count and moments, as
  // {"steps": int, "buffers": [float64 arrays]}) to continue from, and this call's to keep.
  OptimizerState start;
  if (options.contains("optimizer_state") && !options["optimizer_state"].is_none()) {
    const py::dict s = options["optimizer_state"].cast<py::dict>();
    start.steps = s["steps"].cast<std::int64_t>();
    for (const py::handle b : s["buffers"].cast<py::list>())
      start.buffers.push_back(b.cast<std::vector<double>>());
    o.train.optimizer_start = &start;
  }
  o.train.keep_optimizer = get<bool>(options, "keep_optimizer", false);

  std::optional<SklearnStop> stop;
  if (get<bool>(options, "sklearn_stop", false)) {
    stop = SklearnStop{.tol = get<double>(options, "tol", 1e-4),
                       .n_iter_no_change = get<int>(options, "n_iter_no_change", 10),
                       .on_validation = o.validation > 0};
    // The trainer keeps (and restores) the best weights only while its own patience is on: with a
    // validation split, a patience no run reaches; without, none (as scikit-learn).
    o.patience = o.validation > 0 ? o.train.epochs + 1 : 0;
  }

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
  // verbose: scikit-learn's lines, printed as each epoch ends (the GIL taken once an epoch).
  const bool verbose = get<bool>(options, "verbose", false);
  const int first_iteration = get<int>(options, "first_iteration", 1);
  if (stop || verbose)
    cb.on_epoch = [&, verbose, first_iteration](const EpochReport& r) {
      if (stop) stop->epoch(r);
      if (!verbose) return;
      py::gil_scoped_acquire gil;
      const py::object out = py::module_::import("sys").attr("stdout");
      py::print(py::str("Iteration {}, loss = {:.8f}")
                    .format(first_iteration + r.epoch - 1, r.train_loss),
                "file"_a = out, "flush"_a = true);
      if (r.val_metric)
        py::print(py::str("Validation score: {:.6f}").format(*r.val_metric), "file"_a = out,
                  "flush"_a = true);
    };
  if (stop) cb.decide_stop = [&](StopReason local) { return stop->decide(local); };

  FitResult r;
  {
    py::gil_scoped_release release;
    Dataset data(view, std::move(targets), names, "the training data");
    r = fit(data, o, cb);
  }
  sigint.finish();
  if (r.history.interrupted || interrupt) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  }
  py::dict h;
  std::vector<double> loss, val_loss, val_metric, lr;
  for (const EpochReport& e : r.history.history) {
    loss.push_back(e.train_loss);
    if (e.val_loss) val_loss.push_back(*e.val_loss);
    if (e.val_metric) val_metric.push_back(*e.val_metric);
    lr.push_back(e.lr);
  }
  h["loss"] = loss;
  h["val_loss"] = val_loss;
  h["val_metric"] = val_metric;
  h["lr"] = lr;
  h["best_epoch"] = r.history.best_epoch;
  h["stopped_early"] = r.history.stopped_early;
  h["seconds"] = r.seconds;
  h["prepare_seconds"] = r.prepare_seconds;
  h["train_rows"] = r.train_rows;
  h["validation_rows"] = r.validation_rows;
  if (o.train.keep_optimizer) {
    py::dict s;
    s["steps"] = r.history.optimizer.steps;
    py::list buffers;
    for (const std::vector<double>& b : r.history.optimizer.buffers)
      buffers.append(py::array_t<double>(py::ssize_t(b.size()), b.data()));
    s["buffers"] = buffers;
    h["optimizer_state"] = s;
  }
  std::vector<std::string> notes;
  for (const Note& n : r.notes)
    notes.push_back(n.text);
  h["notes"] = notes;
  return py::make_tuple(std::make_shared<Model>(std::move(r.model)), h);
}

py::object predict_py(const Model& m, py::array X, std::vector<std::string> names) {
  py::object keep;
  const MatrixView view = view_of(X, keep);
  Predictions p;
  {
    const BlasOnOneThread blas;
    py::gil_scoped_release release;
    Dataset data(view, {}, names, "the data");
    p = predict(m, data);
  }
  if (m.prep.task == Task::regress)
    return py::array_t<double>(py::ssize_t(p.value.size()), p.value.data());
  py::array_t<double> prob(
      {py::ssize_t(p.probabilities.rows()), py::ssize_t(p.probabilities.cols())});
  std::copy(p.probabilities.data(), p.probabilities.data() + p.probabilities.size(),
            prob.mutable_data());
  return prob;
}

// ---- models ------------------------------------------------------------------------------------

std::string temp_path() {
  std::random_device rd;
  return (std::filesystem::temp_directory_path() /
          ("chainrule-" + std::to_string(rd()) + std::to_string(rd()) + ".safetensors"))
      .string();
}

py::bytes model_bytes(const Model& m) {
  const std::string path = temp_path();
  save_model(m, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  std::filesystem::remove(path);
  return py::bytes(s.str());
}

std::shared_ptr<Model> model_from_bytes(const std::string& bytes) {
  const std::string path = temp_path();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
  }
  try {
    auto m = std::make_shared<Model>(load_model(path));
    std::filesystem::remove(path);
    return m;
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
}

py::list layers_of(const NetworkSpec& spec) {
  py::list out;
  Index in = spec.inputs, offset = 0;
  for (const LayerSpec& l : spec.layers) {
    py::dict d;
    d["inputs"] = in;
    d["units"] = l.units;
    d["activation"] = std::string(to_string(l.activation));
    d["offset"] = offset;  // W (in, units) column-major: W[i, j] at offset + i + j·in
    d["bias_offset"] = offset + in * l.units;
    out.append(d);
    offset += in * l.units + l.units;
    in = l.units;
  }
  return out;
}

// ---- the low-level network (double precision: the tutorial's) ---------------------------------

using Net = Network<double>;

Batch<double> batch_of(py::array_t<double, py::array::c_style | py::array::forcecast> a, Index cols,
                       const char* what) {
  if (a.ndim() == 1) a = a.reshape({py::ssize_t(1), a.shape(0)});
  if (a.ndim() != 2 || a.shape(1) != cols)
    throw ConfigError(std::string(what) + " must have " + std::to_string(cols) + " columns");
  return Eigen::Map<const Batch<double>>(a.data(), a.shape(0), a.shape(1));
}

py::array_t<double> array_of(const Batch<double>& b) {
  py::array_t<double> a({py::ssize_t(b.rows()), py::ssize_t(b.cols())});
  std::copy(b.data(), b.data() + b.size(), a.mutable_data());
  return a;
}

NetworkSpec spec_of(Index inputs, const std::vector<std::pair<Index, std::string>>& layers,
                    const std::string& loss) {
  NetworkSpec s{.inputs = inputs, .layers = {}, .loss = parse_loss(loss)};
  for (const auto& [units, act] : layers)
    s.layers.push_back({units, parse_activation(act)});
  validate(s);
  return s;
}

template <class Opt>
void bind_optimizer(py::class_<Opt, Optimizer<double>>& c) {
  c.def(
      "step", [](Opt& o, Net& net) { o.step(net.params(), net.grads()); }, py::arg("network"),
      "One update of the network's parameters from its gradients.");
}

py::dict explain_py(const Net& net, std::vector<double> x, std::vector<double> y, double fd_step) {
  ExplainOptions options;
  options.fd_step = fd_step;
  const Explanation e = explain(net, x, y, options);
  py::dict d;
  d["loss"] = e.loss_value;
  d["loss_formula"] = e.loss_formula;
  d["fd_step"] = e.fd_step;
  py::list neurons;
  for (const NeuronTrace& n : e.neurons) {
    py::dict t;
    t["name"] = n.name;
    t["layer"] = n.layer;
    t["z"] = n.z;
    t["a"] = n.a;
    t["grad_z"] = n.grad_z;
    neurons.append(t);
  }
  d["neurons"] = neurons;
  py::list params;
  for (const ParamTrace& p : e.params) {
    py::dict t;
    t["name"] = p.name;
    t["tensor"] = p.tensor;
    t["row"] = p.row;
    t["col"] = p.col;
    t["flat"] = p.flat;
    t["value"] = p.value;
    py::list factors;
    for (const Factor& f : p.factors)
      factors.append(py::make_tuple(f.symbol, f.formula, f.value));
    t["factors"] = factors;
    t["chain"] = p.chain;
    t["backprop"] = p.backprop;
    t["finite_difference"] = p.finite_difference;
    t["relative_error"] = p.relative_error;
    t["reading"] = p.reading;
    params.append(t);
  }
  d["params"] = params;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "chainrule's C++ engine (the estimators in chainrule.* are built on it)";

  // Exceptions: chainrule.Error derives from ValueError; each carries `option`, the library
  // option that changes the outcome (empty if none).
  static py::exception<Error> error(m, "Error", PyExc_ValueError);
  static py::exception<ConfigError> config_error(m, "ConfigError", error.ptr());
  static py::exception<DataError> data_error(m, "DataError", error.ptr());
  static py::exception<DivergenceError> divergence_error(m, "DivergenceError", error.ptr());
  static py::exception<ModelError> model_error(m, "ModelError", error.ptr());
  static py::exception<LimitError> limit_error(m, "LimitError", data_error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    auto raise = [](py::handle type, const Error& e) {
      py::gil_scoped_acquire gil;
      py::object instance = type(e.what());
      instance.attr("option") = e.option;
      PyErr_SetObject(type.ptr(), instance.ptr());
    };
    try {
      if (p) std::rethrow_exception(p);
    } catch (const LimitError& e) {
      raise(limit_error, e);
    } catch (const ConfigError& e) {
      raise(config_error, e);
    } catch (const DataError& e) {
      raise(data_error, e);
    } catch (const DivergenceError& e) {
      raise(divergence_error, e);
    } catch (const ModelError& e) {
      raise(model_error, e);
    } catch (const Error& e) {
      raise(error, e);
    }
  });

  py::class_<Model, std::shared_ptr<Model>>(
      m, "Model", "A trained model: network, preprocessing, settings.", py::dynamic_attr())
      .def_property_readonly(
          "params",
          [](py::object self) {
            Model& mm = self.cast<Model&>();
            return py::array_t<double>({py::ssize_t(mm.params.size())}, {sizeof(double)},
                                       mm.params.data(), self);
          },
          "The flat parameter buffer (float64) as a numpy VIEW: writing to it changes the model.")
      .def_property_readonly("layers", [](const Model& mm) { return layers_of(mm.spec); })
      .def_property_readonly("loss",
                             [](const Model& mm) { return std::string(to_string(mm.spec.loss)); })
      .def_property_readonly("dtype",
                             [](const Model& mm) { return std::string(to_string(mm.dtype)); })
      .def_property_readonly("task",
                             [](const Model& mm) { return std::string(to_string(mm.prep.task)); })
      .def_property_readonly("classes", [](const Model& mm) { return mm.prep.classes; })
      .def_property_readonly("class_values", [](const Model& mm) { return mm.prep.class_values; })
      .def_property_readonly("target_numeric",
                             [](const Model& mm) { return mm.prep.target_numeric; })
      .def_property_readonly("target", [](const Model& mm) { return mm.prep.target; })
      .def_property_readonly("target_center", [](const Model& mm) { return mm.prep.target_center; })
      .def_property_readonly("target_scale", [](const Model& mm) { return mm.prep.target_scale; })
      .def_property_readonly("feature_names",
                             [](const Model& mm) {
                               std::vector<std::string> names;
                               for (const Feature& f : mm.prep.features)
                                 names.push_back(f.name);
                               return names;
                             })
      .def_property_readonly("numeric_features",
                             [](const Model& mm) {
                               for (const Feature& f : mm.prep.features)
                                 if (!f.numeric) return false;
                               return true;
                             })
      .def_property_readonly("inputs", [](const Model& mm) { return mm.spec.inputs; })
      .def_property_readonly("describe", [](const Model& mm) { return describe(mm.spec); })
      .def("save", &save_model, py::arg("path"), "Writes the model file (as `chainrule train`).")
      .def("to_bytes", &model_bytes, "The model file's bytes.")
      .def("copy", [](const Model& mm) { return std::make_shared<Model>(mm); })
      .def("predict", &predict_py, py::arg("X"), py::arg("feature_names"),
           "Class probabilities (rows, classes) or values (rows,) for a 2-D array.");
  m.def(
      "load_model",
      [](const std::string& path) { return std::make_shared<Model>(load_model(path)); },
      py::arg("path"), "Reads a model file.");
  m.def("model_from_bytes", &model_from_bytes, py::arg("data"));
  m.def("bf16_available", &bf16_products_available,
        "Whether this CPU trains with dtype='bfloat16' (AVX512_BF16).");
#ifdef CHAINRULE_HAVE_ONNX
  m.def(
      "export_onnx",
      [](const Model& mm, const std::string& path) {
        const std::string bytes = export_onnx(mm);
        write_file_atomically(path, bytes);
        return bytes.size();
      },
      py::arg("model"), py::arg("path"),
      "Writes the model as an ONNX file (as `chainrule export --onnx`); returns its size.");
#endif
  m.def("fit", &fit_py, py::arg("X"), py::arg("y_numbers"), py::arg("y_labels"),
        py::arg("feature_names"), py::arg("options"), py::arg("init_from") = nullptr,
        "Trains on a 2-D array read in place; returns (Model, history).");

  py::class_<Net>(m, "Network", R"(A feedforward network in double precision over ONE flat
parameter buffer and ONE flat gradient buffer (`params` and `grads`: numpy views that write
through). The canonical step is zero_grad(); forward(X); backward(Y); optimizer.step(net).

Network(inputs, layers, loss="mse"): layers is a list of (units, activation), the last being
the output layer; activations identity, sigmoid, tanh, relu, leaky_relu, softmax; losses mse,
binary_cross_entropy, softmax_cross_entropy.)")
      .def(py::init([](Index inputs, const std::vector<std::pair<Index, std::string>>& layers,
                       const std::string& loss) { return Net(spec_of(inputs, layers, loss)); }),
           py::arg("inputs"), py::arg("layers"), py::arg("loss") = "mse")
      .def_property_readonly("inputs", &Net::inputs)
      .def_property_readonly("outputs", &Net::outputs)
      .def_property_readonly("describe", [](const Net& n) { return describe(n.spec()); })
      .def_property_readonly("layers", [](const Net& n) { return layers_of(n.spec()); })
      .def_property_readonly(
          "params",
          [](py::object self) {
            Net& n = self.cast<Net&>();
            return py::array_t<double>({py::ssize_t(n.num_params())}, {sizeof(double)},
                                       n.params().data(), self);
          },
          "The flat parameter buffer as a numpy VIEW (writing changes the network): layer 0's W "
          "(in, out, column-major) then b, layer 1's ...")
      .def_property_readonly(
          "grads",
          [](py::object self) {
            Net& n = self.cast<Net&>();
            return py::array_t<double>({py::ssize_t(n.num_params())}, {sizeof(double)},
                                       n.grads().data(), self);
          },
          "The flat gradient buffer, parallel to params, as a numpy VIEW.")
      .def(
          "initialize",
          [](Net& n, const std::string& init, std::uint64_t seed) {
            Rng rng(seed);
            initialize(n, parse_init(init), rng);
          },
          py::arg("init") = "normal", py::arg("seed") = 42,
          "Draws every parameter: normal (weights and biases from N(0, 1), the tutorial's), "
          "xavier or he, from chainrule's generator seeded with `seed`.")
      .def("zero_grad", &Net::zero_grad, "Sets every gradient to 0.")
      .def(
          "forward",
          [](Net& n, py::array X) { return array_of(n.forward(batch_of(X, n.inputs(), "X"))); },
          py::arg("X"), "The outputs (N, outputs) for the batch X (N, inputs); kept for backward.")
      .def(
          "loss", [](const Net& n, py::array Y) { return n.loss(batch_of(Y, n.outputs(), "Y")); },
          py::arg("Y"), "Mean loss of the last forward batch against Y (N, outputs).")
      .def(
          "backward", [](Net& n, py::array Y) { n.backward(batch_of(Y, n.outputs(), "Y")); },
          py::arg("Y"), "Backpropagates the last forward batch's loss; ADDS to grads.")
      .def("set_threads", &Net::set_threads, py::arg("n"))
      .def(
          "explain",
          [](const Net& n, std::vector<double> x, std::vector<double> y, double h) {
            return explain_py(n, std::move(x), std::move(y), h);
          },
          py::arg("x"), py::arg("y"), py::arg("fd_step") = 1e-6,
          "The gradient of the loss on one sample (x, y) as the chain rule: for every parameter "
          "its factors (symbol, formula, value), their product `chain`, what backward computed "
          "and a central finite difference.");

  py::class_<Optimizer<double>>(m, "Optimizer")
      .def_property("lr", &Optimizer<double>::learning_rate, &Optimizer<double>::set_learning_rate)
      .def_property_readonly("steps", &Optimizer<double>::steps);
  py::class_<Sgd<double>, Optimizer<double>> sgd(m, "SGD", "torch.optim.SGD, exactly.");
  sgd.def(py::init([](double lr, double momentum, bool nesterov, double wd) {
            return new Sgd<double>(
                {.lr = lr, .momentum = momentum, .nesterov = nesterov, .weight_decay = wd});
          }),
          py::arg("lr") = 0.01, py::arg("momentum") = 0.0, py::arg("nesterov") = false,
          py::arg("weight_decay") = 0.0);
  bind_optimizer(sgd);
  py::class_<Adam<double>, Optimizer<double>> adam(m, "Adam",
                                                   "torch.optim.Adam (AdamW: decoupled=True).");
  adam.def(py::init([](double lr, double b1, double b2, double eps, double wd, bool decoupled) {
             return new Adam<double>({.lr = lr,
                                      .beta1 = b1,
                                      .beta2 = b2,
                                      .eps = eps,
                                      .weight_decay = wd,
                                      .decoupled = decoupled});
           }),
           py::arg("lr") = 1e-3, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("decoupled") = false);
  bind_optimizer(adam);
  py::class_<Rmsprop<double>, Optimizer<double>> rms(m, "RMSprop", "torch.optim.RMSprop.");
  rms.def(py::init([](double lr, double alpha, double eps, double momentum, double wd) {
            return new Rmsprop<double>(
                {.lr = lr, .alpha = alpha, .eps = eps, .momentum = momentum, .weight_decay = wd});
          }),
          py::arg("lr") = 1e-2, py::arg("alpha") = 0.99, py::arg("eps") = 1e-8,
          py::arg("momentum") = 0.0, py::arg("weight_decay") = 0.0);
  bind_optimizer(rms);

  bind_pipeline(m);
}
