// chainrule train: a CSV (or IDX) file in, a trained model file out.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/init.hpp"
#include "commands.hpp"
#include "data_args.hpp"
#include "lang.hpp"
#include "report.hpp"

namespace chainrule::cli {

namespace {

// The library's defaults, written once (fit.hpp, trainer.hpp): the CLI's are taken from them.
const FitOptions kFit;
const TrainOptions& kTrain = kFit.train;

std::string default_layers() {
  std::string s;
  for (const Index u : kFit.layers)
    s += (s.empty() ? "" : ",") + std::to_string(u);
  return s;
}

struct TrainArgs {
  DataArgs data;
  std::string target, drop, scale = std::string(to_string(kFit.data.scale)), task,
                            impute = kFit.data.impute == Impute::mean ? "mean" : "none";
  std::string layers = default_layers(), activation = std::string(to_string(kFit.activation)), loss,
              init;
  std::uint64_t seed = kFit.seed;
  std::string optimizer = std::string(to_string(kTrain.optimizer.kind));
  double lr = 0, momentum = kTrain.optimizer.momentum, weight_decay = -1;
  // scikit-learn's alpha (TrainOptions::l2). Not in the checkpoint's settings below (whose older
  // files lack it): a resumed run takes it from the checkpoint's model (TrainingSettings::l2).
  double l2 = kTrain.l2;
  bool nesterov = kTrain.optimizer.nesterov;
  std::string schedule = std::string(to_string(kTrain.schedule.kind));
  int step_size = 0;  // 0: not given (30)
  double gamma = 0;   // 0: not given (0.1)
  double dropout = kTrain.dropout;
  long batch = kTrain.batch;
  int epochs = kTrain.epochs;
  bool no_shuffle = !kTrain.shuffle;
  double val = kFit.validation;
  int patience = -1;  // -1: 20 with a validation split, off without
  std::string dtype = std::string(to_string(kFit.dtype));
  std::string init_from;
  std::string out = "model.safetensors";
  std::string checkpoint;  // empty: out + ".ckpt"
  int checkpoint_every = 0;
  std::string resume;
  bool quiet = false;
  bool timings = false;  // where the training steps spend their time, printed at the end
  std::string log;
  std::string report;  // an HTML report, refreshed while training runs
  Lang lang = Lang::en;
  // Limits of this machine, not settings of the run: never stored in a checkpoint.
  std::string max_memory;
  std::string stream = "auto";  // how a CSV file is read (LoadedData): the model is the same
  std::size_t max_categories = PreprocessOptions{}.max_categories;
  std::size_t max_classes = PreprocessOptions{}.max_classes;
};

// The settings a checkpoint stores, so that `--resume` rebuilds exactly the same options.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TrainArgs, data, target, drop, scale, task, impute, layers,
                                   activation, loss, init, seed, optimizer, lr, momentum,
                                   weight_decay, nesterov, schedule, step_size, gamma, dropout,
                                   batch, epochs, no_shuffle, val, patience, dtype, init_from, out,
                                   checkpoint, checkpoint_every)

// Options that may be given beside --resume; every other one comes from the checkpoint.
constexpr const char* kResumeOptions[] = {
    "--out",    "--checkpoint", "--checkpoint-every", "--quiet",
    "--log",    "--max-memory", "--max-input-size",   "--report",
    "--stream", "--lang",       "--timings"};

// SIGINT and SIGTERM ask the training loop to stop after the current batch; a second signal
// acts as if there were no handler (SA_RESETHAND), and so does the first one when the batch has
// not ended 30 s later (a batch that never ends must not keep the process alive).
std::atomic<bool> g_stop{false};
volatile std::sig_atomic_t g_signal = 0;
extern "C" void request_stop(int sig) {
  g_stop.store(true);
  g_signal = sig;
  ::alarm(30);
}
extern "C" void stop_now(int) {
  std::signal(int(g_signal), SIG_DFL);
  std::raise(int(g_signal));
}

class StopOnSignals {
 public:
  StopOnSignals() {
    struct sigaction sa {};
    sa.sa_handler = request_stop;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    struct sigaction alarm {};
    alarm.sa_handler = stop_now;
    sigemptyset(&alarm.sa_mask);
    ::sigaction(SIGALRM, &alarm, &old_alarm_);
  }
  ~StopOnSignals() {
    ::alarm(0);
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGALRM, &old_alarm_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{}, old_alarm_{};
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

// --log: one JSON line per epoch, each write checked. After a failed write (a full disk) the log
// stops and remembers why; training goes on, and the command reports it at the end.
class LogFile {
 public:
  LogFile(const std::string& path, bool append)
      : path_(path), fd_(open_output_stream(path, append)) {}
  ~LogFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;
  void write(const std::string& line) {
    if (!error_.empty()) return;
    try {
      write_all(fd_, line, path_);
    } catch (const Error& e) {
      error_ = e.what();
    }
  }
  bool close() {
    if (fd_ >= 0 && ::close(fd_) != 0 && error_.empty())
      error_ = path_ + ": cannot write: " + std::strerror(errno);
    fd_ = -1;
    return error_.empty();
  }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  int fd_;
  std::string error_;
};

std::vector<Index> parse_layers(const std::string& list) {
  std::vector<Index> layers;
  for (const std::string& item : split_list(list, "--layers")) {
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
    layers.push_back(units);
  }
  return layers;
}

// Every option is checked before any file is read.
FitOptions fit_options(const TrainArgs& a) {
  if (!(a.val >= 0 && a.val < 1))
    throw ConfigError("--val must be in [0, 1), got " + fmt::format("{}", a.val));
  FitOptions o;
  o.data.target = a.target;
  o.data.drop = split_list(a.drop, "--drop");
  o.threads = threads();  // --threads: the same count gives the same bytes
  o.data.max_categories = a.max_categories;
  o.data.max_classes = a.max_classes;
  if (!a.max_memory.empty()) o.max_memory = parse_bytes(a.max_memory);
  o.data.scale = parse_scale(a.scale);
  o.data.impute = a.impute == "mean" ? Impute::mean : Impute::none;
  if (!a.task.empty()) o.data.task = parse_task(a.task);
  o.layers = parse_layers(a.layers);
  o.activation = parse_activation(a.activation);
  if (!a.loss.empty()) o.loss = parse_loss(a.loss);
  if (!a.init.empty()) o.init = parse_init(a.init);
  o.seed = a.seed;
  o.validation = a.val;
  if (a.patience >= 0) o.patience = a.patience;
  o.dtype = parse_dtype(a.dtype);
  TrainOptions& t = o.train;
  t.epochs = a.epochs;
  t.batch = a.batch;
  t.shuffle = !a.no_shuffle;
  t.dropout = a.dropout;
  t.optimizer.kind = parse_optimizer(a.optimizer);
  if (a.lr > 0) t.optimizer.lr = a.lr;
  t.optimizer.momentum = a.momentum;
  t.optimizer.nesterov = a.nesterov;
  if (a.weight_decay >= 0) t.optimizer.weight_decay = a.weight_decay;
  t.l2 = a.l2;
  t.schedule.kind = parse_schedule(a.schedule);
  if (t.schedule.kind != ScheduleKind::step && (a.step_size > 0 || a.gamma > 0))
    throw ConfigError("--step-size and --gamma apply to --schedule step only");
  if (a.step_size > 0) t.schedule.step_size = a.step_size;
  if (a.gamma > 0) t.schedule.gamma = a.gamma;
  make_optimizer<float>(t.optimizer);  // rejects inconsistent optimizer options now
  return o;
}

bool allowed_beside_resume(const std::string& name) {
  return std::any_of(std::begin(kResumeOptions), std::end(kResumeOptions),
                     [&](const char* n) { return name == n; }) ||
         name == "--resume" || name == "--help";
}

// A resumed run may be given its original command line again (scripts and shell history re-run
// it): an option is refused only when its value differs from the checkpoint's, naming both.
void refuse_differing_settings(const TrainArgs& given, const TrainArgs& stored,
                               const CLI::App& app) {
  const nlohmann::json want = nlohmann::json(given), have = nlohmann::json(stored);
  for (const CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_name();
    if (opt->get_positional() || app.count(name) == 0 || allowed_beside_resume(name)) continue;
    std::string field = name.substr(2);
    std::replace(field.begin(), field.end(), '-', '_');
    const auto find = [&](const nlohmann::json& j) -> const nlohmann::json* {
      if (j.contains(field)) return &j[field];
      if (j.at("data").contains(field)) return &j.at("data")[field];
      return nullptr;
    };
    const nlohmann::json *w = find(want), *h = find(have);
    if (w == nullptr || h == nullptr) continue;  // a limit of this machine, not a setting
    if (*w != *h)
      throw ConfigError(fmt::format(
          "{} {} differs from the checkpoint's {}: a resumed run keeps the settings it started "
          "with (leave {} out, or start a new run with --init-from)",
          name, w->dump(), h->dump(), name));
  }
}

// With --init-from the model decides the architecture and preprocessing: an option that would
// change them is accepted only when it says what the model already is.
void refuse_differing_model_options(const TrainArgs& a, const Model& m, const CLI::App& app) {
  const auto differs = [&](const std::string& name, const std::string& model_value) {
    throw ConfigError(name + " differs from the model's " + model_value + ": --init-from takes " +
                      "the architecture and preprocessing from " + a.init_from + " (leave " + name +
                      " out)");
  };
  const std::vector<LayerSpec>& layers = m.spec.layers;
  if (app.count("--target") && a.target != m.prep.target) differs("--target", m.prep.target);
  if (app.count("--task") && parse_task(a.task) != m.prep.task)
    differs("--task", std::string(to_string(m.prep.task)));
  if (app.count("--scale") && parse_scale(a.scale) != m.prep.scale)
    differs("--scale", std::string(to_string(m.prep.scale)));
  if (app.count("--impute") && (a.impute == "mean") != (m.prep.impute == Impute::mean))
    differs("--impute", m.prep.impute == Impute::mean ? "mean" : "none");
  if (app.count("--loss") && parse_loss(a.loss) != m.spec.loss)
    differs("--loss", std::string(to_string(m.spec.loss)));
  std::vector<Index> hidden;
  for (std::size_t l = 0; l + 1 < layers.size(); ++l)
    hidden.push_back(layers[l].units);
  if (app.count("--layers") && parse_layers(a.layers) != hidden) {
    std::string h;
    for (const Index u : hidden)
      h += (h.empty() ? "" : ",") + std::to_string(u);
    differs("--layers", h);
  }
  if (app.count("--activation") && layers.size() > 1 &&
      parse_activation(a.activation) != layers.front().activation)
    differs("--activation", std::string(to_string(layers.front().activation)));
  for (const std::string& d : split_list(a.drop, "--drop")) {
    const bool used =
        d == m.prep.target || std::any_of(m.prep.features.begin(), m.prep.features.end(),
                                          [&](const Feature& f) { return f.name == d; });
    if (used) differs("--drop " + d, "features, which include '" + d + "'");
  }
  if (app.count("--init"))
    throw ConfigError("--init does nothing beside --init-from: the weights come from " +
                      a.init_from);
}

// --timings: a time to 3 decimals of s, ms or µs, the largest unit it is at least 0.1 of (µs
// below that).
std::string timing(double seconds) {
  if (seconds >= 0.1) return fmt::format("{:.3f} s", seconds);
  if (seconds >= 1e-4) return fmt::format("{:.3f} ms", seconds * 1e3);
  return fmt::format("{:.3f} µs", seconds * 1e6);
}

// --timings: one process's training steps, and each phase a step. Alone, the optimizer's step
// runs inside backward's last dispatch (TrainResult::timings).
std::string timings_line(const StepTimings& t, bool shard) {
  const double steps = double(std::max(t.steps, 1L));
  const auto each = [&](double seconds) { return timing(seconds / steps); };
  std::string line =
      fmt::format("{} steps in {}, {} a step: ", t.steps, timing(t.total()), each(t.total()));
  if (!shard && t.update == 0 && t.sums == 0)
    return line + "forward, backward and the optimizer's step " + each(t.compute);
  line += "forward and backward " + each(t.compute);
  if (shard) line += ", rows from the other processes " + each(t.rows);
  line += ", gradient sums " + each(t.sums) + (shard ? " (waits for the others included)" : "");
  line += ", optimizer's step " + each(t.update);
  if (shard) line += ", the others' weights " + each(t.gather);
  return line;
}

// With --resume: the checkpoint's settings, with the options allowed beside it taken from the
// command line when given there.
TrainArgs resumed_args(const TrainArgs& given, const Checkpoint& c, const CLI::App& app) {
  TrainArgs a;
  try {
    a = nlohmann::json::parse(c.settings).get<TrainArgs>();
  } catch (const nlohmann::json::exception&) {
    throw ModelError(given.resume + ": the checkpoint holds no settings of chainrule train");
  }
  refuse_differing_settings(given, a, app);
  a.l2 = c.model.training ? c.model.training->l2 : 0;
  if (app.count("--l2") > 0 && given.l2 != a.l2)
    throw ConfigError(
        fmt::format("--l2 {} differs from the checkpoint's {}: a resumed run keeps "
                    "the settings it started with (leave --l2 out)",
                    given.l2, a.l2));
  a.resume = given.resume;
  a.quiet = given.quiet;
  a.timings = given.timings;
  a.log = given.log;
  a.max_memory = given.max_memory;
  a.stream = given.stream;
  a.data.max_input = given.data.max_input;
  if (!given.data.path.empty()) a.data.path = given.data.path;  // the data moved
  // A checkpoint does not choose which files get written: the paths stored in it are used only
  // when they lie in the checkpoint's own directory; anywhere else needs --out / --checkpoint.
  const auto dir_of = [](const std::string& p) {
    char* r = ::realpath(p.c_str(), nullptr);
    std::string full = r ? r : p;
    std::free(r);
    const std::size_t slash = full.rfind('/');
    return slash == std::string::npos ? std::string(".") : full.substr(0, slash);
  };
  const auto stored_ok = [&](const std::string& stored) {
    if (stored.empty()) return true;
    const std::size_t slash = stored.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : stored.substr(0, slash + 1);
    char* r = ::realpath(dir.c_str(), nullptr);
    const bool same = r != nullptr && std::string(r) == dir_of(given.resume);
    std::free(r);
    return same;
  };
  if (app.count("--out"))
    a.out = given.out;
  else if (!stored_ok(a.out))
    throw ConfigError(given.resume + ": the checkpoint names " + a.out +
                      " as its model file, outside the checkpoint's directory: say where to "
                      "write the model with --out");
  if (app.count("--checkpoint"))
    a.checkpoint = given.checkpoint;
  else if (!stored_ok(a.checkpoint))
    throw ConfigError(given.resume + ": the checkpoint names " + a.checkpoint +
                      " as its checkpoint file, outside its own directory: say where with "
                      "--checkpoint");

  if (app.count("--checkpoint-every")) a.checkpoint_every = given.checkpoint_every;
  return a;
}

int run_train(const TrainArgs& given_args, const CLI::App& app) {
  // Under mpirun, every process trains its part of the rows; the first (rank 0) alone prints,
  // writes the log, the report, the checkpoints and the model (docs/distributed.md).
  const Group* g = group();
  const bool lead = !g || g->rank() == 0;
  TrainArgs given = given_args;
  if (!lead) given.quiet = true;
  std::unique_ptr<Checkpoint> resume;
  if (!given.resume.empty()) resume = std::make_unique<Checkpoint>(load_checkpoint(given.resume));
  const TrainArgs a = resume ? resumed_args(given, *resume, app) : given;
  if (a.data.path.empty()) throw ConfigError("train: DATA is required (or --resume CHECKPOINT)");
  FitOptions o = fit_options(a);
  const std::string checkpoint = a.checkpoint.empty() ? a.out + ".ckpt" : a.checkpoint;
  if (checkpoint == a.out) throw ConfigError("--checkpoint must name another file than --out");
  std::unique_ptr<Model> init_from;
  if (resume) {
    o.resume = resume.get();
  } else if (!a.init_from.empty()) {
    init_from = std::make_unique<Model>(load_model(a.init_from));
    refuse_differing_model_options(a, *init_from, app);
    o.init_from = init_from.get();
  }
  o.settings = nlohmann::json(a).dump();
  o.train.checkpoint_every = a.checkpoint_every;
  o.train.timings = a.timings;
  o.group = g;
  g_stop.store(false);
  o.train.stop = &g_stop;
  // Every place the run will write is checked before the data is read and training starts: a
  // missing directory found after hours (or at the first Ctrl-C) would lose the run.
  const auto check_outputs = [&] {
    if (!lead) return;
    check_writable(a.out, "the model");
    check_writable(checkpoint, "the checkpoint");
    if (!a.log.empty()) check_writable(a.log, "the log", true);
    if (!a.report.empty()) check_writable(a.report, "the report");
    // An output over an input would destroy data the user still has only there.
    for (const auto& [output, flag] : {std::pair{a.out, "--out"},
                                       {checkpoint, "--checkpoint"},
                                       {a.log, "--log"},
                                       {a.report, "--report"}})
      for (const std::string& input : {a.data.path, a.data.labels})
        if (same_file(output, input))
          throw ConfigError(std::string(flag) + " " + output + " is the data file " + input +
                            ": refusing to overwrite it");
    if (!a.log.empty() && (same_file(a.log, a.out) || same_file(a.log, checkpoint) ||
                           a.log == a.out || a.log == checkpoint))
      throw ConfigError("--log " + a.log + " is also the model or checkpoint file");
    if (!a.report.empty())
      for (const std::string& other : {a.out, checkpoint, a.log})
        if (!other.empty() && (a.report == other || same_file(a.report, other)))
          throw ConfigError("--report " + a.report + " is also the model, checkpoint or log file");
  };
  together(g, check_outputs);
  if (resume && !a.quiet)
    fmt::print(stderr, "resuming {}; the model will be written to {}\n", a.resume, a.out);
  const auto reading = std::chrono::steady_clock::now();
  const Model* base = resume ? &resume->model : init_from.get();
  const LoadedData data(a.data, g,
                        {.mode = a.stream, .target = base ? base->prep.target : a.target});
  const double read_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - reading).count();

  // The log: every write checked; a failed write stops the log (not the run) and the command
  // ends with an error after the model is saved.
  std::unique_ptr<LogFile> log;
  Progress progress(a.quiet, Index(data.rows()));
  progress.set_epochs(a.epochs);
  // The live report: written before the first epoch, then at most every 2 seconds after an
  // epoch, and once more when the run ends (without the page's reload).
  ReportInput live;
  live.lang = a.lang;
  live.status = ReportInput::Status::running;
  live.settings = resume ? resume->model.training : training_settings(o, data.rows());
  if (resume) live.history = resume->state.result.history;
  live.train_data = a.data.path;
  auto last_report = std::chrono::steady_clock::now();
  const auto write_report = [&](bool force) {
    if (a.report.empty() || !lead) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_report < std::chrono::seconds(2)) return;
    write_file_atomically(a.report, report_html(live));
    last_report = now;
  };
  // Under mpirun, rank 0's own outputs (log, report, checkpoints) may fail while the others are
  // training: the error is kept, every rank stops at the next step (an interrupt, agreed on),
  // and rank 0 then reports it. Alone, it ends the run at once, as it always has.
  std::exception_ptr output_error;
  const auto output = [&](auto&& write) {
    if (!g) return write();
    if (output_error) return;
    try {
      write();
    } catch (...) {
      output_error = std::current_exception();
    }
  };
  const auto open_outputs = [&] {
    if (!a.log.empty() && lead) log = std::make_unique<LogFile>(a.log, resume != nullptr);
    write_report(true);
  };
  together(g, open_outputs);
  TrainCallbacks cb;
  if (g)
    cb.decide_stop = [&](StopReason local) {
      return output_error && local < StopReason::interrupted ? StopReason::interrupted : local;
    };
  cb.on_batch = [&](const BatchProgress& b) { progress.batch(b); };
  cb.on_epoch = [&](const EpochReport& r) {
    const std::string metric(to_string(r.metric));
    progress.epoch(r, metric);
    live.history.push_back(r);
    output([&] { write_report(false); });
    if (log) {
      nlohmann::json j = {
          {"epoch", r.epoch}, {"train_loss", r.train_loss}, {"lr", r.lr}, {"seconds", r.seconds}};
      if (r.val_loss) j["val_loss"] = *r.val_loss;
      if (r.val_metric) j["val_" + metric] = *r.val_metric;
      log->write(j.dump() + "\n");
    }
  };
  // The last checkpoint written (or resumed from): what a diverged run keeps.
  const auto position = [](const TrainState& s) {
    return s.batch > 0 ? fmt::format("epoch {}, batch {}", s.epoch + 1, s.batch)
                       : fmt::format("epoch {}", s.epoch);
  };
  std::string kept = resume ? position(resume->state) : "", kept_path = a.resume;
  const auto on_checkpoint = [&](const Checkpoint& c) {
    output([&] {
      if (lead) save_checkpoint(c, checkpoint);
      kept = position(c.state);
      kept_path = checkpoint;
    });
  };
  FitResult r;
  try {
    StopOnSignals stop_on_signals;
    r = fit(data.dataset(), o, cb, on_checkpoint);
  } catch (const DivergenceError& e) {
    if (kept.empty()) throw;
    throw DivergenceError(fmt::format(
        "{}; the last good checkpoint (after {}) is kept in {}: go on from it with --init-from {} "
        "and a lower --lr",
        e.what(), kept, kept_path, kept_path));
  }
  // --timings: every process's line, gathered here where all of them have returned from fit
  // alike (an all-gather: a collective that no rank may skip).
  std::vector<std::string> timings;
  if (a.timings && !r.history.interrupted) {
    const std::string mine = timings_line(r.history.timings, g != nullptr);
    timings = g ? g->all_gather(mine) : std::vector<std::string>{mine};
  }
  if (output_error) std::rethrow_exception(output_error);  // rank 0's (the others stopped with it)
  if (r.history.interrupted) {
    live.status = ReportInput::Status::interrupted;
    write_report(true);
    if (!lead) return kInterrupted;
    if (!a.quiet && ::isatty(2)) fmt::print(stderr, "\n");
    fmt::print(
        stderr,
        "chainrule: interrupted after {}; checkpoint written to {}; resume with: {}chainrule "
        "train --resume {}\n",
        kept, checkpoint, g ? fmt::format("mpirun -np {} ", g->size()) : "", checkpoint);
    return kInterrupted;
  }
  if (!lead) return kOk;
  print_notes(r.notes);
  save_model(r.model, a.out);
  if (!a.report.empty()) {  // the final page: the live one's history (with its wall times, which
                            // the model file leaves out), the model and its metrics on the data
    live.status = ReportInput::Status::done;
    live.model = &r.model;
    live.settings = r.model.training;
    live.seconds = r.seconds;
    add_data(live, r.model, data, a.data.path);
    write_report(true);
  }

