#include "data_args.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cmath>

#include "chainrule/error.hpp"
#include "commands.hpp"

namespace chainrule::cli {

void add_data_options(CLI::App* app, DataArgs& a) {
  app->add_option("--labels", a.labels, "IDX labels file that goes with IDX images (MNIST family)");
  app->add_option("--delimiter", a.delimiter, "CSV field delimiter (one character; \\t for tab)")
      ->capture_default_str();
  app->add_flag("--no-header", a.no_header, "The CSV has no header line: columns are c0, c1, ...");
  app->add_option("--skip-rows", a.skip_rows, "Lines to skip before the header (a preamble)")
      ->check(whole_number("a whole number of lines >= 0"))
      ->capture_default_str();
  app->add_flag("--decimal-comma", a.decimal_comma,
                "Numbers use a decimal comma (1,5), as in European CSV files; needs another "
                "--delimiter, such as ';'");
  app->add_option("--max-input-size", a.max_input,
                  "Refuse a data file that holds more than this once decompressed, such as 512M "
                  "or 8G (default: half the memory available)");
}

std::string hint_for(const std::string& option) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"max_input_bytes", "raise it with --max-input-size"},
      {"max_categories", "raise it with --max-categories, or --drop the column"},
      {"max_classes", "raise it with --max-classes, or use --task regress"},
      {"max_memory", "use smaller --layers or --batch, or set --max-memory"},
      {"max_columns", "expected a table of at most 1000000 columns"},
      {"decimal_comma", "use --decimal-comma to read them as numbers"},
      {"task", "use --task regress"},
      {"impute", "or use --impute mean to fill numeric gaps"},
      {"impute_text", "or use --impute mean to give missing text its own category"},
      {"target", "choose it with --target"},
      {"dtype", "or use --dtype float64 or --scale standard"},
      {"lr", "--lr"},
      {"nesterov", "--nesterov is for --optimizer sgd"},
      {"momentum", "--momentum is for --optimizer sgd and rmsprop"},
  };
  for (const auto& [name, hint] : kFlags)
    if (option == name) return hint;
  return {};
}

void print_notes(const std::vector<Note>& notes) {
  for (const Note& n : notes) {
    const std::string hint = hint_for(n.option);
    // A note with advice is probably a mistake (a warning); one without is information.
    fmt::print(stderr, "chainrule: {}: {}{}\n", hint.empty() ? "note" : "warning", n.text,
               hint.empty() ? "" : " (" + hint + ")");
  }
}

