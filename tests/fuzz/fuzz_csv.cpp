// libFuzzer target: the CSV reader, then the preprocessing fitted on whatever it accepted.
// The first byte picks the options (delimiter, header, skipped lines); the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chainrule/error.hpp"
#include "chainrule/preprocess.hpp"
#include "chainrule/table.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  chainrule::CsvOptions options;
  options.delimiter = (mode & 1) ? ';' : ',';
  options.header = (mode & 2) == 0;
  options.skip_rows = (mode >> 2) & 3;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
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
