// chainrule info: what a model file holds.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "chainrule/model.hpp"
#include "chainrule/model_json.hpp"
#include "commands.hpp"

namespace chainrule::cli {

namespace {

struct InfoArgs {
  std::string model;
  bool json = false;
};

// Lines under a 13-column label: the first beside it, the others below it.
void print_block(std::string_view label, const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < lines.size(); ++i)
    fmt::print("{:<13}{}\n", i == 0 ? label : "", lines[i]);
}

std::string yes_no(bool b) {
  return b ? "yes" : "no";
}

void print_training(const std::optional<TrainingSettings>& t) {
  if (!t) return print_block("training", {"not recorded"});
  std::string layers;
  for (const Index u : t->layers)
    layers += (layers.empty() ? "" : ",") + std::to_string(u);
  print_block(
      "training",
      {fmt::format("{} rows, {:g} held out for validation, seed {}", t->rows, t->validation,
                   t->seed),
       fmt::format("layers {} ({}), init {}, {}", layers.empty() ? "none" : layers,
                   to_string(t->activation), t->init ? to_string(*t->init) : "from a model",
                   to_string(t->dtype)),
       fmt::format("optimizer {}, lr {:g}, momentum {:g}, nesterov {}, weight decay {:g}",
                   to_string(t->optimizer), t->lr, t->momentum, yes_no(t->nesterov),
                   t->weight_decay),
       fmt::format("schedule {}, batch {}, epochs {}, shuffle {}, patience {}, dropout {:g}",
                   to_string(t->schedule), t->batch, t->epochs, yes_no(t->shuffle), t->patience,
                   t->dropout)});
}

std::string split_line(std::string_view name, const SplitMetrics& s) {
  if (s.rows == 0) return fmt::format("{:<11}not measured", name);
  std::string line = fmt::format("{:<11}loss {:.6f}", name, s.loss);
  if (s.metric != Metric::none) line += fmt::format(", {} {:.4f}", to_string(s.metric), s.value);
  return line + fmt::format(" ({} rows)", s.rows);
}

void print_metrics(const std::optional<ModelMetrics>& m) {
  if (!m) return print_block("metrics", {"none (training did not finish)"});
  std::vector<std::string> lines = {split_line("train", m->train)};
  if (m->validation) lines.push_back(split_line("validation", *m->validation));
  lines.push_back(fmt::format("{:<11}{} run, best {}{}", "epochs", m->epochs_run, m->best_epoch,
                              m->stopped_early ? ", stopped early" : ""));
  print_block("metrics", lines);
}

int run_info(const InfoArgs& a) {
  const Model m = load_model(a.model);
  using nlohmann::json;
  json layers = json::array();
  for (const auto& l : m.spec.layers)
    layers.push_back({{"units", l.units}, {"activation", to_string(l.activation)}});
  json features = json::array();
  for (const Feature& f : m.prep.features) {
    if (f.numeric)
      features.push_back(
          {{"name", f.name}, {"type", "number"}, {"center", f.center}, {"scale", f.scale}});
    else
      features.push_back({{"name", f.name}, {"type", "text"}, {"categories", f.categories}});
  }
  const Index params = Index(m.params.size());
  json j = {{"file", a.model},
            {"format_version", kModelFormatVersion},
            {"inputs", m.spec.inputs},
            {"layers", layers},
            {"loss", to_string(m.spec.loss)},
            {"dtype", to_string(m.dtype)},
            {"parameters", params},
            {"task", to_string(m.prep.task)},
            {"target", m.prep.target},
            {"features", features},
            {"scale", to_string(m.prep.scale)},
            {"training", metadata_json(m.training)},
            {"metrics", metadata_json(m.metrics)}};
  if (m.prep.task == Task::classify) j["classes"] = m.prep.classes;
  if (a.json) {
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kOk;
  }
  fmt::print(
      "model        {}\narchitecture {}\nloss         {}\ndtype        {}\nparameters   {}\n",
      a.model, describe(m.spec), to_string(m.spec.loss), to_string(m.dtype), params);
  fmt::print("task         {} of '{}'\n", to_string(m.prep.task), m.prep.target);
  if (m.prep.task == Task::classify) {
    std::string cls;
    for (const auto& c : m.prep.classes)
      cls += (cls.empty() ? "" : ", ") + c;
    fmt::print("classes      {} ({})\n", m.prep.classes.size(), cls);
  }
  fmt::print("features     {} columns, {} scaling\n", m.prep.features.size(),
             to_string(m.prep.scale));
  std::size_t shown = 0;
  for (const Feature& f : m.prep.features) {
    if (++shown > 20) {
      fmt::print("             ... and {} more\n", m.prep.features.size() - 20);
      break;
    }
    if (f.numeric)
      fmt::print("             {}: number, (x - {:.6g}) / {:.6g}\n", f.name, f.center, f.scale);
    else
      fmt::print("             {}: text, one-hot over {} categories\n", f.name,
                 f.categories.size());
  }
  print_training(m.training);
  print_metrics(m.metrics);
  return kOk;
}

}  // namespace

Command add_info(CLI::App& root) {
  auto a = std::make_shared<InfoArgs>();
  CLI::App* app = root.add_subcommand(
      "info", "Architecture, preprocessing, training settings and metrics of a model");
  app->add_option("MODEL", a->model, "Model file")->required();
  app->add_flag("--json", a->json, "Print as JSON");
  return {app, [a] { return run_info(*a); }};
}

}  // namespace chainrule::cli
