// End-to-end tests: run the built chainrule binary and check what it prints.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "../src/small_products.hpp"
#include "chainrule/model.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"
#include "chainrule/tutorial.hpp"
#include "temp_dir.hpp"

namespace {

struct Outcome {
  int code;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Outcome chainrule(const std::string& args) {
  // ctest runs test cases in parallel processes: name the capture files after this one.
  const std::string base = ::testing::TempDir() + "/chainrule_cli_" + std::to_string(getpid());
  const std::string out = base + ".out", err = base + ".err";
  const std::string cmd = std::string(CHAINRULE_BIN) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  Outcome r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

int count_lines(const std::string& s) {
  return int(std::count(s.begin(), s.end(), '\n'));
}

TEST(Cli, DemoPrintsTheTutorialsLossLinesAndPredictions) {
  const Outcome r = chainrule("demo");
  ASSERT_EQ(r.code, 0) << r.err;
  // 100 loss lines in the tutorial's format, the last for epoch 990.
  const std::regex epoch_line(R"(Epoch (\d+) loss: (\d\.\d{3})\n)");
  auto begin = std::sregex_iterator(r.out.begin(), r.out.end(), epoch_line);
  EXPECT_EQ(std::distance(begin, std::sregex_iterator()), 100);
  // The same numbers the library computes.
  std::vector<std::pair<int, double>> reports;
  const auto result = chainrule::tutorial::train(
      {}, [&](int epoch, double loss) { reports.emplace_back(epoch, loss); });
  char expected[64];
  std::snprintf(expected, sizeof expected, "Epoch 990 loss: %.3f\n", reports.back().second);
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
  std::snprintf(expected, sizeof expected, "Final loss %.6f after 1000 epochs", result.final_loss);
  EXPECT_NE(r.out.find(expected), std::string::npos);
  EXPECT_NE(r.out.find("4 of 4 training people classified correctly; converged"),
            std::string::npos);
  // Emily is predicted 1, Frank 0.
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Emily +-7 +-3 +0\.\d+ +1 +new)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Frank +20 +2 +0\.0\d+ +0 +new)"))) << r.out;
}

TEST(Cli, DemoOptionsChangeTheRun) {
  const Outcome r = chainrule("demo --seed 5 --epochs 20 --lr 0.05");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("learning rate 0.05, 20 epochs"), std::string::npos);
  EXPECT_NE(r.out.find("Epoch 10 loss:"), std::string::npos);
  EXPECT_EQ(r.out.find("Epoch 20 loss:"), std::string::npos);
  const auto res = chainrule::tutorial::train({.seed = 5, .epochs = 20, .lr = 0.05});
  char expected[64];
  std::snprintf(expected, sizeof expected, "Final loss %.6f after 20 epochs", res.final_loss);
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
}

TEST(Cli, DemoSweepCountsConvergedSeeds) {
  const Outcome r = chainrule("demo --sweep 100 --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("50 of 100 seeds (1..100) converged"), std::string::npos) << r.out;
}

TEST(Cli, ExplainShowsTheWorkedCase) {
  const Outcome r = chainrule("explain");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("∂L/∂w1 = ∂L/∂ŷ · ∂ŷ/∂h1 · ∂h1/∂w1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("= 0.002639   finite difference 0.002639"), std::string::npos);
  EXPECT_NE(r.out.find("positive: raising w1 raises L, so gradient descent lowers w1"),
            std::string::npos);
  EXPECT_NE(r.out.find("h1 = σ(z_h1) = σ(3) = 0.952574"), std::string::npos);
  EXPECT_NE(r.out.find("ŷ = σ(z_ŷ) = σ(1.905148) = 0.870473"), std::string::npos);
  // One chain per parameter: 6 weights and 3 biases.
  const std::regex chain(R"(\n  ∂L/∂[wb]\d = )");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), chain),
                          std::sregex_iterator()),
            9);
}

