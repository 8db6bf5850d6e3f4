// chainrule report MODEL [DATA] --out report.html, and the page train --report writes.
#include "report.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "commands.hpp"
#include "html.hpp"

namespace chainrule::cli {

using html::brief;
using html::esc;
using html::exact;

namespace {

constexpr const char* kTrainColor = "#1f77b4";
constexpr const char* kValColor = "#d62728";
constexpr const char* kMetricColor = "#2ca02c";
constexpr const char* kLrColor = "#9467bd";

std::string now_text() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string join_units(const std::vector<Index>& units) {
  std::string s;
  for (const Index u : units)
    s += (s.empty() ? "" : ",") + std::to_string(u);
  return s.empty() ? "-" : s;
}

void fact(std::string& s, const std::string& key, const std::string& value_html,
          std::string_view id = {}) {
  s += fmt::format("<dt>{}</dt><dd{}>{}</dd>", esc(key),
                   id.empty() ? "" : fmt::format(" id=\"{}\"", id), value_html);
}

std::string run_section(const ReportInput& in) {
  const Lang L = in.lang;
  std::string s = "<h2>" + esc(tr(L, "The run")) + "</h2><dl class=\"run\">";
  if (!in.train_data.empty()) fact(s, tr(L, "training data"), esc(in.train_data), "train-data");
  if (const TrainingSettings* t = in.settings ? &*in.settings : nullptr) {
    std::string rows = fmt::format("{}", t->rows);
    if (t->validation > 0)
      rows += fmt::format(" ({} {:g})", esc(tr(L, "held out for validation:")), t->validation);
    fact(s, tr(L, "rows"), rows, "rows");
  }
  if (in.model) {
    const Model& m = *in.model;
    fact(s, tr(L, "task"),
         esc(fmt::format("{} · {} '{}'", tr(L, std::string(to_string(m.prep.task))),
                         tr(L, "target"), m.prep.target)));
    if (m.prep.task == Task::classify)
      fact(s, tr(L, "classes"), fmt::format("{}", m.prep.classes.size()));
    std::string features = fmt::format("{} ({} {})", m.prep.features.size(), esc(tr(L, "scaling:")),
                                       esc(to_string(m.prep.scale)));
    features += "<ul class=\"features\">";
    std::size_t shown = 0;
    for (const Feature& f : m.prep.features) {
      if (++shown > 12) {
        features +=
            fmt::format("<li>… {} {}</li>", m.prep.features.size() - 12, esc(tr(L, "more")));
        break;
      }
      if (f.numeric)
        features += fmt::format("<li>{}: {}, (x − {}) / {}</li>", esc(f.name), esc(tr(L, "number")),
                                brief(f.center), brief(f.scale));
      else
        features += fmt::format("<li>{}: {} ({})</li>", esc(f.name), esc(tr(L, "text, one-hot")),
                                fmt::format("{} {}", f.categories.size(), tr(L, "categories")));
    }
    features += "</ul>";
    fact(s, tr(L, "features"), features, "features");
    fact(s, tr(L, "architecture"),
         esc(fmt::format("{}; {} {}; {} {}; {}", describe(m.spec), tr(L, "loss"),
                         to_string(m.spec.loss), m.params.size(), tr(L, "parameters"),
                         to_string(m.dtype))),
         "architecture");
  }
  if (in.settings) {
    const TrainingSettings& t = *in.settings;
    if (!in.model)
      fact(s, tr(L, "architecture"),
           esc(fmt::format("{} {} ({}), {}", tr(L, "hidden layers"), join_units(t.layers),
                           to_string(t.activation), to_string(t.dtype))),
           "architecture");
    std::string opt =
        fmt::format("{}, {} {:g}", to_string(t.optimizer), tr(L, "learning rate"), t.lr);
    if (t.momentum > 0)
      opt += fmt::format(", momentum {:g}{}", t.momentum, t.nesterov ? " (Nesterov)" : "");
    if (t.weight_decay > 0) opt += fmt::format(", weight decay {:g}", t.weight_decay);
    fact(s, tr(L, "optimizer"), esc(opt), "optimizer");
    fact(
        s, tr(L, "schedule"),
        esc(fmt::format("{}; {} {}, {} {}{}{}", to_string(t.schedule), tr(L, "batch"), t.batch,
                        tr(L, "epochs"), t.epochs,
                        t.patience > 0 ? fmt::format(", {} {}", tr(L, "patience"), t.patience) : "",
                        t.dropout > 0 ? fmt::format(", dropout {:g}", t.dropout) : "")),
        "schedule");
    fact(s, tr(L, "seed"), fmt::format("{}", t.seed), "seed");
  }
  std::string when = esc(tr(L, "report written") + " " + now_text());
  if (in.seconds >= 0)
    when += esc(fmt::format("; {} {:.2f} s", tr(L, "training took"), in.seconds));
  fact(s, tr(L, "time"), when, "time");
  fact(s, tr(L, "version"), esc("chainrule " CHAINRULE_VERSION), "version");
  return s + "</dl>";
}

std::string curves_section(const ReportInput& in) {
  const Lang L = in.lang;
  std::string s = "<h2>" + esc(tr(L, "Training curves")) + "</h2>";
  if (in.history.empty())
    return s + "<p class=\"note\" id=\"no-curves\">" +
           esc(tr(L, "No epoch has finished yet, or the model file keeps no history.")) + "</p>";
  html::Series train{"train_loss", tr(L, "training loss"), kTrainColor, {}, false};
  html::Series val{"val_loss", tr(L, "validation loss"), kValColor, {}, true};
  html::Series metric{"val_metric", "", kMetricColor, {}, false};
  html::Series lr{"lr", tr(L, "learning rate"), kLrColor, {}, false};
  Metric which = Metric::none;
  int best = 0;
  for (const EpochReport& e : in.history) {
    const double x = e.epoch;
    train.points.emplace_back(x, e.train_loss);
    if (e.val_loss) val.points.emplace_back(x, *e.val_loss);
    if (e.val_metric) metric.points.emplace_back(x, *e.val_metric), which = e.metric;
    lr.points.emplace_back(x, e.lr);
    if (e.best) best = e.epoch;
  }
  if (in.model && in.model->metrics && in.model->metrics->best_epoch > 0)
    best = in.model->metrics->best_epoch;
  std::vector<html::Marker> markers;
  const bool stopped_early = in.model && in.model->metrics && in.model->metrics->stopped_early;
  if (best > 0 && (val.points.size() > 0 || stopped_early))
    markers.push_back({double(best), fmt::format("{} {}", tr(L, "best epoch"), best), "#2b8a3e"});
  if (stopped_early)
    markers.push_back({double(in.history.back().epoch), tr(L, "early stop"), "#c92a2a"});
  std::string loss_name = in.model ? std::string(to_string(in.model->spec.loss)) : "";
  std::vector<html::Series> losses{train};
  if (!val.points.empty()) losses.push_back(val);
  s +=
      "<div class=\"charts\"><figure id=\"chart-loss\">" +
      html::line_chart(losses, tr(L, "epoch"),
                       tr(L, "loss") + (loss_name.empty() ? "" : " (" + loss_name + ")"), markers) +
      "</figure>";
  if (!metric.points.empty()) {
    metric.label = tr(L, "validation") + " " + tr(L, std::string(to_string(which)));
    s += "<figure id=\"chart-metric\">" +
         html::line_chart({metric}, tr(L, "epoch"), tr(L, std::string(to_string(which))), markers) +
         "</figure>";
  }
  s += "<figure id=\"chart-lr\">" +
       html::line_chart({lr}, tr(L, "epoch"), tr(L, "learning rate"), {}) + "</figure></div>";
  s += fmt::format("<p class=\"note\" id=\"epochs-run\" data-epochs=\"{}\">{} {}</p>",
                   in.history.size(), in.history.size(), esc(tr(L, "epochs run")));
  return s;
}

// A cell colour: white to blue by `share` in [0, 1].
std::string heat(double share) {
  const int r = int(255 - share * (255 - 31)), g = int(255 - share * (255 - 119)),
            b = int(255 - share * (255 - 180));
  return fmt::format("background:rgb({},{},{});color:{}", r, g, b, share > 0.55 ? "#fff" : "#111");
}

std::string metrics_section(const ReportInput& in) {
  const Lang L = in.lang;
  if (!in.model) return "";
  const Model& m = *in.model;
  std::string s = "<h2>" + esc(tr(L, "Metrics")) + "</h2>";
  if (m.metrics) {
    s += "<table id=\"final-metrics\"><tr><th class=\"l\">" + esc(tr(L, "split")) + "</th><th>" +
         esc(tr(L, "rows")) + "</th><th>" + esc(tr(L, "loss")) + "</th><th>" +
         esc(tr(L, std::string(to_string(m.metrics->train.metric)))) + "</th></tr>";
    const auto row = [&](const std::string& name, const SplitMetrics& sm) {
      s += fmt::format(
          "<tr data-split=\"{}\"><td class=\"l\">{}</td><td>{}</td><td data-value=\"{}\">{}</td>"
          "<td data-value=\"{}\">{}</td></tr>",
          name, esc(tr(L, name)), sm.rows, exact(sm.loss), brief(sm.loss), exact(sm.value),
          brief(sm.value));
    };
    if (m.metrics->train.rows > 0) row("training", m.metrics->train);  // 0: not measured
    if (m.metrics->validation) row("validation", *m.metrics->validation);
    s += "</table>";
  }
  if (!in.eval) {
    s += "<p class=\"note\">" +
         esc(tr(L,
                "Give a data file (chainrule report MODEL DATA) for the confusion matrix, "
                "per-class metrics or predicted against true values.")) +
         "</p>";
    return s;
  }
  const Evaluation& e = *in.eval;
  s += fmt::format(
      "<h3>{} {}</h3><p id=\"eval-summary\" data-rows=\"{}\" data-loss=\"{}\">{} {}, {} {}",
      esc(tr(L, "On")), esc(in.eval_data), e.rows, exact(e.loss), e.rows, esc(tr(L, "rows")),
      esc(tr(L, "loss")), brief(e.loss));
  if (m.prep.task == Task::regress) {
    s += fmt::format(
        ", <span id=\"mse\" data-value=\"{}\">mse {}</span>, <span id=\"mae\" data-value=\"{}\">"
        "mae {}</span>, <span id=\"r2\" data-value=\"{}\">r² {}</span></p>",
        exact(e.mse), brief(e.mse), exact(e.mae), brief(e.mae), exact(e.r2), brief(e.r2));
    std::vector<double> residual(in.truth.size());
    for (std::size_t i = 0; i < in.truth.size(); ++i)
      residual[i] = in.truth[i] - in.predicted[i];
    s += "<div class=\"charts\"><figure id=\"chart-predicted\">" +
         html::scatter(in.truth, in.predicted, tr(L, "true value"), tr(L, "predicted"), true) +
         "</figure><figure id=\"chart-residuals\">" +
         html::scatter(in.predicted, residual, tr(L, "predicted"),
                       tr(L, "residual (true − predicted)"), false) +
         "</figure></div>";
    return s;
  }
  s += fmt::format(", <span id=\"accuracy\" data-value=\"{}\">{} {}</span></p>", exact(e.accuracy),
                   esc(tr(L, "accuracy")), brief(e.accuracy));
  const std::size_t K = e.confusion.size();
  if (K <= 40) {
    s += "<h3>" + esc(tr(L, "Confusion matrix")) + "</h3><p class=\"note\">" +
         esc(tr(L,
                "Rows: true class; columns: predicted class. Each cell: the count, and below "
                "it the share of its row; the colour is that share.")) +
         "</p><table class=\"cm\" id=\"confusion\"><tr><th></th>";
    for (std::size_t j = 0; j < K; ++j)
      s += "<th>" + esc(m.prep.classes[j]) + "</th>";
    s += "</tr>";
    for (std::size_t i = 0; i < K; ++i) {
      long total = 0;
      for (const long v : e.confusion[i])
        total += v;
      s += "<tr><th>" + esc(m.prep.classes[i]) + "</th>";
      for (std::size_t j = 0; j < K; ++j) {
        const long v = e.confusion[i][j];
        const double share = total > 0 ? double(v) / double(total) : 0;
        s += fmt::format(
            "<td data-true=\"{}\" data-pred=\"{}\" data-count=\"{}\" data-share=\"{}\" "
            "style=\"{}\" data-tip=\"{} {} → {} {}: {} ({:.1f}%)\">{}<small>{:.1f}%</small></td>",
            i, j, v, exact(share), heat(share), esc(tr(L, "true")), esc(m.prep.classes[i]),
            esc(tr(L, "predicted")), esc(m.prep.classes[j]), v, 100 * share, v, 100 * share);
      }
      s += "</tr>";
    }
    s += "</table>";
  } else {
    s += "<p class=\"note\">" +
         esc(fmt::format("{} ({})", tr(L, "Too many classes for a confusion matrix"), K)) + "</p>";
  }
  s += "<h3>" + esc(tr(L, "Per class")) + "</h3><table id=\"per-class\"><tr><th class=\"l\">" +
       esc(tr(L, "class")) + "</th><th>" + esc(tr(L, "precision")) + "</th><th>" +
       esc(tr(L, "recall")) + "</th><th>F1</th><th>" + esc(tr(L, "support")) + "</th></tr>";
  for (const ClassMetrics& c : e.classes)
    s += fmt::format(
        "<tr data-class=\"{}\"><td class=\"l\">{}</td><td data-value=\"{}\">{:.4f}</td>"
        "<td data-value=\"{}\">{:.4f}</td><td data-value=\"{}\">{:.4f}</td>"
        "<td data-value=\"{}\">{}</td></tr>",
        esc(c.label), esc(c.label), exact(c.precision), c.precision, exact(c.recall), c.recall,
        exact(c.f1), c.f1, c.support, c.support);
  return s + "</table>";
}

// Every neuron and weight of a small network: edge colour is the sign, width the magnitude.
std::string small_network(const Model& m, Lang L) {
  const Network<double> net = m.network<double>();
  std::vector<std::string> names;
  for (InputColumn& c : m.prep.input_layout())
    names.push_back(std::move(c.name));
  std::vector<Index> units{m.spec.inputs};
  for (const auto& l : net.layers())
    units.push_back(l.out());
  const double W = 760, H = 60 + 44.0 * double(*std::max_element(units.begin(), units.end()));
  const auto px = [&](std::size_t col) {
    return 140 + (W - 280) * double(col) / double(units.size() - 1);
  };
  const auto py = [&](std::size_t col, Index i) {
    return H / 2 + (double(i) - double(units[col] - 1) / 2) * 44;
  };
  double biggest = 1e-12;
  for (const double p : net.params())
    biggest = std::max(biggest, std::abs(p));
  std::string s = fmt::format(
      "<svg class=\"network\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" "
      "height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\">",
      W, H);
  for (std::size_t l = 0; l < net.layers().size(); ++l) {
    const Dense<double>& layer = net.layers()[l];
    const auto w = layer.weight(net.params().data());  // (in, out)
    for (Index o = 0; o < layer.out(); ++o)
      for (Index i = 0; i < layer.in(); ++i) {
        const double v = w(i, o);
        s += fmt::format(
            "<line class=\"edge\" data-param=\"layers.{}.weight[{},{}]\" data-value=\"{}\" "
            "x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"{:.2f}\" stroke-opacity=\"0.75\" data-tip=\"layers.{}.weight[{},{}] = "
            "{}\"/>",
            l, o, i, exact(v), px(l), py(l, i), px(l + 1), py(l + 1, o),
            v >= 0 ? "#1f77b4" : "#d62728", 0.4 + 4.0 * std::abs(v) / biggest, l, o, i, brief(v));
      }
  }
  for (std::size_t col = 0; col < units.size(); ++col)
    for (Index i = 0; i < units[col]; ++i) {
      std::string tip, label;
      if (col == 0) {
        tip = names[std::size_t(i)];
        label = names[std::size_t(i)];
        if (label.size() > 18) label = label.substr(0, 16) + "…";
      } else {
        const Dense<double>& layer = net.layers()[col - 1];
        const double b = layer.bias(net.params().data())(i);
        tip = fmt::format("{} {}, {} {}: layers.{}.bias[{}] = {}", tr(L, "layer"), col,
                          tr(L, "unit"), i, col - 1, i, brief(b));
        if (col + 1 == units.size() && m.prep.task == Task::classify && units[col] > 1)
          label = m.prep.classes[std::size_t(i)];
      }
      s += fmt::format(
          "<circle class=\"neuron\" data-layer=\"{}\" data-unit=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" "
          "r=\"11\" fill=\"{}\" stroke=\"#333\" data-tip=\"{}\"/>",
          col, i, px(col), py(col, i), col == 0 ? "#f1f3f5" : "#fff", esc(tip));
      if (!label.empty())
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">{}</text>",
                         col == 0 ? px(col) - 16 : px(col) + 16, py(col, i) + 4,
                         col == 0 ? "end" : "start", esc(label));
    }
  return s + "</svg>";
}

std::string network_section(const ReportInput& in) {
  if (!in.model) return "";
  const Lang L = in.lang;
  const Model& m = *in.model;
  std::string s = "<h2>" + esc(tr(L, "The network")) + "</h2>";
  Index widest = m.spec.inputs;
  for (const auto& l : m.spec.layers)
    widest = std::max(widest, l.units);
  if (widest <= 16 && m.params.size() <= 400) {
    s += "<p class=\"note\">" +
         esc(tr(L,
                "Every neuron and weight: blue is positive, red negative, the width is the "
                "magnitude; hover for the value.")) +
         "</p><figure id=\"network\">" + small_network(m, L) + "</figure>";
    return s;
  }
  s += "<p class=\"note\">" + esc(tr(L, "One block per layer: the histogram of its weights")) +
       (in.weight_gradients.empty()
            ? ""
            : esc(fmt::format(" {} {} {}", tr(L, "and of their gradients on"), in.gradient_rows,
                              tr(L, "rows of the data")))) +
       ".</p><div class=\"charts\" id=\"layers\">";
  const Network<double> net = m.network<double>();
  for (std::size_t l = 0; l < net.layers().size(); ++l) {
    const Dense<double>& layer = net.layers()[l];
    const auto w = layer.weight(net.params().data());
    const std::vector<double> values(w.data(), w.data() + w.size());
    s += fmt::format("<div class=\"layer\" data-layer=\"{}\"><h3>{} {}: {} → {} ({})</h3>", l,
                     esc(tr(L, "layer")), l, layer.in(), layer.out(),
                     esc(to_string(layer.activation())));
    s += html::histogram(values, 30, tr(L, "weight"), "#1f77b4", L);
    if (l < in.weight_gradients.size())
      s += html::histogram(in.weight_gradients[l], 30, tr(L, "gradient ∂L/∂w"), "#e8590c", L);
    s += "</div>";
  }
  return s + "</div>";
}

std::string status_badge(const ReportInput& in) {
  const Lang L = in.lang;
  switch (in.status) {
    case ReportInput::Status::running: {
      const int planned = in.settings ? in.settings->epochs : 0;
      return fmt::format(
          "<span class=\"status running\" id=\"status\" data-status=\"running\">{} {}/{}</span>",
          esc(tr(L, "training: epoch")), in.history.size(), planned);
    }
    case ReportInput::Status::interrupted:
      return "<span class=\"status interrupted\" id=\"status\" data-status=\"interrupted\">" +
             esc(tr(L, "interrupted")) + "</span>";
    case ReportInput::Status::done:
      break;
  }
  return "<span class=\"status done\" id=\"status\" data-status=\"done\">" +
         esc(tr(L, "finished")) + "</span>";
}

}  // namespace

