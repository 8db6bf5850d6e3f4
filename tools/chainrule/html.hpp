// Self-contained HTML pages with inline SVG charts for the training report and the explain
// diagram: no network access, no script or font from elsewhere; a page opens from disk or an
// e-mail attachment and prints. Values a test or a reader may want exactly are kept in data-*
// attributes at full precision beside the rounded text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lang.hpp"

namespace chainrule::cli::html {

/// Text and attribute values escaped for HTML.
std::string esc(std::string_view s);
/// A number at full precision (%.17g; "NaN" and "Infinity" as JavaScript spells them).
std::string exact(double v);
/// A number for reading: 4 significant digits, or scientific notation for tiny and huge ones.
std::string brief(double v);
/// JSON that can stand inside <script type="application/json">: "<", ">" and "&" escaped.
std::string script_json(const nlohmann::json& j);

/// A whole page: the head (charset, title, the shared style, a font stack that has Chinese on
/// Windows, macOS and Linux), `body`, and the tooltip script: any element with data-tip shows
/// it on hover. `refresh_seconds` > 0 makes the page reload itself (a report of a run in
/// progress).
std::string page(Lang lang, std::string_view title, std::string_view body, int refresh_seconds = 0,
                 std::string_view script = {});

struct Series {
  std::string key;    ///< data-series of its points
  std::string label;  ///< legend text
  std::string color;
  std::vector<std::pair<double, double>> points;  ///< (x, y); NaN y values are gaps
  bool dashed = false;
};

struct Marker {
  double x = 0;
  std::string label;
  std::string color = "#555";
};

/// A line chart with axes, ticks, axis titles, a legend and one hoverable circle per point
/// (class "pt", data-series, data-x, data-y); markers are dashed vertical lines.
std::string line_chart(const std::vector<Series>& series, std::string_view x_title,
                       std::string_view y_title, const std::vector<Marker>& markers = {});

/// A histogram of `values` in `bins` bins (class "bar", data-count), with axis ticks.
std::string histogram(const std::vector<double>& values, int bins, std::string_view x_title,
                      std::string_view color, Lang lang);

/// Points (x, y) with the line y = x when `diagonal` (predicted against true), or y = 0
/// otherwise (residuals).
std::string scatter(const std::vector<double>& x, const std::vector<double>& y,
                    std::string_view x_title, std::string_view y_title, bool diagonal);

/// "Nice" tick values covering [lo, hi]: about `count` of them at 1, 2 or 5 times a power of 10.
std::vector<double> ticks(double lo, double hi, int count = 5);

}  // namespace chainrule::cli::html
