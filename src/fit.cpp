#include "chainrule/fit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <tuple>
#include <type_traits>

#include "chainrule/error.hpp"
#include "chainrule/group.hpp"
#include "chainrule/init.hpp"
#include "chainrule/metrics.hpp"
#include "crc.hpp"

namespace chainrule {

namespace {

NetworkSpec network_spec(const FitOptions& o, const Preprocessor& prep) {
  if (o.activation == Activation::softmax || o.activation == Activation::identity)
    throw ConfigError("the hidden activation must be relu, tanh, sigmoid or leaky_relu, got " +
                      std::string(to_string(o.activation)));
  NetworkSpec spec;
  spec.inputs = prep.inputs();
  for (Index units : o.layers) {
    if (units < 1)
      throw ConfigError("hidden layer sizes must be at least 1, got " + std::to_string(units));
    spec.layers.push_back({units, o.activation});
  }
  Activation out = Activation::identity;
  spec.loss = Loss::mse;
  if (prep.task == Task::classify && prep.classes.size() == 2) {
    out = Activation::sigmoid;
    spec.loss = Loss::binary_cross_entropy;
  } else if (prep.task == Task::classify) {
    out = Activation::softmax;
    spec.loss = Loss::softmax_cross_entropy;
  }
  if (o.loss) {
    spec.loss = *o.loss;
    if (spec.loss == Loss::binary_cross_entropy && out != Activation::sigmoid)
      throw ConfigError("binary_cross_entropy needs a two-class target");
    if (spec.loss == Loss::softmax_cross_entropy && out != Activation::softmax)
      throw ConfigError("softmax_cross_entropy needs a target with three or more classes");
  }
  spec.layers.push_back({prep.outputs(), out});
  return spec;
}

Init init_of(const FitOptions& o) {
  if (o.init) return *o.init;
  return o.activation == Activation::relu || o.activation == Activation::leaky_relu ? Init::he
                                                                                    : Init::xavier;
}

// CRC-32 of the matrices' bytes: the fingerprint that ties a checkpoint to its data.
template <class T>
std::uint32_t data_crc(std::initializer_list<const BatchView<T>*> parts) {
  std::uint32_t crc = 0;
  for (const BatchView<T>* m : parts)
    for (Index r = 0; r < m->rows(); ++r)  // row by row: a mapped matrix may have gaps between
      crc = detail::crc32_update(crc, m->row(r).data(), std::size_t(m->cols()) * sizeof(T));
  return crc;
}

// This process's part of a run (its rows, and where they lie among all processes' rows).
// Without a group: every row, at 0.
struct Part {
  const Group* group = nullptr;
  Split local;            // this process's training and validation rows (its table's rows)
  Index train_first = 0;  // the global position of its first training row
  std::size_t train_rows = 0, validation_rows = 0;  // of every process
  std::size_t rows = 0;                             // every process's rows, target or not
};

// The target column of every process's rows, in rank order (messages then name rows, not lines):
// what the target's preprocessing, the examples and the stratified split are computed from (the
// same on every process, and the same as one process with the whole table computes them).
Table gather_target(const Table& t, const std::string& name, const Group& g) {
  const long c = t.find(name);
  if (c < 0) throw DataError(t.source + ": no column '" + name + "' (the target)");
  const Column& y = t.columns[std::size_t(c)];
  std::string mine;
  const auto put = [&](const void* p, std::size_t n) {
    mine.append(static_cast<const char*>(p), n);
  };
  const std::uint64_t rows = t.rows();
  put(&rows, 8);
  if (y.numeric)
    put(y.numbers.data(), rows * sizeof(double));
  else
    for (const std::string& v : y.text) {
      const std::uint64_t n = v.size();
      put(&n, 8);
      put(v.data(), n);
    }
  Table whole;
  whole.source = t.source;
  Column col;
  col.name = y.name;
  col.numeric = y.numeric;
  col.field = y.field;
  for (const std::string& part : g.all_gather(mine)) {
    const char* p = part.data();
    const auto get = [&](void* dst, std::size_t n) {
      std::memcpy(dst, p, n);
      p += n;
    };
    std::uint64_t n;
    get(&n, 8);
    if (y.numeric) {
      const std::size_t at = col.numbers.size();
      col.numbers.resize(at + n);
      get(col.numbers.data() + at, n * sizeof(double));
    } else {
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t len;
        get(&len, 8);
        col.text.emplace_back(p, len);
        p += len;
      }
    }
  }
  whole.columns.push_back(std::move(col));
  return whole;
}

// This process's rows among `rows` (indices into every process's rows, ascending), as indices
// into its own table, and how many of `rows` lie before them.
std::vector<std::size_t> local_rows(const std::vector<std::size_t>& rows, std::size_t offset,
                                    std::size_t count, Index* before = nullptr) {
  std::vector<std::size_t> mine;
  for (const std::size_t r : rows)
    if (r >= offset && r < offset + count) mine.push_back(r - offset);
  if (before) *before = Index(std::lower_bound(rows.begin(), rows.end(), offset) - rows.begin());
  return mine;
}

// Whether the network can read its training rows straight from the caller's matrix, with no
// copy: a row-major matrix of T, unscaled, whose every row is a training row, in order, and
// whose preprocessing changes nothing (every column a number feature with center 0 and scale 1,
// in the matrix's order) and which holds no missing or infinite value (transform would impute
// them or refuse them). The result is then the same matrix transform would have made. With
// `finite`, the caller knows the rows hold no such value (the preprocessing was just fitted on
// them without imputation: it refused any), and they are not looked at again.
template <class T>
bool readable_in_place(const Dataset& data, const Preprocessor& p,
                       std::span<const std::size_t> rows, bool finite) {
  const MatrixView* m = data.matrix();
  constexpr ElementType type = std::is_same_v<T, float> ? ElementType::f32 : ElementType::f64;
  if (m == nullptr || !m->row_major || m->type != type || m->scale != 1 ||
      p.features.size() != std::size_t(m->cols) || Index(rows.size()) > m->rows)
    return false;
  for (const Feature& f : p.features)
    if (!f.numeric || f.center != 0 || f.scale != 1) return false;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i] != i) return false;
  if (finite) return true;
  const T* base = static_cast<const T*>(m->data);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const T* x = base + m->offset(Index(i), 0);
    bool finite = true;
    for (Index c = 0; c < m->cols; ++c)
      finite &= std::isfinite(x[c]);
    if (!finite) return false;
  }
  return true;
}

