// The command line's defaults are the library's: `chainrule train` with no options records the
// settings (and, on the same data and seed, the metrics) that fit() with default FitOptions
// records. The CLI is run as a process: the binary beside this test's directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "chainrule/fit.hpp"
#include "chainrule/model_json.hpp"

namespace chainrule {
namespace {

// examples/people.csv: the tutorial's four people.
constexpr const char* kPeople =
    "name,weight,height,gender\nyouge,-2,5,1\nshare,-5,-2,1\nnaive,-23,-11,0\nbeyes,30,8,0\n";

std::string chainrule_binary() {
  std::array<char, 4096> self{};
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  std::string dir(self.data(), std::size_t(std::max<ssize_t>(n, 0)));
  dir = dir.substr(0, dir.rfind('/'));                  // .../tests
  return dir.substr(0, dir.rfind('/')) + "/chainrule";  // its build directory
}

std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    out.append(buf.data(), n);
  EXPECT_EQ(::pclose(p), 0) << command;
  return out;
}

TEST(Defaults, CliTrainRecordsTheLibrarysDefaultSettings) {
  const std::string bin = chainrule_binary();
  ASSERT_EQ(::access(bin.c_str(), X_OK), 0) << bin << " is not built";
  const std::string dir = ::testing::TempDir() + "/defaults_test_" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  const std::string csv = dir + "/people.csv", model = dir + "/people.safetensors";
  std::ofstream(csv) << kPeople;
  run(bin + " train " + csv + " --out " + model + " --quiet");
  const auto info = nlohmann::json::parse(run(bin + " info " + model + " --json"));

  const FitResult lib = fit(parse_csv(kPeople, csv), FitOptions{});
  ASSERT_TRUE(lib.model.training);
  EXPECT_EQ(info.at("training"), nlohmann::json(*lib.model.training));
  EXPECT_EQ(info.at("metrics"), metadata_json(lib.model.metrics));
  // The values themselves, from the documented defaults (docs/library.md).
  const TrainingSettings& t = *lib.model.training;
  EXPECT_EQ(t.batch, 32);
  EXPECT_EQ(t.epochs, 200);
  EXPECT_EQ(t.layers, std::vector<Index>{100});
  EXPECT_EQ(t.optimizer, OptimizerKind::adam);
  EXPECT_EQ(t.seed, 42u);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace chainrule