TEST(Cli, ExplainJsonCarriesTheSameNumbers) {
  const Outcome r = chainrule("explain --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& w1 = j["parameters"][0];
  EXPECT_EQ(w1["name"], "w1");
  EXPECT_NEAR(w1["gradient"].get<double>(), 0.002639060955281471, 1e-15);
  EXPECT_NEAR(w1["finite_difference"].get<double>(), 0.002639060955281471, 1e-10);
  EXPECT_EQ(w1["factors"].size(), 3u);
  EXPECT_EQ(j["parameters"].size(), 9u);
  EXPECT_NEAR(j["loss"]["value"].get<double>(), std::pow(1 - 0.8704730975500355, 2), 1e-15);
}

TEST(Cli, ExplainOtherSamplesAndRandomWeights) {
  const Outcome r = chainrule("explain --sample naive --weights random --seed 3 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["sample"], "naive");
  EXPECT_EQ(j["inputs"]["x1"], -23);
  for (const auto& p : j["parameters"])
    EXPECT_NEAR(p["gradient"].get<double>(), p["backprop"].get<double>(),
                1e-12 + 1e-12 * std::abs(p["backprop"].get<double>()));
}

TEST(Cli, BadInputGivesOneLineErrorAndExitCode2) {
  for (const char* args :
       {"demo --epochs 0", "demo --lr -1", "demo --seed abc", "explain --sample nobody",
        "explain --weights zeros", "frobnicate", ""}) {
    const Outcome r = chainrule(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
    EXPECT_FALSE(r.err.empty()) << args;
  }
  for (const char* args : {"explain --seed 3", "train x.csv --gamma 0.5",
                           "explain m.safetensors d.csv --sample share"}) {
    const Outcome o = chainrule(args);  // options that would do nothing are refused
    EXPECT_EQ(o.code, 2) << args;
    EXPECT_EQ(count_lines(o.err), 1) << args << o.err;
  }
  const Outcome r = chainrule("explain --sample nobody");
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown person 'nobody'"), std::string::npos) << r.err;
}

std::string temp(const std::string& name) {
  return chainrule::test::temp_file("cli_" + name);
}

const std::string kPeople = CHAINRULE_SOURCE_DIR "/examples/people.csv";
const std::string kTutorialFlags =
    " --target gender --drop name --layers 2 --activation sigmoid --loss mse --optimizer sgd"
    " --lr 0.1 --epochs 1000 --batch 1 --init normal --scale none --val 0 --no-shuffle --quiet";

// The issue's command reproduces chainrule demo: in float64 the same weights, bit for bit.
TEST(Cli, TrainReproducesTheDemo) {
  const std::string model = temp("tutorial.safetensors");
  const Outcome r =
      chainrule("train " + kPeople + kTutorialFlags + " --seed 13 --dtype float64 --out " + model);
  ASSERT_EQ(r.code, 0) << r.err;
  const chainrule::Model m = chainrule::load_model(model);
  const auto demo = chainrule::tutorial::train({.seed = 13});
  ASSERT_EQ(m.params.size(), 9u);
  for (std::size_t i = 0; i < 9; ++i)
    EXPECT_EQ(m.params[i], demo.net.params()[i]) << i;
  // In float32 (the default dtype) the same run agrees to float precision.
  const Outcome f = chainrule("train " + kPeople + kTutorialFlags + " --seed 13 --out " + model);
  ASSERT_EQ(f.code, 0) << f.err;
  const chainrule::Model mf = chainrule::load_model(model);
  for (std::size_t i = 0; i < 9; ++i)
    EXPECT_NEAR(mf.params[i], demo.net.params()[i], 1e-3) << i;
  std::remove(model.c_str());
}

TEST(Cli, TrainEvalPredictInfo) {
  const std::string model = temp("people.safetensors"), preds = temp("preds.csv");
  ASSERT_EQ(chainrule("train " + kPeople + kTutorialFlags + " --seed 13 --out " + model).code, 0);
  const Outcome info = chainrule("info " + model + " --json");
  ASSERT_EQ(info.code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["parameters"], 9);
  EXPECT_EQ(j["classes"], nlohmann::json::array({"0", "1"}));
  EXPECT_EQ(j["training"]["optimizer"], "sgd");
  EXPECT_EQ(j["features"][0]["name"], "weight");

  const Outcome eval = chainrule("eval " + model + " " + kPeople + " --json");
  ASSERT_EQ(eval.code, 0) << eval.err;
  const auto e = nlohmann::json::parse(eval.out);
  EXPECT_EQ(e["accuracy"], 1.0);
  EXPECT_EQ(e["confusion_matrix"], nlohmann::json::parse("[[2,0],[0,2]]"));
  EXPECT_NEAR(e["loss"].get<double>(), chainrule::tutorial::train({.seed = 13}).final_loss, 1e-6);

  // Predict on a file without the target, columns in another order, keeping the name.
  const std::string newcomers = temp("new.csv");
  std::ofstream(newcomers) << "height,name,weight\n-3,Emily,-7\n2,Frank,20\n";
  const Outcome p = chainrule("predict " + model + " " + newcomers + " --keep name --out " + preds);
  ASSERT_EQ(p.code, 0) << p.err;
  const std::string csv = slurp(preds);
  EXPECT_TRUE(std::regex_search(
      csv, std::regex("^name,gender,p_0,p_1\nEmily,1,0\\.\\d+,0\\.\\d+\nFrank,0,")))
      << csv;

  const Outcome x = chainrule("explain " + model + " " + kPeople + " --row 2 --json");
  ASSERT_EQ(x.code, 0) << x.err;
  const auto xj = nlohmann::json::parse(x.out);
  EXPECT_EQ(xj["inputs"]["weight"], -23);
  EXPECT_EQ(xj["targets"][0], 0);
  for (const auto& prm : xj["parameters"])
    EXPECT_NEAR(prm["gradient"].get<double>(), prm["backprop"].get<double>(), 1e-12);
  for (const auto& f : {model, preds, newcomers})
    std::remove(f.c_str());
}

TEST(Cli, DataErrorsExit2AndNeverTouchTheModel) {
  const std::string model = temp("keep.safetensors"), bad = temp("bad.csv");
  ASSERT_EQ(chainrule("train " + kPeople + kTutorialFlags + " --epochs 5 --out " + model).code, 0);
  const std::string before = slurp(model);
  std::ofstream(bad) << "name,weight,height,gender\nyouge,-2,5,1\nshare,,-2,1\nnaive,-23,-11,0\n";
  Outcome r = chainrule("train " + bad + kTutorialFlags + " --out " + model);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "chainrule: error: " + bad +
                ":3:2: missing value in column 'weight': expected a number (or use --impute mean "
                "to fill numeric gaps)\n");
  EXPECT_EQ(slurp(model), before);
  // --impute mean fills it instead.
  EXPECT_EQ(chainrule("train " + bad + kTutorialFlags + " --impute mean --epochs 5 --out " +
                      temp("imp.safetensors"))
                .code,
            0);

  for (const std::string& args :
       {"train " + kPeople + " --target nope --out " + model,
        "train " + kPeople + " --layers 0 --out " + model,
        "train " + kPeople + " --val 1 --out " + model,
        "train " + kPeople + " --batch 0 --out " + model,
        "train " + kPeople + " --lr 0 --out " + model, "train /nonexistent.csv --out " + model,
        "eval " + bad + " " + kPeople, "predict " + model + " " + bad + " --out " + model}) {
    r = chainrule(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_EQ(slurp(model), before) << args;
  }
  std::remove(model.c_str());
}

TEST(Cli, SameSeedSameBytesAndAnEpochLog) {
  const std::string a = temp("a.safetensors"), b = temp("b.safetensors"), log = temp("log.jsonl");
  const std::string args =
      "train " + kPeople + " --target gender --drop name --layers 3 --epochs 7 --quiet --seed 4";
  ASSERT_EQ(chainrule(args + " --out " + a + " --log " + log).code, 0);
  ASSERT_EQ(chainrule(args + " --out " + b).code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  ASSERT_EQ(chainrule(args + " --seed 5 --out " + b).code, 0);
  EXPECT_NE(slurp(a), slurp(b));
  std::istringstream lines(slurp(log));
  std::string line;
  int epoch = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["epoch"], ++epoch);
    EXPECT_GT(j["train_loss"].get<double>(), 0);
    EXPECT_EQ(j["lr"], 0.001);
  }
  EXPECT_EQ(epoch, 7);
  for (const auto& f : {a, b, log})
    std::remove(f.c_str());
}

// --timings: the steps counted (epochs × batches an epoch, per-sample steps too), their time
// within the training time, and nothing else changed: the same model bytes.
TEST(Cli, TimingsCountTheStepsAndChangeNothing) {
  const std::string a = temp("timed_a.safetensors"), b = temp("timed_b.safetensors");
  const std::string time = R"(([0-9.]+) (s|ms|µs))";
  const std::regex line("time in training steps: (\\d+) steps in " + time + ", " + time +
                        " a step: forward, backward and the optimizer's step " + time + "\n");
  const std::regex trained(R"(\) in ([0-9.]+) s, )");
  const auto scale = [](const std::ssub_match& unit) {
    return unit == "s" ? 1 : unit == "ms" ? 1e-3 : 1e-6;
  };
  const auto seconds = [&](const std::ssub_match& value, const std::ssub_match& unit) {
    return std::stod(value) * scale(unit);
  };
  struct Case {
    std::string args;
    long steps;
  };
  // people.csv's 4 rows: batches of 3 and 1 for 7 epochs; the tutorial's 1000 epochs of 4
  // per-sample steps.
  for (const Case& c : {Case{"train " + kPeople +
                                 " --target gender --drop name --layers 3 --epochs 7 --batch 3 "
                                 "--val 0 --quiet --seed 4",
                             14},
                        Case{"train " + kPeople + kTutorialFlags, 4000}}) {
    const Outcome timed = chainrule(c.args + " --timings --out " + a);
    ASSERT_EQ(timed.code, 0) << timed.err;
    const Outcome plain = chainrule(c.args + " --out " + b);
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(slurp(a), slurp(b)) << c.args;
    EXPECT_EQ(plain.out.find("time in training steps"), std::string::npos);
    std::smatch m, t;
    ASSERT_TRUE(std::regex_search(timed.out, m, line)) << timed.out;
    ASSERT_TRUE(std::regex_search(timed.out, t, trained)) << timed.out;
    EXPECT_EQ(std::stol(m[1]), c.steps) << c.args;
    const double total = seconds(m[2], m[3]), per_step = seconds(m[4], m[5]);
    EXPECT_LE(total, std::stod(t[1]) + 0.006) << timed.out;  // "in 0.01 s"
    // Each printed to 3 decimals of its unit: half of the last decimal, the step's times steps.
    EXPECT_NEAR(per_step * double(c.steps), total,
                0.0005 * (scale(m[3]) + scale(m[5]) * double(c.steps)) * 1.001)
        << timed.out;
    EXPECT_EQ(m.str(4) + m.str(5), m.str(6) + m.str(7));  // one phase: all of it
  }
  for (const auto& f : {a, b})
    std::remove(f.c_str());
}

TEST(Cli, InitFromContinuesTraining) {
  const std::string first = temp("first.safetensors"), second = temp("second.safetensors");
  const std::string args = "train " + kPeople + kTutorialFlags + " --seed 13 --dtype float64";
  ASSERT_EQ(chainrule(args + " --epochs 400 --out " + first).code, 0);
  // The model fixes the architecture and preprocessing; the run sets the optimization.
  const std::string resume = "train " + kPeople +
                             " --optimizer sgd --lr 0.1 --batch 1 --val 0 --no-shuffle --quiet "
                             "--dtype float64 --epochs 600 --init-from " +
                             first;
  ASSERT_EQ(chainrule(resume + " --out " + second).code, 0);
  // 400 + 600 epochs of per-sample SGD in file order is the demo's 1000.
  const chainrule::Model m = chainrule::load_model(second);
  const auto demo = chainrule::tutorial::train({.seed = 13});
  for (std::size_t i = 0; i < 9; ++i)
    EXPECT_EQ(m.params[i], demo.net.params()[i]) << i;
  const Outcome r = chainrule(resume + " --layers 5 --out " + second);  // would do nothing
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--layers differs from the model's 2: --init-from takes the architecture"),
            std::string::npos)
      << r.err;
  // The model's own values, repeated as scripts do, are accepted and change nothing.
  const std::string third = temp("third.safetensors");
  ASSERT_EQ(chainrule(resume + " --layers 2 --target gender --drop name --activation sigmoid " +
                      "--out " + third)
                .code,
            0);
  EXPECT_EQ(chainrule::load_model(third).params, chainrule::load_model(second).params);
  std::remove(third.c_str());
  for (const auto& f : {first, second})
    std::remove(f.c_str());
}

// Scripts and shell history re-run the whole command: --resume accepts the original options
// repeated, gives the uninterrupted run's bytes, and refuses only a value that differs.
TEST(Cli, ResumeAcceptsTheOriginalCommandLineRepeated) {
  const std::string first = temp("rep_first.safetensors"), again = temp("rep_again.safetensors");
  const std::string args = "train " + kPeople + kTutorialFlags +
                           " --seed 5 --epochs 3 --checkpoint-every 2 --lr 0.05 --optimizer sgd";
  ASSERT_EQ(chainrule(args + " --out " + first).code, 0);  // checkpoint after epoch 2
  const std::string ckpt = first + ".ckpt";
  const Outcome same = chainrule(args + " --resume " + ckpt + " --out " + again);
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(slurp(again), slurp(first));  // epoch 3 from the checkpoint: the same bytes
  const Outcome other = chainrule(args + " --lr 0.1 --resume " + ckpt + " --out " + again);
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("--lr 0.1 differs from the checkpoint's 0.05"), std::string::npos)
      << other.err;
  for (const auto& f : {first, again, ckpt})
    std::remove(f.c_str());
}

