// chainrule train: a CSV (or IDX) file in, a trained model file out.
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"
#include "chainrule/trainer.hpp"
#include "commands.hpp"
#include "data_args.hpp"

namespace chainrule::cli {

namespace {

struct TrainArgs {
  DataArgs data;
  std::string target, drop, scale = "standard", task, impute = "none";
  std::string layers = "100", activation = "tanh", loss, init;
  std::uint64_t seed = 42;
  std::string optimizer = "adam";
  double lr = 0, momentum = 0, weight_decay = -1;
  bool nesterov = false;
  std::string schedule = "constant";
  int step_size = 30;
  double gamma = 0.1;
  double dropout = 0;
  long batch = 32;
  int epochs = 200;
  bool no_shuffle = false;
  double val = 0.1;
  int patience = -1;  // -1: 20 with a validation split, off without
  std::string dtype = "float32";
  std::string init_from;
  std::string out = "model.safetensors";
  bool quiet = false;
  std::string log;
};

// Live progress on a terminal, one line per epoch otherwise, nothing with --quiet.
class Progress {
 public:
  Progress(bool quiet, Index rows) : quiet_(quiet), tty_(::isatty(2) != 0), rows_(rows) {}

  void batch(const BatchProgress& b) {
    if (quiet_ || !tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (b.batch != b.batches && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double done = (b.epoch - 1) + double(b.batch) / double(b.batches);
    const double eta = done > 0 ? elapsed / done * (epochs_ - done) : 0;
    const int width = 20, filled = int(width * double(b.batch) / double(b.batches));
    fmt::print(stderr, "\r\033[Kepoch {}/{} [{}{}] batch {}/{} loss {:.4f} {:.0f} samples/s ETA {}",
               b.epoch, epochs_, std::string(std::size_t(filled), '#'),
               std::string(std::size_t(width - filled), '.'), b.batch, b.batches, b.loss,
               elapsed > 0 ? done * double(rows_) / elapsed : 0.0, clock(eta));
  }

  void epoch(const EpochReport& r, std::string_view metric) {
    epochs_ = r.epochs;
    if (quiet_) return;
    std::string line =
        fmt::format("epoch {}/{} train loss {:.6f}", r.epoch, r.epochs, r.train_loss);
    if (r.val_loss) line += fmt::format(" val loss {:.6f}", *r.val_loss);
    if (r.val_metric) line += fmt::format(" val {} {:.4f}", metric, *r.val_metric);
    line += fmt::format(" lr {:.3g} {:.2f}s", r.lr, r.seconds);
    if (tty_)
      fmt::print(stderr, "\r\033[K{}\n", line);
    else
      fmt::print(stderr, "{}\n", line);
  }

  void set_epochs(int e) { epochs_ = e; }

 private:
  static std::string clock(double s) {
    const long t = std::lround(s);
    return fmt::format("{}:{:02}", t / 60, t % 60);
  }
  bool quiet_, tty_;
  Index rows_;
  int epochs_ = 1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

std::vector<LayerSpec> hidden_layers(const TrainArgs& a) {
  std::vector<LayerSpec> layers;
  const Activation act = parse_activation(a.activation);
  if (act == Activation::softmax || act == Activation::identity)
    throw ConfigError("--activation must be relu, tanh, sigmoid or leaky_relu, got '" +
                      a.activation + "'");
  for (const std::string& item : split_list(a.layers)) {
    long units = 0;
    try {
      std::size_t used = 0;
      units = std::stol(item, &used);
      if (used != item.size()) units = 0;
    } catch (const std::exception&) {
    }
    if (units < 1 || units > 1'000'000)
      throw ConfigError("--layers: '" + item +
                        "' is not a layer size: expected a whole number from 1 to 1000000");
    layers.push_back({units, act});
  }
  return layers;
}

NetworkSpec network_spec(const TrainArgs& a, const Preprocessor& prep) {
  NetworkSpec spec{.inputs = prep.inputs(), .layers = hidden_layers(a)};
  Activation out;
  if (prep.task == Task::regress) {
    out = Activation::identity;
    spec.loss = Loss::mse;
  } else if (prep.classes.size() == 2) {
    out = Activation::sigmoid;
    spec.loss = Loss::binary_cross_entropy;
  } else {
    out = Activation::softmax;
    spec.loss = Loss::softmax_cross_entropy;
  }
  if (!a.loss.empty()) {
    spec.loss = parse_loss(a.loss);
    if (spec.loss == Loss::binary_cross_entropy && out != Activation::sigmoid)
      throw ConfigError("--loss binary_cross_entropy needs a two-class target");
    if (spec.loss == Loss::softmax_cross_entropy && out != Activation::softmax)
      throw ConfigError("--loss softmax_cross_entropy needs a target with three or more classes");
  }
  spec.layers.push_back({prep.outputs(), out});
  return spec;
}

Init default_init(const TrainArgs& a) {
  if (!a.init.empty()) return parse_init(a.init);
  const Activation act = parse_activation(a.activation);
  return act == Activation::relu || act == Activation::leaky_relu ? Init::he : Init::xavier;
}

template <class T>
int train_as(const TrainArgs& a, const Table& table, Model& model, const Split& split,
             const std::unique_ptr<Model>& init_from) {
  Rng rng(a.seed);
  Network<T> net(model.spec);
  if (init_from) {
    net = init_from->network<T>();
  } else {
    initialize(net, default_init(a), rng);
  }
  const Batch<T> X = model.prep.transform<T>(table, split.train);
  const Batch<T> Y = model.prep.targets<T>(table, split.train);
  const Batch<T> Xv = model.prep.transform<T>(table, split.validation);
  const Batch<T> Yv = model.prep.targets<T>(table, split.validation);

  TrainOptions o;
  o.epochs = a.epochs;
  o.batch = a.batch;
  o.shuffle = !a.no_shuffle;
  o.patience = a.patience >= 0 ? a.patience : a.val > 0 ? 20 : 0;
  o.dropout = a.dropout;
  o.optimizer.kind = parse_optimizer(a.optimizer);
  if (a.lr > 0) o.optimizer.lr = a.lr;
  o.optimizer.momentum = a.momentum;
  o.optimizer.nesterov = a.nesterov;
  if (a.weight_decay >= 0) o.optimizer.weight_decay = a.weight_decay;
  o.schedule = {.kind = parse_schedule(a.schedule),
                .step_size = a.step_size,
                .gamma = a.gamma,
                .total_epochs = a.epochs};
  o.metric = model.prep.task == Task::classify ? Metric::accuracy : Metric::r2;
  const std::string_view metric_name = o.metric == Metric::accuracy ? "accuracy" : "r2";

  std::unique_ptr<std::ofstream> log;
  if (!a.log.empty()) {
    log = std::make_unique<std::ofstream>(a.log);
    if (!*log) throw Error(a.log + ": cannot write the log file");
  }
  Progress progress(a.quiet, X.rows());
  progress.set_epochs(a.epochs);
  TrainCallbacks cb;
  cb.on_batch = [&](const BatchProgress& b) { progress.batch(b); };
  cb.on_epoch = [&](const EpochReport& r) {
    progress.epoch(r, metric_name);
    if (log) {
      nlohmann::json j = {
          {"epoch", r.epoch}, {"train_loss", r.train_loss}, {"lr", r.lr}, {"seconds", r.seconds}};
      if (r.val_loss) j["val_loss"] = *r.val_loss;
      if (r.val_metric) j[std::string("val_") + std::string(metric_name)] = *r.val_metric;
      *log << j.dump() << '\n' << std::flush;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  const TrainResult result = train(net, X, Y, Xv, Yv, o, rng, cb);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Final metrics of the kept weights, on the training split and the validation split.
  nlohmann::json metrics;
  const auto measure = [&](const Batch<T>& Xs, const Batch<T>& Ys) {
    const Batch<T>& P = net.forward(Xs);
    nlohmann::json m = {{"loss", net.loss(Ys)}, {"rows", Xs.rows()}};
    if (o.metric == Metric::accuracy)
      m["accuracy"] = accuracy<T>(P, Ys);
    else
      m["r2"] = r2_score<T>(P, Ys);
    return m;
  };
  metrics["train"] = measure(X, Y);
  if (Xv.rows() > 0) metrics["validation"] = measure(Xv, Yv);
  metrics["epochs_run"] = result.history.size();
  metrics["best_epoch"] = result.best_epoch;
  metrics["stopped_early"] = result.stopped_early;
  model.metrics = metrics.dump();

  nlohmann::json training = {
      {"data", a.data.path},
      {"rows", table.rows()},
      {"seed", a.seed},
      {"layers", a.layers},
      {"activation", a.activation},
      {"init", init_from ? "from " + a.init_from : std::string(to_string(default_init(a)))},
      {"optimizer", a.optimizer},
      {"lr", o.optimizer.learning_rate()},
      {"momentum", a.momentum},
      {"nesterov", a.nesterov},
      {"weight_decay", o.optimizer.decay()},
      {"schedule", a.schedule},
      {"batch", a.batch},
      {"epochs", a.epochs},
      {"shuffle", !a.no_shuffle},
      {"val", a.val},
      {"dropout", a.dropout},
      {"dtype", a.dtype},
      {"patience", o.patience}};
  model.training = training.dump();
  model.set_params(net);
  save_model(model, a.out);

  fmt::print(
      "trained {} → {} on {} rows ({} for validation) in {:.2f} s, {} epochs{}\n",
      model.spec.inputs,
      [&] {
        std::string s;
        for (const auto& l : model.spec.layers)
          s += fmt::format("{}{} {}", s.empty() ? "" : " → ", l.units, to_string(l.activation));
        return s;
      }(),
      split.train.size(), split.validation.size(), seconds, result.history.size(),
      result.stopped_early ? fmt::format(" (early stop; best epoch {})", result.best_epoch) : "");
  const nlohmann::json& shown =
      metrics.contains("validation") ? metrics["validation"] : metrics["train"];
  fmt::print(
      "{} loss {:.6f}, {} {:.4f}\n", metrics.contains("validation") ? "validation" : "training",
      shown["loss"].get<double>(), metric_name, shown[std::string(metric_name)].get<double>());
  fmt::print("model written to {}\n", a.out);
  return kOk;
}

int run_train(const TrainArgs& a) {
  // Check every option before reading anything.
  if (a.epochs < 1) throw ConfigError("--epochs must be at least 1");
  if (!(a.val >= 0 && a.val < 1))
    throw ConfigError("--val must be in [0, 1), got " + fmt::format("{}", a.val));
  const Dtype dtype = parse_dtype(a.dtype);
  hidden_layers(a);
  parse_optimizer(a.optimizer);
  parse_schedule(a.schedule);
  if (!a.init.empty()) parse_init(a.init);
  if (!a.loss.empty()) parse_loss(a.loss);

  std::unique_ptr<Model> init_from;
  if (!a.init_from.empty()) init_from = std::make_unique<Model>(load_model(a.init_from));

  const Table table = load_table(a.data);
  PreprocessOptions po;
  po.target = a.target;
  po.drop = split_list(a.drop);
  po.scale = parse_scale(a.scale);
  po.impute = a.impute == "mean" ? Impute::mean : Impute::none;
  if (!a.task.empty()) po.task = parse_task(a.task);

  Model model;
  model.dtype = dtype;
  const Preprocessor target_only =
      init_from ? init_from->prep : Preprocessor::fit_target(table, po);
  std::vector<int> strata;
  if (target_only.task == Task::classify) strata = target_only.class_ids(table);
  Rng split_rng(a.seed ^
                0x9E3779B97F4A7C15ULL);  // its own stream: init draws stay the seed's first
  Split split = split_rows(table.rows(), a.val, split_rng, strata.empty() ? nullptr : &strata);
  if (split.train.empty())
    throw DataError(a.data.path + ": no rows left for training after the validation split");
  if (init_from) {
    model.prep = init_from->prep;
    model.spec = init_from->spec;
  } else {
    model.prep = Preprocessor::fit(table, split.train, po);
    model.spec = network_spec(a, model.prep);
  }
  return dtype == Dtype::float64 ? train_as<double>(a, table, model, split, init_from)
                                 : train_as<float>(a, table, model, split, init_from);
}

}  // namespace

Command add_train(CLI::App& root) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* app =
      root.add_subcommand("train", "Train a network on a CSV or IDX file and save the model");
  app->add_option("DATA", a->data.path, "CSV file (.csv or .csv.gz) or IDX images")->required();
  add_data_options(app, a->data);
  app->add_option("--target", a->target,
                  "Target column, by name or 0-based index (default: the last)");
  app->add_option("--drop", a->drop,
                  "Columns to ignore, comma-separated (identifiers such as name)");
  app->add_option("--scale", a->scale, "Numeric features: standard, minmax or none")
      ->capture_default_str();
  app->add_option("--impute", a->impute, "Missing numeric values: none (an error) or mean")
      ->check(CLI::IsMember({"none", "mean"}))
      ->capture_default_str();
  app->add_option("--task", a->task, "classify or regress (default: inferred from the target)");
  app->add_option("--layers", a->layers, "Hidden layer sizes, comma-separated")
      ->capture_default_str();
  app->add_option("--activation", a->activation,
                  "Hidden activation: relu, tanh, sigmoid, leaky_relu")
      ->capture_default_str();
  app->add_option("--loss", a->loss,
                  "Override the loss: mse, binary_cross_entropy, softmax_cross_entropy");
  app->add_option("--init", a->init,
                  "Initializer: normal, xavier, he (default: he for relu, xavier otherwise)");
  app->add_option("--seed", a->seed, "Seed of the one random generator")->capture_default_str();
  app->add_option("--optimizer", a->optimizer, "sgd, adam, adamw or rmsprop")
      ->capture_default_str();
  app->add_option("--lr", a->lr, "Learning rate (default: PyTorch's for the optimizer)")
      ->check(positive());
  app->add_option("--momentum", a->momentum, "Momentum of sgd and rmsprop, in [0, 1)")
      ->check(in_unit_interval());
  app->add_flag("--nesterov", a->nesterov, "Nesterov momentum (sgd)");
  app->add_option("--weight-decay", a->weight_decay,
                  "Weight decay (default: 0.01 for adamw, 0 otherwise)")
      ->check(at_least(0));
  app->add_option("--schedule", a->schedule, "Learning-rate schedule: constant, step, cosine")
      ->capture_default_str();
  app->add_option("--step-size", a->step_size, "step schedule: epochs between decays")
      ->check(positive())
      ->capture_default_str();
  app->add_option("--gamma", a->gamma, "step schedule: factor of each decay")
      ->check(positive())
      ->capture_default_str();
  app->add_option("--dropout", a->dropout, "Dropout probability on hidden layers, in [0, 1)")
      ->check(in_unit_interval());
  app->add_option("--batch", a->batch, "Samples per step (1: per-sample SGD)")
      ->check(at_least(1))
      ->capture_default_str();
  app->add_option("--epochs", a->epochs, "Passes over the training rows")
      ->check(at_least(1))
      ->capture_default_str();
  app->add_flag("--no-shuffle", a->no_shuffle,
                "Keep file order instead of reshuffling every epoch");
  app->add_option("--val", a->val,
                  "Fraction held out for validation (stratified for classification), in [0, 1)")
      ->capture_default_str();
  app->add_option("--patience", a->patience,
                  "Stop after N epochs without improvement and keep the best weights (0: off; "
                  "default 20 with a validation split, off without)")
      ->check(at_least(0));
  app->add_option("--dtype", a->dtype, "float32 or float64")->capture_default_str();
  app->add_option("--init-from", a->init_from, "Start from this model's weights and preprocessing");
  app->add_option("--out", a->out, "Model file to write")->capture_default_str();
  app->add_flag("--quiet", a->quiet, "No progress output");
  app->add_option("--log", a->log, "Write one JSON object per epoch to this file");
  return {app, [a] { return run_train(*a); }};
}

}  // namespace chainrule::cli