namespace {

bool is_idx(const DataArgs& a) {
  const auto ends_with = [&](std::string_view suffix) {
    return a.path.size() >= suffix.size() &&
           a.path.compare(a.path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return !a.labels.empty() || ends_with("-ubyte") || ends_with("-ubyte.gz");
}

std::uint64_t max_bytes(const DataArgs& a) {
  return a.max_input.empty() ? 0 : parse_bytes(a.max_input);
}

}  // namespace

namespace {

CsvOptions csv_options(const DataArgs& a) {
  std::string d = a.delimiter == "\\t" ? "\t" : a.delimiter;
  if (d.size() != 1)
    throw ConfigError("--delimiter must be one character, got '" + a.delimiter + "'");
  if (a.decimal_comma && d[0] == ',')
    throw ConfigError("--decimal-comma needs another --delimiter than ',' (such as ';')");
  return {.delimiter = d[0],
          .header = !a.no_header,
          .skip_rows = a.skip_rows,
          .threads = threads(),
          .decimal_comma = a.decimal_comma,
          .max_bytes = max_bytes(a)};
}

Table load_csv(const DataArgs& a, const Group* g) {
  const CsvOptions o = csv_options(a);
  Table t = g ? read_csv_shard(a.path, o, *g) : read_csv(a.path, o);
  if (!g || g->rank() == 0) print_notes(t.notes);
  return t;
}

}  // namespace

Table load_table(const DataArgs& a) {
  if (is_idx(a)) return read_idx(a.path, a.labels, max_bytes(a));
  return load_csv(a, nullptr);
}

LoadedData::LoadedData(const DataArgs& a, const Group* g, const Stream& stream) {
  if (!is_idx(a) && !g && stream.mode != "off") {
    if (stream.mode == "on" || CsvScan::large(a.path))
      scan_ = CsvScan::open(a.path, stream.target, csv_options(a));
    if (scan_) {
      dataset_ = std::make_unique<Dataset>(*scan_);
      return;
    }
  }
  if (!is_idx(a)) {
    table_ = load_csv(a, g);
    dataset_ = std::make_unique<Dataset>(table_);
    return;
  }
  const int part = g ? g->rank() : 0, parts = g ? g->size() : 1;
  together(g, [&] { images_ = read_idx_pixels(a.path, max_bytes(a), part, parts); });
  Targets y;
  y.name = "label";
  if (!a.labels.empty()) {
    std::vector<int> labels;
    together(g, [&] {
      labels = read_idx_labels(a.labels, max_bytes(a), part, parts);
      if (labels.size() != std::size_t(images_.count))
        throw DataError(a.labels + ": holds " + std::to_string(labels.size()) + " labels for " +
                        std::to_string(images_.count) + " images in " + a.path +
                        (g ? " (in this process's share)" : ""));
    });
    y.numbers.assign(labels.begin(), labels.end());
  }
  std::vector<std::string> names;
  for (Index f = 0; f < images_.features; ++f)
    names.push_back("px" + std::to_string(f));
  dataset_ = std::make_unique<Dataset>(images_.view(), std::move(y), std::move(names), a.path);
}

std::vector<std::string> split_list(const std::string& s, const std::string& option) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::string cur;
  int depth = 0;  // commas inside brackets belong to the item: layers.0.weight[0,1]
  for (std::size_t i = 0; i <= s.size(); ++i) {
    const char c = i < s.size() ? s[i] : ',';
    if (c == ',' && depth == 0) {
      if (cur.empty())
        throw ConfigError(option + ": an empty item in the list '" + s +
                          "': expected items separated by single commas");
      out.push_back(cur);
      cur.clear();
      continue;
    }
    depth += c == '[' ? 1 : c == ']' && depth > 0 ? -1 : 0;
    cur += c;
  }
  return out;
}

namespace {
CLI::Validator number_check(std::string description, std::function<bool(double)> ok) {
  return CLI::Validator(
      [description, ok](std::string& s) -> std::string {
        double v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (end != s.data() + s.size() ||
            (ec != std::errc() && ec != std::errc::result_out_of_range))
          return "expected a number " + description + ", got '" + s + "'";
        // Out of range: too large, or so small it underflows (1e-400); subnormal values (1e-320)
        // become 0 in float32 training.
        if (ec == std::errc::result_out_of_range || (v != 0 && std::abs(v) < 1e-30))
          return "'" + s + "' is " +
                 (ec == std::errc::result_out_of_range && std::abs(v) > 1
                      ? "too large"
                      : "too small (it would be 0 in float32)") +
                 ": expected a number " + description + " between 1e-30 and 1e30";
        if (std::abs(v) > 1e30) return "'" + s + "' is too large: expected a number " + description;
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
CLI::Validator whole_number(const std::string& description) {
  return CLI::Validator(
      [description](std::string& s) -> std::string {
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || end != s.data() + s.size() || ec != std::errc())
          return "expected " + description + ", got '" + s + "'";
        return {};
      },
      description);
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

void check_output(const std::string& path, const std::string& flag, const std::string& role,
                  const std::vector<std::string>& inputs, bool stream_ok) {
  check_writable(path, role, stream_ok);
  for (const std::string& input : inputs)
    if (!input.empty() && same_file(path, input))
      throw ConfigError(flag + " " + path + " is the input file " + input +
                        ": refusing to overwrite it with " + role);
}

}  // namespace chainrule::cli