  fmt::print(
      "trained {} on {} rows ({} for validation) in {:.2f} s, {} epochs{}\n",
      describe(r.model.spec), r.train_rows, r.validation_rows, r.seconds, r.history.history.size(),
      r.history.stopped_early ? fmt::format(" (early stop; best epoch {})", r.history.best_epoch)
                              : "");
  if (g)
    fmt::print("on {} processes (mpirun), their gradients summed {}\n", g->size(), g->transport());
  fmt::print("data read in {:.2f} s and prepared in {:.2f} s, before the first epoch{}\n",
             read_seconds, r.prepare_seconds,
             data.dataset().scan() ? " (the file read in passes, --stream)" : "");
  for (std::size_t i = 0; i < timings.size(); ++i)
    fmt::print("time in training steps{}: {}\n", g ? fmt::format(", process {}", i) : "",
               timings[i]);
  const ModelMetrics& metrics = *r.model.metrics;
  const SplitMetrics& shown = metrics.validation.value_or(metrics.train);
  fmt::print("{} loss {:.6f}, {} {:.4f}\n", metrics.validation ? "validation" : "training",
             shown.loss, to_string(shown.metric), shown.value);
  fmt::print("model written to {}\n", a.out);
  if (log && !log->close()) {
    fmt::print(stderr, "chainrule: error: {} (the log is incomplete; the model was written)\n",
               log->error());
    return kUsage;
  }
  return kOk;
}

}  // namespace