// A diverging run names the epoch and batch and keeps the last good checkpoint: the one of the
// epoch before, with finite weights, which reads as a model.
TEST(Cli, DivergenceKeepsTheLastGoodCheckpoint) {
  const std::string model = temp("diverge.safetensors"), ckpt = model + ".ckpt";
  const std::string base =
      "train " + kPeople +
      " --target gender --drop name --val 0 --quiet --optimizer sgd "
      "--momentum 0.9 --batch 1 --epochs 400 --activation relu --scale none --out " +
      model;
  const Outcome r = chainrule(base + " --lr 20 --checkpoint-every 1");
  ASSERT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.err, m,
      std::regex("training diverged (at|in) epoch (\\d+).*try a lower learning rate.*the last "
                 "good checkpoint \\(after epoch (\\d+)\\) is kept in (\\S+): go on from it "
                 "with --init-from")))
      << r.err;
  EXPECT_EQ(std::stoi(m[3]), std::stoi(m[2]) - 1);  // the epoch before the one that diverged
  EXPECT_EQ(m[4].str(), ckpt);
  EXPECT_FALSE(std::ifstream(model).good());  // no model from a diverged run
  const chainrule::Checkpoint c = chainrule::load_checkpoint(ckpt);
  EXPECT_EQ(c.state.epoch, std::stoi(m[3]));
  for (const double p : c.state.params)
    ASSERT_TRUE(std::isfinite(p));
  const Outcome info = chainrule("info " + ckpt);  // a checkpoint reads as a model
  EXPECT_EQ(info.code, 0) << info.err;
  std::remove(model.c_str());
  std::remove(ckpt.c_str());
}

