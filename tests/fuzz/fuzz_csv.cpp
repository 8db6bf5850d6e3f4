// libFuzzer target: the CSV reader, then the preprocessing fitted on whatever it accepted.
// The first byte picks the options (delimiter, header, skipped lines); the rest is the file.
// A quarter of the inputs (mode bits 0x60) are also read in parallel spans (3 threads, spans of
// any size): the table, or the error message, must be the one-thread read's, or the target traps.
// Another quarter (mode bits 0x40) are written to a file and read in passes (CsvScan): when it
// accepts the file, its numbers, preprocessing and matrices must be the table's, bit for bit;
// when it refuses the header, with read_csv's message.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "chainrule/csv_scan.hpp"
#include "chainrule/error.hpp"
#include "chainrule/preprocess.hpp"
#include "chainrule/table.hpp"

namespace {

// Preprocessing fitted on every row with a target, its matrix, or the error's message.
std::string fitted(const chainrule::Dataset& d, const chainrule::PreprocessOptions& p) {
  try {
    const chainrule::Preprocessor prep =
        chainrule::Preprocessor::fit(d, chainrule::all_rows(d.rows()), p);
    const auto rows = prep.rows_with_target(d.table());
    std::string s;
    for (const chainrule::Feature& f : prep.features)
      s.append(reinterpret_cast<const char*>(&f.center), 8)
          .append(reinterpret_cast<const char*>(&f.scale), 8)
          .append(reinterpret_cast<const char*>(&f.fill), 8);
    const chainrule::Batch<float> X = prep.transform<float>(d, rows);
    s.append(reinterpret_cast<const char*>(X.data()), std::size_t(X.size()) * sizeof(float));
    return s;
  } catch (const chainrule::Error& e) {
    return std::string("error: ") + e.what();
  }
}

// CsvScan against read_csv on the same text, written to a file.
void compare_scan(std::string_view text, chainrule::CsvOptions options, bool impute) {
  // One file for the whole run, removed when the program ends.
  static const struct Scratch {
    std::string path = "/tmp/fuzz_csv_scan_" + std::to_string(::getpid()) + ".csv";
    ~Scratch() { std::remove(path.c_str()); }
  } scratch;
  const std::string& path = scratch.path;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), long(text.size()));
  options.threads = 3;
  options.parallel_bytes = 1;
  std::unique_ptr<chainrule::CsvScan> scan;
  std::string refused;
  try {
    scan = chainrule::CsvScan::open(path, "", options);
  } catch (const chainrule::Error& e) {
    refused = e.what();
  }
  chainrule::Table t;
  std::string read_error;
  try {
    t = chainrule::read_csv(path, options);
  } catch (const chainrule::Error& e) {
    read_error = e.what();
  }
  if (!refused.empty() && refused != read_error) {
    std::fprintf(stderr, "scan: %s\nread_csv: %s\n", refused.c_str(), read_error.c_str());
    __builtin_trap();
  }
  if (!scan) return;
  if (!read_error.empty()) __builtin_trap();  // a file the scan accepts, read_csv reads
  const chainrule::Column& y = t.columns.back();
  const chainrule::Column& z = scan->targets().columns[0];
  if (scan->rows() != t.rows() || z.name != y.name || z.numeric != y.numeric || z.text != y.text ||
      z.numbers.size() != y.numbers.size() ||
      (!y.numbers.empty() &&
       std::memcmp(z.numbers.data(), y.numbers.data(), y.numbers.size() * 8) != 0))
    __builtin_trap();
  for (std::size_t r = 0; r < t.rows(); ++r)
    if (scan->targets().line_of(r) != t.line_of(r)) __builtin_trap();
  std::size_t seen = 0;
  scan->scan([&](const chainrule::CsvScan::Block& b) {
    for (std::size_t j = 0; j + 1 < t.cols(); ++j) {
      const chainrule::Column& c = t.columns[j];
      if (!c.numeric ||
          (b.rows > 0 &&
           std::memcmp(b.values(j).data(), c.numbers.data() + b.first_row, b.rows * 8) != 0))
        __builtin_trap();
    }
    seen += b.rows;
  });
  if (seen != t.rows()) __builtin_trap();
  chainrule::PreprocessOptions p;
  p.impute = impute ? chainrule::Impute::mean : chainrule::Impute::none;
  if (fitted(chainrule::Dataset(*scan), p) != fitted(t, p)) __builtin_trap();
}

// The outcome of a read: the error message, or the table written out exactly (bits of numbers).
std::string outcome(std::string_view text, const chainrule::CsvOptions& options) {
  try {
    const chainrule::Table t = chainrule::parse_csv(text, "fuzz.csv", options);
    std::string s;
    for (const std::size_t line : t.lines)
      s += std::to_string(line) + ",";
    for (const chainrule::Column& c : t.columns) {
      s += "|" + c.name + (c.numeric ? "#" : "$");
      for (const double v : c.numbers)
        s.append(reinterpret_cast<const char*>(&v), sizeof v);
      for (const std::string& v : c.text)
        s += v + '\0';
    }
    return s;
  } catch (const chainrule::Error& e) {
    return std::string("error: ") + e.what();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  chainrule::CsvOptions options;
  options.delimiter = (mode & 1) ? ';' : ',';
  options.header = (mode & 2) == 0;
  options.skip_rows = (mode >> 2) & 3;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  options.threads = 1;
  if ((mode & 0x60) == 0x40) compare_scan(text, options, (mode & 16) != 0);
  if ((mode & 0x60) == 0x60) {  // a quarter of the inputs: threads cost a good part of a run
    chainrule::CsvOptions spans = options;
    spans.threads = 3;
    spans.parallel_bytes = 1;
    if (outcome(text, options) != outcome(text, spans)) __builtin_trap();
  }
  try {
    const chainrule::Table t = chainrule::parse_csv(text, "fuzz.csv", options);
    chainrule::PreprocessOptions p;
    p.impute = (mode & 16) ? chainrule::Impute::mean : chainrule::Impute::none;
    const auto rows = chainrule::all_rows(t.rows());
    const chainrule::Preprocessor prep = chainrule::Preprocessor::fit(t, rows, p);
    (void)prep.transform<float>(t, rows);
    (void)prep.targets<double>(t, rows);
  } catch (const chainrule::Error&) {
  }
  return 0;
}
