// chainrule: the command line. The only place that catches exceptions and chooses exit codes.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/threads.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  using namespace chainrule::cli;
  CLI::App app{"chainrule: feedforward neural networks trained by backpropagation", "chainrule"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chainrule 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // last one wins
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--threads", threads,
                 "Threads for the matrix products and for reading large CSV files (default: every "
                 "core; results are bit-identical for a fixed count)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.fallthrough();  // --threads may follow the command
  const std::vector<Command> commands{add_demo(app),  add_explain(app), add_train(app),
                                      add_eval(app),  add_predict(app), add_info(app),
                                      add_export(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {  // --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "chainrule: error: {} (see chainrule --help)\n", e.what());
    return kUsage;
  }
  try {
    chainrule::set_blas_threads(threads);
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const chainrule::Error& e) {
    fmt::print(stderr, "chainrule: error: {}\n", e.what());
    return kUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "chainrule: internal error: {}\n", e.what());
    return kInternal;
  }
  return kUsage;
}