TrainingSettings training_settings(const FitOptions& o, const TrainOptions& t, std::size_t rows) {
  return {.rows = rows,
          .seed = o.seed,
          .layers = o.layers,
          .activation = o.activation,
          .init = o.init_from ? std::nullopt : std::optional<Init>(init_of(o)),
          .optimizer = t.optimizer.kind,
          .lr = t.optimizer.learning_rate(),
          .momentum = t.optimizer.momentum,
          .nesterov = t.optimizer.nesterov,
          .weight_decay = t.optimizer.decay(),
          .l2 = t.l2,
          .monitor_metric = t.monitor_metric,
          .schedule = t.schedule.kind,
          .batch = t.batch,
          .epochs = t.epochs,
          .shuffle = t.shuffle,
          .validation = o.validation,
          .patience = t.patience,
          .dropout = t.dropout,
          .dtype = o.dtype};
}

// data_crc of every process's matrices: each part's CRC of every process, combined in rank order
// (zlib's crc32_combine): the fingerprint one process with all the rows computes.
template <class T>
std::uint32_t group_data_crc(std::initializer_list<const BatchView<T>*> parts, const Group& g) {
  std::string mine;
  for (const BatchView<T>* m : parts) {
    const std::uint64_t crc = data_crc<T>({m}),
                        len = std::uint64_t(m->rows()) * std::uint64_t(m->cols()) * sizeof(T);
    mine.append(reinterpret_cast<const char*>(&crc), 8)
        .append(reinterpret_cast<const char*>(&len), 8);
  }
  const std::vector<std::string> all = g.all_gather(mine);
  uLong crc = 0;
  for (std::size_t k = 0; k < parts.size(); ++k)
    for (const std::string& a : all) {
      std::uint64_t c, len;
      std::memcpy(&c, a.data() + 16 * k, 8);
      std::memcpy(&len, a.data() + 16 * k + 8, 8);
      crc = ::crc32_combine(crc, uLong(c), z_off_t(len));
    }
  return std::uint32_t(crc);
}