void add_data(ReportInput& in, const Model& m, const LoadedData& data, const std::string& path) {
  in.eval_data = path;
  if (!m.prep.has_target(data.table()))
    throw DataError(path + ": no target column '" + m.prep.target +
                    "': the report's metrics need the true values");
  in.eval = evaluate(m, data.dataset(), threads());
  const std::vector<std::size_t> rows = m.prep.rows_with_target(data.table());
  if (m.prep.task == Task::regress) {
    const Predictions p = predict(m, data.dataset(), threads());
    const Column& target = data.table().columns[std::size_t(data.table().find(m.prep.target))];
    for (const std::size_t r : rows) {
      in.truth.push_back(target.numbers[r]);
      in.predicted.push_back(p.value[r]);
    }
  }
  // Gradients of the loss, averaged over the first rows (at most 1000), layer by layer.
  const std::vector<std::size_t> some(rows.begin(),
                                      rows.begin() + std::min<std::ptrdiff_t>(1000, rows.size()));
  if (some.empty()) return;
  const Batch<double> X = m.prep.transform<double>(data.dataset(), some);
  const Batch<double> Y = m.prep.targets<double>(data.table(), some);
  Network<double> net = m.network<double>();
  net.zero_grad();
  net.forward(X);
  net.backward(Y);
  in.gradient_rows = some.size();
  for (const Dense<double>& layer : net.layers()) {
    const auto g = layer.weight(net.grads().data());
    in.weight_gradients.emplace_back(g.data(), g.data() + g.size());
  }
}

