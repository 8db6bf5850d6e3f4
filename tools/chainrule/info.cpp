// chainrule info: what a model file holds.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "chainrule/model.hpp"
#include "commands.hpp"

namespace chainrule::cli {

namespace {

struct InfoArgs {
  std::string model;
  bool json = false;
};

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
            {"training", json::parse(m.training)},
            {"metrics", json::parse(m.metrics)}};
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
  fmt::print("training     {}\nmetrics      {}\n", m.training, m.metrics);
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