// Loss and the task's metric of the network's current weights on (X, Y); with a group, on every
// process's rows. In blocks of rows (score_sums), so that the activations of the whole split are
// never held at once: for Fashion-MNIST's 60,000 rows through 784-128-64-10 they were 90 MiB of
// the run's peak.
template <class T>
SplitMetrics measure(Network<T>& net, const BatchView<T>& X, const BatchView<T>& Y, Metric metric,
                     const Group* g) {
  ScoreSums s = score_sums(net, X, Y, metric);
  if (g) g->sum(s.values);
  return {.loss = s.rows() > 0 ? s.loss() : 0,
          .rows = Index(s.rows()),
          .metric = metric,
          .value = s.rows() > 0 ? s.metric_value() : 0};
}

template <class T>
void train_model(const Dataset& data, const Part& part, const FitOptions& o,
                 const TrainCallbacks& callbacks, const CheckpointSink& on_checkpoint,
                 std::chrono::steady_clock::time_point started, FitResult& r) {
  Model& model = r.model;
  const Group* g = part.group;
  const Split& split = part.local;
  Rng rng(o.seed);  // the first draws of a run are the initial weights
  const Model* base = o.resume ? &o.resume->model : o.init_from;
  Network<T> net = base ? base->network<T>() : Network<T>(model.spec);
  if (!base) initialize(net, init_of(o), rng);
  net.set_threads(o.threads);
  if (o.dtype == Dtype::bfloat16) net.set_bf16_products(true);
  const Table& table = data.table();
  Batch<T> copy;  // the training rows, preprocessed, unless the network reads them in place
  Batch<T> Y_, Xv_, Yv_;
  // fit_features looked at every value of the training rows and, without imputation, refused a
  // missing or infinite one (a preprocessing taken from another model has not looked).
  const bool in_place =
      readable_in_place<T>(data, model.prep, split.train, !base && o.data.impute == Impute::none);
  // A value of this process's rows that the preprocessing refuses (a gap, a number out of the
  // training precision's range) fails here on this process alone: agreed on with the others.
  const auto prepare = [&] {
    if (data.scan()) {  // a file read in passes: one pass for both
      std::tie(copy, Xv_) =
          model.prep.transform_split<T>(data, split.train, split.validation, o.threads);
    } else {
      if (!in_place) copy = model.prep.transform<T>(data, split.train, o.threads);
      Xv_ = model.prep.transform<T>(data, split.validation, o.threads);
    }
    Y_ = model.prep.targets<T>(table, split.train);
    Yv_ = model.prep.targets<T>(table, split.validation);
  };
  together(g, prepare);
  const BatchView<T> X =
      in_place ? BatchView<T>(Eigen::Map<const Batch<T>, 0, Eigen::OuterStride<>>(
                     static_cast<const T*>(data.matrix()->data), Index(split.train.size()),
                     data.matrix()->cols, Eigen::OuterStride<>(data.matrix()->offset(1, 0))))
               : BatchView<T>(copy);
  const BatchView<T> Y(Y_), Xv(Xv_), Yv(Yv_);
  // The data's fingerprint, for checkpoints and the resume check only (a pass over all of it).
  const std::uint32_t crc = !(o.resume || on_checkpoint) ? 0
                            : g                          ? group_data_crc<T>({&X, &Y, &Xv, &Yv}, *g)
                                                         : data_crc<T>({&X, &Y, &Xv, &Yv});
  if (o.resume && o.resume->data_crc != crc)
    throw DataError(table.source +
                    ": not the data the checkpoint was trained on (their fingerprints differ)");

  TrainOptions t = o.train;
  t.patience = o.patience.value_or(o.validation > 0 ? 20 : 0);
  t.metric = model.prep.task == Task::classify ? Metric::accuracy : Metric::r2;
  t.schedule.total_epochs = t.epochs;
  // A resumed run keeps the settings it started with (its --init-from file need not exist now).
  model.training = o.resume ? o.resume->model.training : training_settings(o, t, part.rows);
  TrainCallbacks cb = callbacks;
  if (g) {  // every process's part of each batch's gradient, and one stop decision for all
    t.shard.first = part.train_first;
    t.shard.rows = Index(part.train_rows);
    t.shard.lead = g->rank() == 0;
    // Every process's first training row, so that batches are balanced across the processes.
    const std::int64_t first = part.train_first;
    for (const std::string& s :
         g->all_gather(std::string_view(reinterpret_cast<const char*>(&first), sizeof first))) {
      std::int64_t v = 0;
      std::memcpy(&v, s.data(), std::min(s.size(), sizeof v));
      t.shard.starts.push_back(Index(v));
    }
    t.shard.process = g->rank();
    cb.exchange = [g](GradientSpan send, std::span<const std::size_t> send_counts,
                      GradientSpan recv, std::span<const std::size_t> recv_counts) {
      std::visit(
          [&](auto out) {
            using S = decltype(out);
            g->exchange(std::get<S>(send), send_counts, out, recv_counts);
          },
          recv);
    };
    cb.sum = [g](std::span<double> v) { g->sum(v); };
    cb.reduce_scatter = [g](GradientSpan grads) {
      std::visit([&](auto span) { g->reduce_scatter(span); }, grads);
      return g->block(std::visit([](auto span) { return span.size(); }, grads), g->rank());
    };
    cb.all_gather = [g](GradientSpan values) {
      std::visit([&](auto span) { g->all_gather_blocks(span); }, values);
    };
    cb.decide_stop = [&](StopReason local) {
      if (callbacks.decide_stop) local = callbacks.decide_stop(local);
      std::int64_t v[1] = {std::int64_t(local)};
      g->max(v);
      if (v[0] < 0 || v[0] > std::int64_t(StopReason::diverged))
        throw Error("the processes of the job fell out of step (a stop decision of " +
                    std::to_string(v[0]) + ")");
      return StopReason(v[0]);
    };
  }
  if (on_checkpoint)
    cb.on_checkpoint = [&](const TrainState& state) {
      if (callbacks.on_checkpoint) callbacks.on_checkpoint(state);
      Checkpoint c{.model = model, .state = state, .data_crc = crc, .settings = o.settings};
      on_checkpoint(c);
    };
  if (g) {  // the weights in memory every process maps, where the group has it: no copies
    const Group::Placed at = g->place(net.params().data(), net.params().size_bytes());
    if (at.params) {
      net.place(static_cast<T*>(at.params), static_cast<T*>(at.grads));
      cb.params_shared = true;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  r.prepare_seconds = std::chrono::duration<double>(start - started).count();
  r.history = train(net, X, Y, Xv, Yv, t, rng, cb, o.resume ? &o.resume->state : nullptr);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  model.set_params(net);
  if (r.history.interrupted) return;

  // Final metrics of the kept weights on both splits.
  ModelMetrics metrics{.train = o.measure_train ? measure(net, X, Y, t.metric, g) : SplitMetrics{},
                       .validation = {},
                       .epochs_run = r.history.history.size(),
                       .best_epoch = r.history.best_epoch,
                       .stopped_early = r.history.stopped_early,
                       .history = r.history.history};
  for (EpochReport& e : metrics.history)
    e.seconds = 0;  // the same seed writes the same file
  if (r.validation_rows > 0) metrics.validation = measure(net, Xv, Yv, t.metric, g);
  model.metrics = metrics;
}

}  // namespace

TrainingSettings training_settings(const FitOptions& o, std::size_t rows) {
  TrainOptions t = o.train;
  t.patience = o.patience.value_or(o.validation > 0 ? 20 : 0);
  return training_settings(o, t, rows);
}

std::uint64_t estimate_memory(const NetworkSpec& spec, Dtype dtype, std::size_t rows,
                              const TrainOptions& train, int threads) {
  // In doubles, so that no product overflows; the result is capped, not wrapped.
  const double width = weights_dtype(dtype) == Dtype::float32 ? 4 : 8;
  double params = 0, units = double(spec.inputs), in = double(spec.inputs);
  for (const LayerSpec& l : spec.layers) {
    params += in * double(l.units) + double(l.units);
    units += double(l.units);
    in = double(l.units);
  }
  // Weights, gradients and up to two optimizer moments in the training precision; the model's,
  // the best and a checkpoint's copies in double.
  // Each thread beyond the first sums its block's gradients in a buffer of its own.
  const double weights = params * ((4 + std::max(threads - 1, 0)) * width + 3 * 8);
  // Per batch row: every layer's input, pre-activation, activation and delta (and dropout mask),
  // and with a split by columns each thread's copy of the batch beyond the first.
  // Twice: the network keeps the workspaces of a partial last batch too; and those of the
  // blocks of up to 4096 rows that validation and the final metrics run through (pre-activation
  // and activation).
  const double workspaces = 2 * double(std::max<Index>(train.batch, 1)) *
                                (units * 5 + double(spec.inputs) * std::max(threads - 1, 0)) *
                                width +
                            double(std::min<std::size_t>(rows, 4096)) * units * 2 * width;
  // The data matrices: inputs and outputs of every row, and the predictions for metrics.
  const double data = double(rows) * (double(spec.inputs) + 2 * in) * width;
  const double total = weights + workspaces + data + double(64 << 20);
  return total > 1.8e19 ? UINT64_MAX : std::uint64_t(total);
}

FitResult fit(const Dataset& data, const FitOptions& o, const TrainCallbacks& callbacks,
              const CheckpointSink& on_checkpoint) {
  const Table& table = data.table();  // the target (and, for a table, the features)
  const Group* g = o.group && o.group->size() > 1 ? o.group : nullptr;

  const auto started = std::chrono::steady_clock::now();
  FitResult r;
  Model& model = r.model;
  if (o.dtype == Dtype::bfloat16) require_bf16_products();
  model.dtype = weights_dtype(o.dtype);
  const Model* base = o.resume ? &o.resume->model : o.init_from;
  if (o.resume && o.resume->model.dtype != model.dtype)
    throw ConfigError("the checkpoint holds " + std::string(to_string(o.resume->model.dtype)) +
                      " weights, not " + std::string(to_string(model.dtype)) + " (--dtype " +
                      std::string(to_string(o.dtype)) + ")");
  // With a group, the examples, the target's preprocessing and the split come from the target
  // column of every process's rows (the same on every process); this process's rows are
  // [offset, offset + data.rows()) of them.
  Part part;
  part.group = g;
  part.rows = data.rows();
  Preprocessor target_only;
  {  // every row's target, the examples and the split: freed once this process's rows are known
    std::size_t offset = 0;
    Table whole_target;
    PreprocessOptions target_options = o.data;
    if (g) {
      std::tie(offset, part.rows) = g->offset_of(data.rows());
      const std::string name = base                     ? base->prep.target
                               : !o.data.target.empty() ? o.data.target
                               : table.cols()           ? table.columns.back().name
                                                        : "";
      whole_target = gather_target(table, name, *g);
      // By name: a target given by its index names a column of the whole table, not of this one.
      target_options.target = whole_target.columns[0].name;
    } else if (data.scan() && data.scan()->is_target(o.data.target)) {
      // A file read in passes holds its target column alone: by name, an index names the file's.
      target_options.target = table.columns[0].name;
    }
    const Table& targets = g ? whole_target : table;
    target_only = base ? base->prep : Preprocessor::fit_target(targets, target_options);
    // The examples: rows whose target is present (the others are left out, with a note).
    const std::vector<std::size_t> examples = target_only.rows_with_target(targets);
    if (examples.empty())
      throw DataError(table.source + ": the target column '" + target_only.target +
                      "' has no values (every row's is missing): expected a target to learn");
    if (examples.size() < part.rows)
      r.notes.push_back({std::to_string(part.rows - examples.size()) + " of " +
                             std::to_string(part.rows) +
                             " rows have no value in the target column '" + target_only.target +
                             "': they are left out of training and validation",
                         ""});
    std::vector<int> strata;
    if (target_only.task == Task::classify) {
      const std::vector<int> ids = target_only.class_ids(targets);
      for (const std::size_t row : examples)
        strata.push_back(ids[row]);
    }
    Rng split_rng(o.seed ^ 0x9E3779B97F4A7C15ULL);  // its own stream (docs/design-notes.md)
    Split split =
        split_rows(examples.size(), o.validation, split_rng, strata.empty() ? nullptr : &strata);
    for (auto* rows : {&split.train, &split.validation})
      for (std::size_t& i : *rows)
        i = examples[i];
    if (split.train.empty())
      throw DataError(table.source + ": no rows left for training after the validation split");
    r.train_rows = part.train_rows = split.train.size();
    r.validation_rows = part.validation_rows = split.validation.size();
    if (g) {
      part.local.train = local_rows(split.train, offset, data.rows(), &part.train_first);
      part.local.validation = local_rows(split.validation, offset, data.rows());
    } else {
      part.local = std::move(split);
    }
  }
  if (base) {
    model.prep = base->prep;
    model.spec = base->spec;
  } else {
    model.prep =
        Preprocessor::fit_features(target_only, data, part.local.train, o.data, g, o.threads);
    model.spec = network_spec(o, model.prep);
  }
  TrainOptions sized = o.train;  // a batch is at most the training rows
  sized.batch = std::min<Index>(sized.batch, Index(r.train_rows));
  const std::uint64_t need = estimate_memory(model.spec, o.dtype, data.rows(), sized, o.threads);
  const std::uint64_t limit = o.max_memory > 0 ? o.max_memory : available_memory();
  if (g) {  // one decision for all: the largest need against the smallest limit
    std::int64_t v[2] = {std::int64_t(std::min<std::uint64_t>(need, INT64_MAX)),
                         -std::int64_t(std::min<std::uint64_t>(limit, INT64_MAX))};
    g->max(v);
    if (std::uint64_t(v[0]) > std::uint64_t(-v[1]))
      throw LimitError("a process of the job needs about " + format_bytes(std::uint64_t(v[0])) +
                           ", more than the " + format_bytes(std::uint64_t(-v[1])) +
                           " of memory available to the one with the least",
                       "max_memory");
  }
  if (need > limit)
    throw LimitError("the run needs about " + format_bytes(need) + " (" + describe(model.spec) +
                         ", batches of " + std::to_string(o.train.batch) + ", " +
                         std::to_string(data.rows()) + " rows), more than the " +
                         format_bytes(limit) +
                         (o.max_memory > 0 ? " allowed" : " of memory available"),
                     "max_memory");
  const std::size_t K = model.prep.classes.size();
  if (model.prep.task == Task::classify && K > 20 && 2 * K > part.rows)
    r.notes.push_back({"the target column '" + model.prep.target + "' has " + std::to_string(K) +
                           " distinct values in " + std::to_string(part.rows) +
                           " rows, each a class: if it is a measured quantity, it is a regression",
                       "task"});
  if (o.dtype == Dtype::float64)
    train_model<double>(data, part, o, callbacks, on_checkpoint, started, r);
  else
    train_model<float>(data, part, o, callbacks, on_checkpoint, started, r);
  return r;
}

namespace {

// Network outputs for every row, computed in the model's precision.
Batch<double> outputs(const Model& m, const Batch<double>& X, int threads) {
  if (m.dtype == Dtype::float64) {
    Network<double> net = m.network<double>();
    net.set_threads(threads);
    return net.infer(X);
  }
  Network<float> net = m.network<float>();
  net.set_threads(threads);
  return net.infer(X.cast<float>()).cast<double>();
}

// Class probabilities (rows, classes) from the outputs: two classes have one sigmoid output.
Batch<double> probabilities(const Model& m, const Batch<double>& P) {
  if (m.prep.classes.size() != 2) return P;
  Batch<double> Q(P.rows(), 2);
  Q.col(1) = P.col(0);
  Q.col(0) = 1.0 - P.col(0).array();
  return Q;
}

// Labels, probabilities or values from the network outputs P. A non-finite output (inputs far
// outside the training range, or a damaged model) is an error naming the row, never a label.
// `rows[n]` is the table row of output row n.
Predictions predictions_from(const Model& m, const Batch<double>& P, const Table& t,
                             std::span<const std::size_t> rows) {
  for (Index n = 0; n < P.rows(); ++n)
    if (!P.row(n).allFinite())
      throw DataError(
          (t.line_of(rows[std::size_t(n)]) > 0
               ? t.source + ":" + std::to_string(t.line_of(rows[std::size_t(n)]))
               : t.source + ": row " + std::to_string(rows[std::size_t(n)] + 1)) +
          ": the model's output for this row is not finite (NaN or infinite): expected values "
          "within the range the model was trained on");
  Predictions p;
  if (m.prep.task == Task::regress) {
    for (Index n = 0; n < P.rows(); ++n)
      p.value.push_back(m.prep.target_value(P(n, 0)));
    return p;
  }
  p.probabilities = probabilities(m, P);
  for (Index n = 0; n < P.rows(); ++n) {
    Index k;
    p.probabilities.row(n).maxCoeff(&k);
    p.label.push_back(std::size_t(k));
  }
  return p;
}

}  // namespace

Predictions predict(const Model& m, const Dataset& data, int threads) {
  const PagedVector<std::size_t> rows = all_rows(data.rows());
  return predictions_from(m, outputs(m, m.prep.transform<double>(data, rows, threads), threads),
                          data.table(), rows);
}

Evaluation evaluate(const Model& m, const Dataset& data, int threads) {
  const Table& t = data.table();
  if (!m.prep.has_target(t))
    throw DataError(t.source + ": no target column '" + m.prep.target + "' to evaluate against");
  // Rows with a missing target are left out (and counted).
  const std::vector<std::size_t> rows = m.prep.rows_with_target(t);
  if (rows.empty())
    throw DataError(t.source + ": the target column '" + m.prep.target +
                    "' has no values (every row's is missing): nothing to evaluate against");
  const Batch<double> X = m.prep.transform<double>(data, rows, threads);
  const Batch<double> Y = m.prep.targets<double>(t, rows);
  Evaluation e;
  e.rows = rows.size();
  e.skipped = data.rows() - rows.size();
  {
    Network<double> net = m.network<double>();
    net.infer(X);
    e.loss = net.loss(Y);
  }
  const Predictions p = predictions_from(m, outputs(m, X, threads), t, rows);
  if (m.prep.task == Task::classify) {
    const std::size_t K = m.prep.classes.size();
    const std::vector<int> ids = m.prep.class_ids(t);
    std::vector<std::size_t> truth;
    for (std::size_t n = 0; n < p.label.size(); ++n)
      truth.push_back(std::size_t(ids[rows[n]]));
    e.confusion = confusion_matrix(truth, p.label, K);
    e.accuracy = accuracy(e.confusion);
    e.classes = class_metrics(e.confusion, m.prep.classes);
    return e;
  }
  std::vector<double> truth(std::size_t(Y.rows()));
  for (Index n = 0; n < Y.rows(); ++n)
    truth[std::size_t(n)] = m.prep.target_value(Y(n, 0));
  const RegressionMetrics r = regression_metrics(truth, p.value);
  e.mse = r.mse;
  e.mae = r.mae;
  e.r2 = r.r2;
  return e;
}

}  // namespace chainrule
