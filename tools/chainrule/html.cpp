#include "html.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace chainrule::cli::html {

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string exact(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return fmt::format("{:.17g}", v);
}

std::string brief(double v) {
  if (!std::isfinite(v)) return exact(v);
  if (v != 0 && (std::abs(v) < 1e-3 || std::abs(v) >= 1e6)) return fmt::format("{:.3e}", v);
  return fmt::format("{:.4g}", v);
}

std::string script_json(const nlohmann::json& j) {
  // '<', '>' and '&' occur only inside JSON strings, where \u003c and the like mean the same: with
  // none of them, no text in the data (a column named "</script>" or "<!--") can end the script
  // element or change how the page around it is read.
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out += c;
  }
  return out;
}

namespace {

constexpr std::string_view kStyle = R"css(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "Microsoft YaHei", "PingFang SC",
  "Hiragino Sans GB", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
  "WenQuanYi Micro Hei", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.6em; border: 1px solid #ddd; text-align: right; }
th { background: #f4f4f4; }
td.l, th.l { text-align: left; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; }
dl.run dt { font-weight: 600; } dl.run dd { margin: 0; }
.note { color: #555; font-size: 0.92em; }
.status { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; font-size: 0.9em; }
.status.running { background: #fff3cd; } .status.done { background: #d1e7dd; }
.status.interrupted { background: #f8d7da; }
svg { font-size: 11px; overflow: visible; }
svg text { fill: #333; }
.axis line, .axis path { stroke: #999; }
.grid line { stroke: #eee; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0.5em 0; }
.tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 0.25em 0.5em;
  border-radius: 3px; font-size: 12px; white-space: pre; z-index: 10; display: none; }
table.cm td { min-width: 3.2em; font-variant-numeric: tabular-nums; }
table.cm td small { display: block; color: inherit; opacity: 0.8; }
@media print { .tip, .noprint { display: none !important; } body { max-width: none; } }
)css";

constexpr std::string_view kTipScript = R"js(
(function () {
  var tip = document.createElement('div');
  tip.className = 'tip';
  document.body.appendChild(tip);
  document.addEventListener('mouseover', function (e) {
    var t = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (!t) { tip.style.display = 'none'; return; }
    tip.textContent = t.getAttribute('data-tip');
    tip.style.display = 'block';
  });
  document.addEventListener('mousemove', function (e) {
    tip.style.left = (e.clientX + 12) + 'px';
    tip.style.top = (e.clientY + 12) + 'px';
  });
})();
)js";

struct Range {
  double lo, hi;
  double at(double v, double a, double b) const {  // v in [lo, hi] to [a, b]
    return hi == lo ? (a + b) / 2 : a + (v - lo) / (hi - lo) * (b - a);
  }
};

// The data range widened to the ticks around it.
Range nice_range(double lo, double hi, std::vector<double>& t) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (lo == hi) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  t = ticks(lo, hi);
  return {std::min(lo, t.front()), std::max(hi, t.back())};
}

std::string tick_text(double v, double step) {
  if (v == 0) return "0";
  const int decimals = std::max(0, int(std::ceil(-std::log10(step) - 1e-9)));
  if (std::abs(v) >= 1e6 || decimals > 6) return fmt::format("{:.2g}", v);
  return fmt::format("{:.{}f}", v, decimals);
}

struct Frame {
  double w = 500, h = 270, left = 70, right = 14, top = 26, bottom = 40;
  double x0() const { return left; }
  double x1() const { return w - right; }
  double y0() const { return h - bottom; }  // bottom of the plot area
  double y1() const { return top; }
};

// Axes, grid lines, tick labels and axis titles of a plot area.
std::string axes(const Frame& f, const Range& xr, const std::vector<double>& xt, const Range& yr,
                 const std::vector<double>& yt, std::string_view x_title,
                 std::string_view y_title) {
  std::string s = "<g class=\"grid\">";
  for (const double y : yt)
    if (y >= yr.lo && y <= yr.hi) {
      const double py = yr.at(y, f.y0(), f.y1());
      s += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>", f.x0(),
                       f.x1(), py, py);
    }
  s += "</g><g class=\"axis\">";
  s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>", f.x0(),
                   f.x1(), f.y0());
  s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\"/>", f.x0(),
                   f.y0(), f.y1());
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (const double x : xt) {
    if (x < xr.lo || x > xr.hi) continue;
    const double px = xr.at(x, f.x0(), f.x1());
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\"/>"
        "<text class=\"xtick\" x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>",
        px, f.y0(), f.y0() + 4, f.y0() + 16, tick_text(x, xstep));
  }
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (const double y : yt) {
    if (y < yr.lo || y > yr.hi) continue;
    const double py = yr.at(y, f.y0(), f.y1());
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>"
        "<text class=\"ytick\" x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>",
        f.x0() - 4, f.x0(), py, f.x0() - 7, py + 4, tick_text(y, ystep));
  }
  s += "</g>";
  s += fmt::format(
      "<text class=\"xtitle\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
      (f.x0() + f.x1()) / 2, f.h - 6, esc(x_title));
  s += fmt::format(
      "<text class=\"ytitle\" transform=\"translate(12,{:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>",
      (f.y0() + f.y1()) / 2, esc(y_title));
  return s;
}