// With OpenBLAS on two threads the products split across them, and a fixed thread count still
// gives the same bytes.
TEST(Cli, FixedThreadCountSameBytes) {
  const std::string csv = temp("wide.csv");
  {
    std::ofstream out(csv);
    out << "y";
    for (int c = 0; c < 64; ++c)
      out << ",x" << c;
    out << "\n";
    chainrule::Rng rng(3);
    for (int r = 0; r < 3000; ++r) {
      double sum = 0;
      std::string row;
      for (int c = 0; c < 64; ++c) {
        const double v = rng.normal();
        sum += c % 3 == 0 ? v : 0;
        row += "," + std::to_string(v);
      }
      out << (sum > 0 ? "up" : "down") << row << "\n";
    }
  }
  const std::string a = temp("threads_a.safetensors"), b = temp("threads_b.safetensors");
  const std::string args = "train " + csv +
                           " --target y --layers 512,512 --batch 256 --epochs 2 --quiet "
                           "--threads 2 --out ";
  ASSERT_EQ(chainrule(args + a).code, 0);
  ASSERT_EQ(chainrule(args + b).code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  // Layers of at most 128 Ki weights, batches of 64 shared by columns: on a CPU with AVX-512 the
  // library's own products sum every value in one order, so one thread and two train the same
  // weights, bit for bit (docs/design-notes.md, "Products of our own for small float32 layers").
  // The scores over the whole training set, a batch of 2,700 rows that OpenBLAS computes in
  // blocks of rows, may differ in their last digits: the file's tensors are compared.
  if (chainrule::detail::small_products_available() && chainrule::available_cores() >= 2) {
    const std::string small =
        "train " + csv + " --target y --layers 256,128 --batch 64 --epochs 2 --quiet --out ";
    ASSERT_EQ(chainrule(small + a + " --threads 1").code, 0);
    ASSERT_EQ(chainrule(small + b + " --threads 2").code, 0);
    const auto tensors = [](const std::string& path) {  // what follows the safetensors header
      const std::string bytes = slurp(path);
      std::uint64_t n = 0;
      for (int i = 7; i >= 0; --i)
        n = (n << 8) | static_cast<unsigned char>(bytes.at(std::size_t(i)));
      return bytes.substr(8 + n);
    };
    const std::string ta = tensors(a), tb = tensors(b);
    EXPECT_EQ(ta.size(), 4U * (64 * 256 + 256 + 256 * 128 + 128 + 128 + 1));
    EXPECT_TRUE(ta == tb) << "the weights trained on one thread and on two differ";
  }
  for (const auto& f : {csv, a, b})
    std::remove(f.c_str());
}

// --stream on reads the CSV file in passes (CsvScan): the same model bytes as reading it whole,
// checkpoints that resume either way, and files it cannot read in passes read whole.
TEST(Cli, StreamedCsvGivesTheSameModel) {
  const std::string csv = temp("stream.csv"), gz = csv + ".gz";
  {
    std::ofstream out(csv);
    out << "a,b,c,y\n";
    chainrule::Rng rng(8);
    for (int r = 0; r < 4000; ++r) {
      const double a = rng.normal(), b = rng.normal() * 10, c = rng.uniform();
      out << a << "," << (r % 50 == 3 ? "NA" : std::to_string(b)) << "," << c << ","
          << (a + b / 10 > 0 ? 1 : 0) << "\n";
    }
  }
  ASSERT_EQ(std::system(("gzip -k " + csv).c_str()), 0);
  const std::string whole = temp("whole.safetensors"), passes = temp("passes.safetensors"),
                    zipped = temp("zipped.safetensors");
  const std::string args = " --impute mean --layers 4 --epochs 3 --quiet --checkpoint-every 1 ";
  ASSERT_EQ(chainrule("train " + csv + args + "--stream off --out " + whole).code, 0);
  const Outcome r = chainrule("train " + csv + args + "--stream on --out " + passes);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(the file read in passes, --stream)"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(passes), slurp(whole));
  ASSERT_EQ(chainrule("train " + gz + args + "--stream on --out " + zipped).code, 0);
  EXPECT_EQ(slurp(zipped), slurp(whole));
  // The checkpoint of a run read whole resumes with the file read in passes, to the same bytes.
  const Outcome resumed =
      chainrule("train --resume " + whole + ".ckpt --stream on --quiet --out " + passes);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(slurp(passes), slurp(whole));
  const Outcome bad = chainrule("train " + csv + " --stream sometimes");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--stream"), std::string::npos) << bad.err;
  for (const auto& f :
       {csv, gz, whole, passes, zipped, whole + ".ckpt", passes + ".ckpt", zipped + ".ckpt"})
    std::remove(f.c_str());
}

TEST(Cli, ProgressOnATerminalAndInLogs) {
  const std::string model = temp("p.safetensors");
  const std::string args =
      " train " + kPeople + " --target gender --drop name --epochs 3 --out " + model;
  // Not a terminal: one line per epoch on stderr.
  const Outcome r = chainrule(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count_lines(r.err), 3) << r.err;
  EXPECT_TRUE(
      std::regex_search(r.err, std::regex("^epoch 1/3 train loss \\d\\.\\d{6} lr 0\\.001 ")));
  // A terminal (script(1) gives the command one): the live bar with batch, rate and ETA.
  const std::string out = temp("tty.txt");
  const std::string cmd =
      "script -qec '" + std::string(CHAINRULE_BIN) + args + "' /dev/null > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string tty = slurp(out);
  EXPECT_NE(tty.find("batch 1/1 loss"), std::string::npos) << tty;
  EXPECT_NE(tty.find("samples/s ETA"), std::string::npos) << tty;
  EXPECT_NE(tty.find("\r\033[K"), std::string::npos);
  // --quiet: nothing.
  EXPECT_EQ(chainrule(args + " --quiet").err, "");
  for (const auto& f : {model, out})
    std::remove(f.c_str());
}

TEST(Cli, ExplainLargeModelsShowsTheLargestGradients) {
  const std::string model = temp("wide.safetensors");
  ASSERT_EQ(chainrule("train " + kPeople +
                      " --target gender --drop name --layers 40 --epochs 3 --quiet --out " + model)
                .code,
            0);
  Outcome r = chainrule("explain " + model + " " + kPeople + " --row 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Showing the 10 parameters with the largest |∂L/∂p| of 161"),
            std::string::npos)
      << r.out;
  const std::regex chain(R"(\n  ∂L/∂[wb]\d+ = )");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), chain),
                          std::sregex_iterator()),
            10);
  r = chainrule("explain " + model + " " + kPeople + " --row 1 --param w3,layers.1.bias[0] --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["parameters"].size(), 2u);
  EXPECT_EQ(j["parameters"][0]["name"], "w3");
  EXPECT_EQ(j["parameters"][1]["tensor"], "layers.1.bias");
  r = chainrule("explain " + model + " " + kPeople + " --row 9");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--row 9 is out of range"), std::string::npos) << r.err;
  std::remove(model.c_str());
}

TEST(Cli, HelpExitsZero) {
  const Outcome r = chainrule("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("explain"), std::string::npos);
}

}  // namespace
