// chainrule explain: every gradient of one sample as a product of chain-rule factors.
#include "chainrule/explain.hpp"

#include <fmt/core.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/init.hpp"
#include "chainrule/tutorial.hpp"
#include "commands.hpp"
#include "data_args.hpp"
#include "explain_html.hpp"
#include "lang.hpp"

namespace chainrule::cli {

namespace {

struct ExplainCliOptions {
  std::string model;  // with data and row: explain a saved model on a data row
  DataArgs data;
  long row = 0;
  std::string sample = "youge";
  std::string weights = "ones";
  std::uint64_t seed = 42;
  double fd_step = 1e-6;
  bool json = false;
  std::string html;  // write the diagram page here
  Lang lang = Lang::en;
  std::string params;   // comma-separated parameter names
  std::size_t top = 0;  // 0: all parameters of small networks, the 10 largest gradients of others
};

// Which parameters to trace: --param names, else --top N largest gradients, else all of a
// network with at most 100 parameters and the 10 largest gradients of a larger one.
std::vector<Index> selected_params(const ExplainCliOptions& o, const Network<double>& net,
                                   std::span<const double> x, std::span<const double> y,
                                   std::string& note) {
  std::vector<Index> chosen;
  for (const std::string& name : split_list(o.params, "--param"))
    chosen.push_back(find_param(net, name));
  if (!chosen.empty()) return chosen;
  const std::size_t top = o.top > 0 ? o.top : net.num_params() > 100 ? 10 : 0;
  if (top == 0 || top >= std::size_t(net.num_params())) return {};
  note =
      fmt::format("the {} parameters with the largest |∂L/∂p| of {} (choose with --param or --top)",
                  top, net.num_params());
  return largest_gradients(net, x, y, top);
}

// Six decimals with trailing zeros dropped; tiny values in scientific notation.
std::string num(double v) {
  if (v == 0) return "0";
  if (std::abs(v) < 1e-4) return fmt::format("{:.4e}", v);
  std::string s = fmt::format("{:.6f}", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// Columns a UTF-8 string takes on a terminal (every character used here is one column wide).
std::size_t display_width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    w += (c & 0xC0) != 0x80;
  return w;
}

std::string paren(double v) {
  return v < 0 ? "(" + num(v) + ")" : num(v);
}

std::string activation_symbol(Activation a) {
  return a == Activation::sigmoid ? "σ" : std::string(to_string(a));
}

void print_neuron(const NeuronTrace& n) {
  std::string symbolic, numeric;
  const std::size_t fan_in = n.inputs.size();
  if (fan_in <= 6) {
    for (std::size_t i = 0; i < fan_in; ++i) {
      symbolic += (i ? " + " : "") + n.weights[i] + "·" + n.inputs[i];
      numeric += (i ? " + " : "") + num(n.weight_values[i]) + "·" + paren(n.input_values[i]);
    }
    symbolic += " + " + n.bias;
    numeric += " + " + paren(n.bias_value);
  } else {
    symbolic = fmt::format("Σ of {} weighted inputs + {}", fan_in, n.bias);
  }
  std::string z = "z_" + n.name + " = " + symbolic;
  if (!numeric.empty()) z += " = " + numeric;
  fmt::print("  {} = {}\n", z, num(n.z));
  if (n.activation == Activation::softmax)
    fmt::print("  {} = softmax(z)_{} = {}\n", n.name, n.index + 1, num(n.a));
  else if (n.activation == Activation::identity)
    fmt::print("  {} = z_{} = {}\n", n.name, n.name, num(n.a));
  else
    fmt::print("  {} = {}(z_{}) = {}({}) = {}\n", n.name, activation_symbol(n.activation), n.name,
               activation_symbol(n.activation), num(n.z), num(n.a));
}

// "Network  ", "网络  ": a heading of the first lines, padded to line up in English.
std::string label(Lang L, const char* key) {
  const std::string t = tr(L, key);
  return t + std::string(L == Lang::en ? 9 - t.size() : 2, ' ');
}

void print_text(const Explanation& e, const Network<double>& net, const std::string& sample,
                const std::string& weights, Lang L) {
  if (L == Lang::en)
    fmt::print("Network  {}; loss {}; {} parameters\n", describe(net.spec()), to_string(e.loss),
               net.num_params());
  else
    fmt::print("{}{}；{} {}；{} {}\n", label(L, "Network"), describe(net.spec()), tr(L, "loss"),
               to_string(e.loss), net.num_params(), tr(L, "parameters"));
  fmt::print("{}{}\n", label(L, "Weights"), weights);
  std::string xs;
  const std::size_t shown_inputs = e.x.size() > 10 ? 8 : e.x.size();
  for (std::size_t i = 0; i < shown_inputs; ++i)
    xs += fmt::format("{}{} = {}", i ? ", " : "", e.input_names[i], num(e.x[i]));
  if (shown_inputs < e.x.size()) xs += fmt::format(", … ({} inputs)", e.x.size());
  for (std::size_t k = 0; k < e.y.size(); ++k)
    xs += fmt::format(", y{} = {}", e.y.size() == 1 ? "" : std::to_string(k + 1), num(e.y[k]));
  fmt::print("{}{}: {}\n\n{}\n", label(L, "Sample"), sample, xs, tr(L, "Forward pass"));

  // Which neurons to show: all of them when every parameter is explained; otherwise the output
  // layer and the neurons the shown chains pass through.
  const bool everything = e.params.size() == std::size_t(net.num_params());
  std::set<std::string> relevant;
  for (const ParamTrace& p : e.params) {
    relevant.insert(p.to);
    relevant.insert(p.from);
    for (const Factor& f : p.factors) {  // "∂L/∂h1.2", "∂ŷ/∂h1", "∂z_ŷ/∂h1": the names in it
      std::size_t at = 0;
      while ((at = f.symbol.find("∂", at)) != std::string::npos) {
        at += std::string("∂").size();
        std::size_t end = f.symbol.find('/', at);
        std::string token =
            f.symbol.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (token.rfind("z_", 0) == 0) token = token.substr(2);
        relevant.insert(token);
      }
    }
  }
  const auto shown = [&](const NeuronTrace& n) {
    return everything || n.layer + 1 == net.layers().size() || relevant.count(n.name) > 0;
  };
  for (const NeuronTrace& n : e.neurons)
    if (shown(n)) print_neuron(n);
  if (!everything) fmt::print("  {}\n", tr(L, "(neurons off the shown chains are left out)"));
  std::string numeric;  // the formula with numbers, where it is short enough to read
  if (e.loss == Loss::mse && e.y.size() == 1)
    numeric = fmt::format(" = ({} − {})²", num(e.y[0]), num(e.neurons.back().a));
  fmt::print("\n{}\n  L = {}{} = {}\n", tr(L, "Loss"), e.loss_formula, numeric, num(e.loss_value));

  // Neurons whose ∂L/∂a is a sum over several paths are referred to by name in the chains.
  bool header = false;
  for (const NeuronTrace& n : e.neurons) {
    if (n.layer + 1 >= net.layers().size() || net.layers()[n.layer + 1].out() == 1) continue;
    if (!shown(n)) continue;
    if (!header) fmt::print("\n{}\n", tr(L, "Backward pass (sums over several paths)"));
    header = true;
    fmt::print("  ∂L/∂{} = {}   ∂L/∂z_{} = {}\n", n.name, num(n.grad_a), n.name, num(n.grad_z));
  }

  fmt::print("\n{} (h = {})\n",
             tr(L, "Gradients: chain rule, checked by central finite differences"), e.fd_step);
  for (const ParamTrace& p : e.params) {
    std::string symbols, formulas, values;
    for (std::size_t i = 0; i < p.factors.size(); ++i) {
      const char* sep = i ? " · " : "";
      symbols += sep + p.factors[i].symbol;
      formulas += sep + p.factors[i].formula;
      values += (i ? " × " : "") + paren(p.factors[i].value);
    }
    const std::string lhs = "∂L/∂" + p.name;
    const std::string indent(display_width(lhs) + 1, ' ');
    fmt::print("\n  {} = {}\n", lhs, symbols);
    if (!everything)
      fmt::print("  {}({} {} {}[{}], {} → {})\n", indent, p.name, tr(L, "is"), p.tensor,
                 p.col < 0 ? std::to_string(p.row) : fmt::format("{},{}", p.row, p.col), p.from,
                 p.to);
    fmt::print("  {}= {}\n", indent, formulas);
    if (p.factors.size() > 1) fmt::print("  {}= {}\n", indent, values);
    fmt::print("  {}= {}   {} {} ({} {:.1e})\n", indent, num(p.chain), tr(L, "finite difference"),
               num(p.finite_difference), tr(L, "relative error"), p.relative_error);
    fmt::print("  {}  {}\n", indent, sign_reading(L, p.name, p.chain, p.reading));
  }
}

nlohmann::json to_json(const Explanation& e, const std::string& sample, Lang L) {
  using nlohmann::json;
  json j;
  j["sample"] = sample;
  j["inputs"] = json::object();
  for (std::size_t i = 0; i < e.x.size(); ++i)
    j["inputs"][e.input_names[i]] = e.x[i];
  j["targets"] = e.y;
  j["outputs"] = e.output_names;
  j["neurons"] = json::array();
  for (const NeuronTrace& n : e.neurons)
    j["neurons"].push_back({{"name", n.name},
                            {"layer", n.layer},
                            {"activation", to_string(n.activation)},
                            {"inputs", n.inputs},
                            {"weights", n.weights},
                            {"input_values", n.input_values},
                            {"weight_values", n.weight_values},
                            {"bias", n.bias},
                            {"bias_value", n.bias_value},
                            {"z", n.z},
                            {"a", n.a},
                            {"dL_da", n.grad_a},
                            {"dL_dz", n.grad_z}});
  j["loss"] = {
      {"function", to_string(e.loss)}, {"formula", e.loss_formula}, {"value", e.loss_value}};
  j["finite_difference_step"] = e.fd_step;
  j["parameters"] = json::array();
  for (const ParamTrace& p : e.params) {
    json factors = json::array();
    for (const Factor& f : p.factors)
      factors.push_back({{"symbol", f.symbol}, {"formula", f.formula}, {"value", f.value}});
    j["parameters"].push_back(
        {{"name", p.name},
         {"tensor", p.tensor},
         {"index", p.col < 0 ? json::array({p.row}) : json::array({p.row, p.col})},
         {"from", p.from},
         {"to", p.to},
         {"value", p.value},
         {"factors", factors},
         {"gradient", p.chain},
         {"backprop", p.backprop},
         {"finite_difference", p.finite_difference},
         {"relative_error", p.relative_error},
         {"reading", sign_reading(L, p.name, p.chain, p.reading)}});
  }
  return j;
}

std::size_t find_person(const std::string& s) {
  const auto& people = tutorial::people();
  for (std::size_t i = 0; i < people.size(); ++i)
    if (people[i].name == s || std::to_string(i) == s) return i;
  throw ConfigError("--sample: unknown person '" + s +
                    "': expected youge, share, naive, beyes or an index 0-3");
}

// Network input names: numeric features by name, one-hot inputs as name=category.
std::vector<std::string> input_names(const Preprocessor& p) {
  std::vector<std::string> names;
  for (InputColumn& in : p.input_layout())
    names.push_back(std::move(in.name));
  return names;
}

int explain_model(const ExplainCliOptions& o) {
  if (o.data.path.empty()) throw ConfigError("explain MODEL needs a DATA file and --row");
  const Model m = load_model(o.model);
  const Table t = load_table(o.data);
  if (o.row < 0 || std::size_t(o.row) >= t.rows())
    throw ConfigError("--row " + std::to_string(o.row) + " is out of range: " + o.data.path +
                      " has " + std::to_string(t.rows()) + " data rows (0 to " +
                      std::to_string(t.rows() - 1) + ")");
  if (!m.prep.has_target(t))
    throw DataError(o.data.path + ": no target column '" + m.prep.target +
                    "': explain needs the true value");
  const std::vector<std::size_t> rows{std::size_t(o.row)};
  const Batch<double> X = m.prep.transform<double>(t, rows);
  const Batch<double> Y = m.prep.targets<double>(t, rows);
  const Network<double> net = m.network<double>();  // explained in double precision
  ExplainOptions options;
  options.fd_step = o.fd_step;
  options.input_names = input_names(m.prep);
  const std::span<const double> x(X.data(), std::size_t(X.cols())),
      y(Y.data(), std::size_t(Y.cols()));
  std::string note;
  options.params = selected_params(o, net, x, y, note);
  const Explanation e = explain(net, x, y, options);
  if (!note.empty() && !o.json) fmt::print("{} {}\n", tr(o.lang, "Showing"), note);
  std::string sample = fmt::format(fmt::runtime(tr(o.lang, "row {0} of {1}")), o.row, o.data.path);
  if (const std::size_t line = o.row >= 0 ? t.line_of(std::size_t(o.row)) : 0; line > 0)
    sample += fmt::format(fmt::runtime(tr(o.lang, " (line {})")), line);
  if (!o.html.empty()) {
    write_file_atomically(o.html,
                          explain_html(o.lang,
                                       {{fmt::format(fmt::runtime(tr(o.lang, "row {}")), o.row),
                                         to_json(e, sample, o.lang)}},
                                       0,
                                       fmt::format("{}: {} ({}); {}", tr(o.lang, "Model"), o.model,
                                                   to_string(m.dtype), sample)));
    fmt::print("diagram written to {}\n", o.html);
    return kOk;
  }
  if (o.json) {
    fmt::print(
        "{}\n",
        to_json(e, sample, o.lang).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kOk;
  }
  print_text(e, net, sample + ", " + tr(o.lang, "inputs after preprocessing"),
             fmt::format("{} ({})", o.model, to_string(m.dtype)), o.lang);
  return kOk;
}

int run_explain(const ExplainCliOptions& o) {
  if (!o.html.empty())
    check_output(o.html, "--html", "the diagram", {o.model, o.data.path, o.data.labels});
  if (!o.model.empty()) return explain_model(o);
  const std::size_t chosen = find_person(o.sample);
  const tutorial::Person& person = tutorial::people()[chosen];
  Network<double> net(tutorial::spec());
  std::string weights;
  if (o.weights == "ones") {
    // The tutorial's worked case: every weight 1, every bias 0.
    for (const auto& layer : net.layers()) {
      layer.weight(net.params().data()).setOnes();
      layer.bias(net.params().data()).setZero();
    }
    weights = tr(o.lang, "all weights 1, all biases 0 (the tutorial's worked case)");
  } else {
    Rng rng(o.seed);
    initialize(net, Init::normal, rng);
    weights = fmt::format(fmt::runtime(tr(o.lang, "every weight and bias from N(0, 1), seed {}")),
                          o.seed);
  }
  const auto explain_person = [&](const tutorial::Person& who) {
    const double x[2] = {who.weight, who.height};
    const double y[1] = {who.gender};
    ExplainOptions options;
    options.fd_step = o.fd_step;
    std::string note;
    options.params = selected_params(o, net, x, y, note);
    return explain(net, x, y, options);
  };
  if (!o.html.empty()) {  // every person, to step through
    std::vector<DiagramSample> samples;
    for (const tutorial::Person& who : tutorial::people())
      samples.push_back(
          {std::string(who.name), to_json(explain_person(who), std::string(who.name), o.lang)});
    write_file_atomically(
        o.html,
        explain_html(
            o.lang, samples, chosen,
            fmt::format(
                "{}: {}. {}", tr(o.lang, "Weights"), weights,
                tr(o.lang, "The data: the tutorial's four people (examples/people.csv)."))));
    fmt::print("diagram written to {}\n", o.html);
    return kOk;
  }
  const Explanation e = explain_person(person);
  const std::string sample =
      std::string(person.name) + " " + tr(o.lang, "(x1 = weight, x2 = height, y = gender)");
  if (o.json)
    fmt::print("{}\n", to_json(e, std::string(person.name), o.lang)
                           .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  else
    print_text(e, net, sample, weights, o.lang);
  return kOk;
}

}  // namespace

Command add_explain(CLI::App& root) {
  auto o = std::make_shared<ExplainCliOptions>();
  CLI::App* app = root.add_subcommand(
      "explain",
      "Show every gradient as a product of chain-rule factors: the tutorial's network, or a saved "
      "MODEL on one row of DATA");
  app->add_option("MODEL", o->model, "Model file (default: the tutorial's network)");
  app->add_option("DATA", o->data.path, "CSV or IDX file holding the row (with its target)");
  add_data_options(app, o->data);
  app->add_option("--row", o->row, "0-based data row of DATA to explain")->capture_default_str();
  CLI::Option* sample =
      app->add_option("--sample", o->sample, "Person to explain: youge, share, naive, beyes or 0-3")
          ->capture_default_str();
  CLI::Option* weights =
      app->add_option("--weights", o->weights,
                      "ones: all weights 1 and biases 0 (the worked case); random: N(0, 1) draws")
          ->check(CLI::IsMember({"ones", "random"}))
          ->capture_default_str();
  CLI::Option* seed =
      app->add_option("--seed", o->seed, "Seed of --weights random")->capture_default_str();
  seed->needs(weights);
  // The tutorial's sample and weights, or a model and a data row: not both.
  for (CLI::Option* tutorial_only : {sample, weights, seed})
    tutorial_only->excludes(app->get_option("MODEL"));
  app->add_option("--fd-step", o->fd_step, "Step h of the central finite difference")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--param", o->params,
                  "Parameters to explain, comma-separated: w1, b3, layers.0.weight[row,col], "
                  "layers.1.bias[row] (default: all, or the 10 largest gradients of a network "
                  "with more than 100 parameters)");
  app->add_option("--top", o->top, "Explain the N parameters with the largest gradients")
      ->check(at_least(1));
  CLI::Option* json = app->add_flag("--json", o->json, "Print the explanation as JSON");
  app->add_option("--html", o->html,
                  "Write the explanation as an interactive diagram to this HTML file (the "
                  "tutorial's four people, or the model's row)")
      ->excludes(json);
  add_lang_option(app, o->lang);
  return {app, [o] { return run_explain(*o); }};
}

}  // namespace chainrule::cli