std::string svg_open(const Frame& f, std::string_view cls) {
  return fmt::format(
      "<svg class=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\">",
      cls, f.w, f.h, f.w, f.h);
}

}  // namespace

std::vector<double> ticks(double lo, double hi, int count) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(count, 1);
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  const double first = std::floor(lo / step) * step;
  for (double v = first; v <= hi + step * 0.999 && t.size() < 50; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string page(Lang lang, std::string_view title, std::string_view body, int refresh_seconds,
                 std::string_view script) {
  std::string s = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
      html_lang(lang));
  if (refresh_seconds > 0)
    s += fmt::format("<meta http-equiv=\"refresh\" content=\"{}\">\n", refresh_seconds);
  s += fmt::format("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n", esc(title), kStyle);
  s += body;
  s += fmt::format("\n<script>{}</script>\n", kTipScript);
  if (!script.empty()) s += fmt::format("<script>{}</script>\n", script);
  s += "</body>\n</html>\n";
  return s;
}

std::string line_chart(const std::vector<Series>& series, std::string_view x_title,
                       std::string_view y_title, const std::vector<Marker>& markers) {
  const Frame f;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      xlo = std::min(xlo, x);
      xhi = std::max(xhi, x);
      if (!std::isfinite(y)) continue;
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
  if (!(xlo <= xhi)) xlo = 0, xhi = 1;
  if (!(ylo <= yhi)) ylo = 0, yhi = 1;
  std::vector<double> xt, yt;
  Range xr = nice_range(xlo, xhi, xt);
  bool whole = true;  // epochs: no tick between two of them
  for (const Series& sr : series)
    for (const auto& p : sr.points)
      whole = whole && p.first == std::floor(p.first);
  if (whole && xt.size() > 1 && xt[1] - xt[0] < 1) {
    xr = {std::floor(xlo), std::max(std::ceil(xhi), std::floor(xlo) + 1)};
    xt.clear();
    for (double x = xr.lo; x <= xr.hi; ++x)
      xt.push_back(x);
  }
  const Range yr = nice_range(ylo, yhi, yt);
  std::string s = svg_open(f, "chart");
  s += axes(f, xr, xt, yr, yt, x_title, y_title);
  for (const Marker& m : markers) {
    const double px = xr.at(m.x, f.x0(), f.x1());
    s += fmt::format(
        "<g class=\"marker\" data-x=\"{}\"><line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" "
        "y2=\"{:.1f}\" stroke=\"{}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1f}\" y=\"{:.1f}\" "
        "fill=\"{}\" text-anchor=\"{}\">{}</text></g>",
        exact(m.x), px, px, f.y0(), f.y1(), m.color, px > (f.x0() + f.x1()) / 2 ? px - 3 : px + 3,
        f.y1() + 10 + 12.0 * double(&m - markers.data()), m.color,
        px > (f.x0() + f.x1()) / 2 ? "end" : "start", esc(m.label));
  }
  double legend_x = f.x0() + 8;
  for (const Series& sr : series) {
    std::string path;
    bool pen_up = true;
    for (const auto& [x, y] : sr.points) {
      if (!std::isfinite(y)) {
        pen_up = true;
        continue;
      }
      path += fmt::format("{}{:.2f},{:.2f}", pen_up ? "M" : " L", xr.at(x, f.x0(), f.x1()),
                          yr.at(y, f.y0(), f.y1()));
      pen_up = false;
    }
    s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{}/>", path,
                     sr.color, sr.dashed ? " stroke-dasharray=\"5 3\"" : "");
    const double r = sr.points.size() > 150 ? 1.6 : 3;
    for (const auto& [x, y] : sr.points) {
      if (!std::isfinite(y)) continue;
      s += fmt::format(
          "<circle class=\"pt\" data-series=\"{}\" data-x=\"{}\" data-y=\"{}\" cx=\"{:.2f}\" "
          "cy=\"{:.2f}\" r=\"{}\" fill=\"{}\" data-tip=\"{}: {} = {}, {}\"/>",
          esc(sr.key), exact(x), exact(y), xr.at(x, f.x0(), f.x1()), yr.at(y, f.y0(), f.y1()), r,
          sr.color, esc(sr.label), esc(x_title), brief(x), brief(y));
    }
    s += fmt::format(
        "<g class=\"legend\"><line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" "
        "stroke=\"{3}\" stroke-width=\"2\"{4}/><text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text></g>",
        legend_x, legend_x + 16, 9.0, sr.color, sr.dashed ? " stroke-dasharray=\"5 3\"" : "",
        legend_x + 20, 13.0, esc(sr.label));
    legend_x += 30 + 7.0 * double(sr.label.size());
  }
  return s + "</svg>";
}

