// chainrule export MODEL --onnx FILE: the model as a standard ONNX graph (opset 13, plus the
// ai.onnx.ml LabelEncoder for text features) computing what `chainrule predict` computes,
// preprocessing included. docs/deploy.md describes the inputs and outputs.
#include <fmt/core.h>

#include "chainrule/error.hpp"
#include "chainrule/model.hpp"
#include "chainrule/onnx_export.hpp"
#include "commands.hpp"

namespace chainrule::cli {

namespace {

struct ExportArgs {
  std::string model, onnx;
};
int run_export(const ExportArgs& a) {
  const Model m = load_model(a.model);
  const std::string bytes = export_onnx(m);
  write_file_atomically(a.onnx, bytes);
  fmt::print("{} written ({} bytes, opset 13)\n", a.onnx, bytes.size());
  return kOk;
}

}  // namespace

Command add_export(CLI::App& root) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* app = root.add_subcommand("export", "Export a model to ONNX, preprocessing included");
  app->add_option("MODEL", a->model, "Model file")->required();
  app->add_option("--onnx", a->onnx, "ONNX file to write")->required();
  return {app, [a] { return run_export(*a); }};
}

}  // namespace chainrule::cli