std::string report_html(const ReportInput& in) {
  const Lang L = in.lang;
  std::string title = tr(L, "chainrule training report");
  std::string body = "<h1>" + esc(title) + "</h1><p>" + status_badge(in) + "</p>";
  if (in.status == ReportInput::Status::running)
    body += "<p class=\"note noprint\">" +
            esc(tr(L, "This page reloads itself every few seconds while training runs.")) + "</p>";
  body += run_section(in) + curves_section(in) + metrics_section(in) + network_section(in);
  return html::page(L, title, body, in.status == ReportInput::Status::running ? 2 : 0);
}

namespace {

struct ReportArgs {
  std::string model;
  DataArgs data;
  std::string out;
  Lang lang = Lang::en;
};

int run_report(const ReportArgs& a) {
  check_output(a.out, "--out", "the report", {a.model, a.data.path, a.data.labels});
  const Model m = load_model(a.model);
  ReportInput in;
  in.lang = a.lang;
  in.model = &m;
  in.settings = m.training;
  if (m.metrics) in.history = m.metrics->history;
  if (!a.data.path.empty()) {
    const LoadedData data(a.data);
    add_data(in, m, data, a.data.path);
  }
  write_file_atomically(a.out, report_html(in));
  fmt::print("report written to {}\n", a.out);
  return kOk;
}

}  // namespace

Command add_report(CLI::App& root) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* app = root.add_subcommand(
      "report",
      "Write a self-contained HTML report of a model: its run, curves, metrics on DATA and its "
      "network");
  app->add_option("MODEL", a->model, "Model file")->required();
  app->add_option("DATA", a->data.path,
                  "CSV or IDX file with the target: the confusion matrix, per-class metrics or "
                  "predicted against true values, and the gradients");
  add_data_options(app, a->data);
  app->add_option("--out", a->out, "HTML file to write")->required();
  add_lang_option(app, a->lang);
  return {app, [a] { return run_report(*a); }};
}

}  // namespace chainrule::cli
