// chainrule: the command line. The only place that catches exceptions and chooses exit codes.
#include <fmt/core.h>

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/group.hpp"
#include "chainrule/threads.hpp"
#ifdef CHAINRULE_MPI
#include "chainrule/mpi.hpp"
#endif
#include "commands.hpp"
#include "data_args.hpp"

namespace {
int g_threads = 1;                          // --threads, capped; set once, before any command runs
const chainrule::Group* g_group = nullptr;  // the MPI job's processes, under mpirun

// OpenBLAS starts its server threads when it loads, before main, and each asks for a 128 MiB
// buffer: under an address-space or data limit (ulimit -v, -d) that leaves no room, one loops
// forever, and the process can neither finish its products nor exit. OpenBLAS reads
// OPENBLAS_NUM_THREADS only when it loads, so under such a limit the program runs itself again
// with it set to 1 (no server thread at all); if that fails it goes on as it is.
void run_again_without_blas_threads(char** argv) {
  const char* set = std::getenv("OPENBLAS_NUM_THREADS");
  if (set != nullptr && std::strcmp(set, "1") == 0) return;
  const auto limited = [](int resource) {
    rlimit limit{};
    return getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
  };
  if (!limited(RLIMIT_AS) && !limited(RLIMIT_DATA)) return;
  if (setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0) execv("/proc/self/exe", argv);
}
}  // namespace

int chainrule::cli::threads() {
  return g_threads;
}

const chainrule::Group* chainrule::cli::group() {
  return g_group;
}

int main(int argc, char** argv) {
  using namespace chainrule::cli;
  run_again_without_blas_threads(argv);
  CLI::App app{"chainrule: feedforward neural networks trained by backpropagation", "chainrule"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chainrule " CHAINRULE_VERSION);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // last one wins
  int threads = chainrule::available_cores();
  app.add_option("--threads", threads,
                 "Threads for training, prediction and reading large CSV files (default and "
                 "maximum: the cores available; results are bit-identical for a fixed count)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.fallthrough();  // --threads may follow the command
  const std::vector<Command> commands{add_demo(app),   add_explain(app), add_train(app),
                                      add_eval(app),   add_predict(app), add_info(app),
                                      add_export(app), add_report(app)};
  // No option takes an empty value: `--target ''` or `--out ''` would silently mean the default.
  const CLI::Validator non_empty(
      [](std::string& v) { return v.empty() ? std::string("expected a value, got ''") : ""; },
      "NONEMPTY");
  for (const Command& c : commands)
    for (CLI::Option* opt : c.app->get_options())
      if (opt->get_type_size() > 0) opt->check(non_empty);

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
#ifdef CHAINRULE_MPI
  // Under mpirun, MPI for the whole run; started any other way, nothing (no MPI initialisation).
  chainrule::mpi::Session mpi;
  if (mpi.group() && mpi.group()->size() > 1) g_group = mpi.group();
#endif
  // Under mpirun, every process runs the command; an error on any of them is agreed on (the
  // first process that failed prints it, the others exit quietly) so that none waits for one
  // that has left.
  // A process that failed alone, while the others went on into a collective operation, would
  // wait for them forever: if the agreement has not come within 120 s, it prints its error and
  // exits, and mpirun ends the job.
  const auto agreed = [&](std::exception_ptr e) {
    if (!g_group) {
      if (e) std::rethrow_exception(e);
      return;
    }
    if (e) {
      std::string what = "an error";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      } catch (...) {
      }
      std::thread([what] {
        std::this_thread::sleep_for(std::chrono::seconds(120));
        fmt::print(stderr, "chainrule: error: {} (the other processes did not answer)\n", what);
        std::fflush(stderr);
        std::_Exit(kUsage);
      }).detach();
    }
    g_group->agree(e);
  };
  const int code = [&]() -> int {
    try {
      // OpenBLAS on one thread: the threads are the networks' own, so --threads 1 keeps one core
      // busy; and no more than the cores available (more would only wait on one another).
      chainrule::set_openblas_threads(1);
      g_threads = std::min(threads, chainrule::available_cores());
      for (const Command& c : commands)
        if (c.app->parsed()) {
          int code = kUsage;
          try {
            if (g_group && c.app->get_name() != "train")
              throw chainrule::ConfigError(c.app->get_name() +
                                           " runs in one process: run it without mpirun (only "
                                           "train runs on several)");
            code = c.run();
          } catch (...) {
            agreed(std::current_exception());
          }
          agreed(nullptr);
          // Output to a full disk or a closed pipe is an error, not a silent success.
          if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
            fmt::print(stderr, "chainrule: error: standard output: cannot write: {}\n",
                       std::strerror(errno));
            return kUsage;
          }
          return code;
        }
    } catch (const chainrule::PeerError&) {  // another process failed and said why
      return kUsage;
    } catch (const std::bad_alloc&) {
      fmt::print(stderr,
                 "chainrule: error: out of memory: the data or the network is too large for the "
                 "memory available (see the limits in docs/errors.md)\n");
      return kUsage;
    } catch (const chainrule::Error& e) {  // the library's terms, with the flag that helps
      const std::string hint = hint_for(e.option);
      fmt::print(stderr, "chainrule: error: {}{}\n", e.what(),
                 hint.empty() ? "" : " (" + hint + ")");
      return kUsage;
    } catch (const std::exception& e) {
      fmt::print(stderr, "chainrule: internal error: {}\n", e.what());
      return kInternal;
    }
    return kUsage;
  }();
  // Under mpirun, every process leaves together, after the one that failed has printed why
  // (mpirun ends the job as soon as one process exits non-zero).
  if (g_group) {
    std::fflush(stderr);
    try {
      g_group->agree(nullptr);  // a synchronisation: every process has said what it had to
    } catch (const chainrule::PeerError&) {
    }
  }
  return code;
}
