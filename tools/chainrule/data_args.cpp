#include "data_args.hpp"

#include <fmt/core.h>

#include "chainrule/error.hpp"

namespace chainrule::cli {

void add_data_options(CLI::App* app, DataArgs& a) {
  app->add_option("--labels", a.labels, "IDX labels file that goes with IDX images (MNIST family)");
  app->add_option("--delimiter", a.delimiter, "CSV field delimiter (one character; \\t for tab)")
      ->capture_default_str();
  app->add_flag("--no-header", a.no_header, "The CSV has no header line: columns are c0, c1, ...");
  app->add_option("--skip-rows", a.skip_rows, "Lines to skip before the header (a preamble)")
      ->capture_default_str();
}

Table load_table(const DataArgs& a) {
  const auto ends_with = [&](std::string_view suffix) {
    return a.path.size() >= suffix.size() &&
           a.path.compare(a.path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (!a.labels.empty() || ends_with("-ubyte") || ends_with("-ubyte.gz"))
    return read_idx(a.path, a.labels);
  std::string d = a.delimiter == "\\t" ? "\t" : a.delimiter;
  if (d.size() != 1)
    throw ConfigError("--delimiter must be one character, got '" + a.delimiter + "'");
  return read_csv(a.path, {.delimiter = d[0], .header = !a.no_header, .skip_rows = a.skip_rows});
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

namespace {
CLI::Validator number_check(std::string description, std::function<bool(double)> ok) {
  return CLI::Validator(
      [description, ok](std::string& s) -> std::string {
        double v = 0;
        try {
          std::size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) return "expected a number " + description + ", got '" + s + "'";
        } catch (const std::exception&) {
          return "expected a number " + description + ", got '" + s + "'";
        }
        return ok(v) ? std::string() : "must be " + description + ", got " + s;
      },
      description);
}
}  // namespace

CLI::Validator positive() {
  return number_check("> 0", [](double v) { return v > 0; });
}
CLI::Validator at_least(double min) {
  return number_check(fmt::format(">= {}", min), [min](double v) { return v >= min; });
}
CLI::Validator in_unit_interval() {
  return number_check("in [0, 1)", [](double v) { return v >= 0 && v < 1; });
}

std::string csv_field(const std::string& s, char delimiter) {
  if (s.find_first_of(std::string{delimiter, '"', '\n', '\r'}) == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

}  // namespace chainrule::cli