std::string histogram(const std::vector<double>& values, int bins, std::string_view x_title,
                      std::string_view color, Lang lang) {
  Frame f;
  f.w = 320;
  f.h = 170;
  f.left = 46;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (lo == hi) lo -= 0.5, hi += 0.5;
  std::vector<long> count(std::size_t(bins), 0);
  for (const double v : values) {
    if (!std::isfinite(v)) continue;
    const int b = std::min(bins - 1, int((v - lo) / (hi - lo) * bins));
    ++count[std::size_t(std::max(b, 0))];
  }
  const long most = std::max<long>(1, *std::max_element(count.begin(), count.end()));
  std::vector<double> xt = ticks(lo, hi, 4), yt = ticks(0, double(most), 3);
  const Range xr{lo, hi}, yr{0, std::max(double(most), yt.back())};
  std::string s = svg_open(f, "hist");
  s += axes(f, xr, xt, yr, yt, x_title, tr(lang, "count"));
  const double bw = (f.x1() - f.x0()) / bins;
  for (int b = 0; b < bins; ++b) {
    const double from = lo + (hi - lo) * b / bins, to = lo + (hi - lo) * (b + 1) / bins;
    const double top = yr.at(double(count[std::size_t(b)]), f.y0(), f.y1());
    s += fmt::format(
        "<rect class=\"bar\" data-count=\"{}\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" "
        "height=\"{:.2f}\" fill=\"{}\" data-tip=\"[{}, {}): {}\"/>",
        count[std::size_t(b)], f.x0() + b * bw, top, std::max(bw - 1, 0.5), f.y0() - top, color,
        brief(from), brief(to), count[std::size_t(b)]);
  }
  return s + "</svg>";
}

std::string scatter(const std::vector<double>& x, const std::vector<double>& y,
                    std::string_view x_title, std::string_view y_title, bool diagonal) {
  Frame f;
  f.w = 420;
  f.h = 320;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    xlo = std::min(xlo, x[i]), xhi = std::max(xhi, x[i]);
    ylo = std::min(ylo, y[i]), yhi = std::max(yhi, y[i]);
  }
  if (diagonal) {  // the same scale on both axes, so that y = x is the diagonal
    xlo = ylo = std::min(xlo, ylo);
    xhi = yhi = std::max(xhi, yhi);
  } else {
    const double m = std::max(std::abs(ylo), std::abs(yhi));
    ylo = -m, yhi = m;
  }
  std::vector<double> xt, yt;
  const Range xr = nice_range(xlo, xhi, xt), yr = nice_range(ylo, yhi, yt);
  std::string s = svg_open(f, diagonal ? "scatter predicted" : "scatter residuals");
  s += axes(f, xr, xt, yr, yt, x_title, y_title);
  if (diagonal) {
    const double a = std::max(xr.lo, yr.lo), b = std::min(xr.hi, yr.hi);
    s += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#999\" "
        "stroke-dasharray=\"4 3\"/>",
        xr.at(a, f.x0(), f.x1()), yr.at(a, f.y0(), f.y1()), xr.at(b, f.x0(), f.x1()),
        yr.at(b, f.y0(), f.y1()));
  } else {
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#999\" "
        "stroke-dasharray=\"4 3\"/>",
        f.x0(), yr.at(0, f.y0(), f.y1()), f.x1());
  }
  const std::size_t step = std::max<std::size_t>(1, x.size() / 3000);  // at most ~3000 dots
  for (std::size_t i = 0; i < x.size(); i += step) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    s += fmt::format(
        "<circle class=\"dot\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.2\" fill=\"#1f77b4\" "
        "fill-opacity=\"0.55\" data-tip=\"{} = {}, {} = {}\"/>",
        xr.at(x[i], f.x0(), f.x1()), yr.at(y[i], f.y0(), f.y1()), esc(x_title), brief(x[i]),
        esc(y_title), brief(y[i]));
  }
  return s + "</svg>";
}

}  // namespace chainrule::cli::html