Command add_train(CLI::App& root) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* app =
      root.add_subcommand("train", "Train a network on a CSV or IDX file and save the model");
  app->add_option("DATA", a->data.path,
                  "CSV file (.csv or .csv.gz) or IDX images (with --resume: the checkpoint's)");
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
  app->add_option("--seed", a->seed, "Seed of the one random generator")
      ->check(whole_number("a whole number from 0 to 18446744073709551615"))
      ->capture_default_str();
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
  app->add_option("--l2", a->l2,
                  "scikit-learn's alpha: an L2 penalty l2/(2n)·Σw² on the weights (not the "
                  "biases) of every batch of n rows, in its loss and gradient (0: none)")
      ->check(at_least(0));
  app->add_option("--schedule", a->schedule, "Learning-rate schedule: constant, step, cosine")
      ->capture_default_str();
  app->add_option("--step-size", a->step_size, "step schedule: epochs between decays (default 30)")
      ->check(positive());
  app->add_option("--gamma", a->gamma, "step schedule: factor of each decay (default 0.1)")
      ->check(positive());
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
  app->add_option("--dtype", a->dtype,
                  "float32, float64, or bfloat16 (float32 weights, bfloat16 matrix products; CPUs "
                  "with AVX512_BF16)")
      ->capture_default_str();
  // The options the model decides may be repeated only with the model's values (run_train).
  app->add_option("--init-from", a->init_from,
                  "Start from this model's weights, architecture and preprocessing (fine-tuning)");
  app->add_option("--out", a->out, "Model file to write")->capture_default_str();
  app->add_option("--checkpoint", a->checkpoint,
                  "Checkpoint file, written on SIGINT/SIGTERM and by --checkpoint-every "
                  "(default: the --out path with .ckpt appended)");
  app->add_option("--checkpoint-every", a->checkpoint_every,
                  "Also write the checkpoint after every N epochs (0: only when interrupted)")
      ->check(at_least(0));
  app->add_flag("--quiet", a->quiet, "No progress output");
  app->add_flag("--timings", a->timings,
                "At the end, where the training steps spent their time (under mpirun: each "
                "process's compute, gradient sums and waits)");
  app->add_option("--log", a->log, "Write one JSON object per epoch to this file");
  app->add_option("--report", a->report,
                  "Write an HTML report to this file, refreshed every few seconds while training "
                  "runs (docs/report.md)");
  add_lang_option(app, a->lang);
  app->add_option("--max-memory", a->max_memory,
                  "Refuse a run estimated to need more memory than this, such as 2G (default: "
                  "the memory available)");
  app->add_option("--stream", a->stream,
                  "How a CSV file is read: on = in passes straight from the file (memory for "
                  "the training matrix, not the text and a table of doubles; for numbers only); "
                  "off = whole, into memory; auto = in passes when the file is plain (not "
                  "compressed, not a pipe) and at least 256 MiB. The model is the same")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app->add_option("--max-categories", a->max_categories,
                  "Refuse a text column with more categories than this (each is an input)")
      ->check(at_least(1))
      ->capture_default_str();
  app->add_option("--max-classes", a->max_classes, "Refuse a target with more classes than this")
      ->check(at_least(2))
      ->capture_default_str();
  // Other options beside it must repeat the checkpoint's values (refuse_differing_settings).
  app->add_option("--resume", a->resume,
                  "Continue the run saved in this checkpoint, with its settings and data");
  return {app, [a, app] { return run_train(*a, *app); }};
}

}  // namespace chainrule::cli
