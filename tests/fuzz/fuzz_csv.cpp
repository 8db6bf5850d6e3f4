// libFuzzer target: the CSV reader, then the preprocessing fitted on whatever it accepted.
// The first byte picks the options (delimiter, header, skipped lines); the rest is the file.
// A quarter of the inputs (mode bits 0x60) are also read in parallel spans (3 threads, spans of
// any size): the table, or the error message, must be the one-thread read's, or the target traps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "chainrule/error.hpp"
#include "chainrule/preprocess.hpp"
#include "chainrule/table.hpp"

namespace {

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
