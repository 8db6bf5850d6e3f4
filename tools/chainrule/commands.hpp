// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "chainrule/group.hpp"

namespace chainrule::cli {

/// Exit codes of the chainrule binary (docs/cli.md).
/// 130: stopped by SIGINT or SIGTERM after writing a checkpoint (128 + SIGINT, as shells report).
enum ExitCode : int { kOk = 0, kUsage = 2, kInternal = 3, kInterrupted = 130 };

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

/// The --threads count (at most the cores available): what each command passes to the library
/// (CsvOptions::threads, FitOptions::threads, ...). The library itself keeps no thread setting.
int threads();
/// Under mpirun with more than one process: the job's processes (train shares the work among
/// them); otherwise null.
const Group* group();

Command add_demo(CLI::App& root);
Command add_explain(CLI::App& root);
Command add_train(CLI::App& root);
Command add_eval(CLI::App& root);
Command add_predict(CLI::App& root);
Command add_info(CLI::App& root);
Command add_export(CLI::App& root);
Command add_report(CLI::App& root);

}  // namespace chainrule::cli
