#include "chainrule/model_json.hpp"

#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

using nlohmann::json;

namespace {

std::string join(const std::vector<Index>& units) {
  std::string s;
  for (const Index u : units)
    s += (s.empty() ? "" : ",") + std::to_string(u);
  return s;
}

std::vector<Index> split_units(const std::string& s) {
  std::vector<Index> units;
  for (std::size_t at = 0; at < s.size();) {
    std::size_t used = 0;
    const std::size_t comma = std::min(s.find(',', at), s.size());
    try {
      units.push_back(std::stol(s.substr(at, comma - at), &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != comma - at)
      throw ConfigError("the training settings' layers '" + s + "' are not sizes");
    at = comma + 1;
  }
  return units;
}

// Reads key `k` into `v` when it is there.
template <class V>
void read(const json& j, const char* k, V& v) {
  if (j.contains(k)) j.at(k).get_to(v);
}

// Reads the name at key `k` into `v` with `parse` when it is there.
template <class E, class Parse>
void read_name(const json& j, const char* k, E& v, Parse parse) {
  if (j.contains(k)) v = parse(j.at(k).get<std::string>());
}

}  // namespace

void to_json(json& j, const TrainingSettings& s) {
  j = json{{"rows", s.rows},
           {"seed", s.seed},
           {"layers", join(s.layers)},
           {"activation", to_string(s.activation)},
           {"init", s.init ? std::string(to_string(*s.init)) : "from a model"},
           {"optimizer", to_string(s.optimizer)},
           {"lr", s.lr},
           {"momentum", s.momentum},
           {"nesterov", s.nesterov},
           {"weight_decay", s.weight_decay},
           {"schedule", to_string(s.schedule)},
           {"batch", s.batch},
           {"epochs", s.epochs},
           {"shuffle", s.shuffle},
           {"val", s.validation},
           {"patience", s.patience},
           {"dropout", s.dropout},
           {"dtype", to_string(s.dtype)}};
  // Only where set (the scikit-learn estimators'): every other file keeps its bytes.
  if (s.l2 > 0) j["l2"] = s.l2;
  if (s.monitor_metric) j["monitor_metric"] = true;
}

void from_json(const json& j, TrainingSettings& s) {
  read(j, "rows", s.rows);
  read(j, "seed", s.seed);
  if (j.contains("layers")) s.layers = split_units(j.at("layers").get<std::string>());
  read_name(j, "activation", s.activation, parse_activation);
  if (j.contains("init")) {
    const auto init = j.at("init").get<std::string>();
    s.init = init == "from a model" ? std::nullopt : std::optional<Init>(parse_init(init));
  }
  read_name(j, "optimizer", s.optimizer, parse_optimizer);
  read(j, "lr", s.lr);
  read(j, "momentum", s.momentum);
  read(j, "nesterov", s.nesterov);
  read(j, "weight_decay", s.weight_decay);
  read(j, "l2", s.l2);
  read(j, "monitor_metric", s.monitor_metric);
  read_name(j, "schedule", s.schedule, parse_schedule);
  read(j, "batch", s.batch);
  read(j, "epochs", s.epochs);
  read(j, "shuffle", s.shuffle);
  read(j, "val", s.validation);
  read(j, "patience", s.patience);
  read(j, "dropout", s.dropout);
  read_name(j, "dtype", s.dtype, parse_dtype);
}

void to_json(json& j, const SplitMetrics& m) {
  j = json{{"loss", m.loss}, {"rows", m.rows}};
  if (m.metric != Metric::none) j[std::string(to_string(m.metric))] = m.value;
}

void from_json(const json& j, SplitMetrics& m) {
  read(j, "loss", m.loss);
  read(j, "rows", m.rows);
  for (const Metric metric : {Metric::accuracy, Metric::r2})
    if (j.contains(to_string(metric))) {
      m.metric = metric;
      j.at(to_string(metric)).get_to(m.value);
    }
}

void to_json(json& j, const ModelMetrics& m) {
  j = json{{"train", m.train},
           {"epochs_run", m.epochs_run},
           {"best_epoch", m.best_epoch},
           {"stopped_early", m.stopped_early}};
  if (m.validation) j["validation"] = *m.validation;
  if (!m.history.empty()) j["history"] = m.history;
}

void from_json(const json& j, ModelMetrics& m) {
  read(j, "train", m.train);
  if (j.contains("validation")) m.validation = j.at("validation").get<SplitMetrics>();
  read(j, "epochs_run", m.epochs_run);
  read(j, "best_epoch", m.best_epoch);
  read(j, "stopped_early", m.stopped_early);
  read(j, "history", m.history);
}

void to_json(json& j, const EpochReport& e) {
  j = json{{"epoch", e.epoch}, {"epochs", e.epochs}, {"train_loss", e.train_loss},
           {"lr", e.lr},       {"best", e.best},     {"metric", to_string(e.metric)}};
  if (e.seconds != 0) j["seconds"] = e.seconds;
  if (e.val_loss) j["val_loss"] = *e.val_loss;
  if (e.val_metric) j["val_metric"] = *e.val_metric;
}

void from_json(const json& j, EpochReport& e) {
  read(j, "epoch", e.epoch);
  read(j, "epochs", e.epochs);
  read(j, "train_loss", e.train_loss);
  read(j, "lr", e.lr);
  read(j, "seconds", e.seconds);
  read(j, "best", e.best);
  read_name(j, "metric", e.metric, parse_metric);
  if (j.contains("val_loss")) e.val_loss = j.at("val_loss").get<double>();
  if (j.contains("val_metric")) e.val_metric = j.at("val_metric").get<double>();
}

}  // namespace chainrule
