// A numeric CSV file read in passes (CsvScan) gives fit, evaluate and predict exactly what
// read_csv's table gives them, leaves to read_csv what only it reads, and notices a file that
// changes between its passes.
#include "chainrule/csv_scan.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "temp_dir.hpp"

#include <cstdio>
#include <fstream>
#include <string>

#include "chainrule/error.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/random.hpp"

namespace {

using namespace chainrule;

std::string temp(const std::string& name) {
  return chainrule::test::temp_file("csv_scan_" + name);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// 6000 rows (about 190 KB: several 64 KiB blocks): numbers written in several forms (" 5", "+5",
// exponents), gaps (NA, empty), a blank line every 1000 rows, CRLF endings on every seventh row,
// and a text label (or, with `numbers`, a number). `gaps`: whether some features are missing.
std::string make_csv(bool gaps, bool numbers = false) {
  Rng rng(11);
  std::string s = "a,b,c,label\n";
  for (int r = 0; r < 6000; ++r) {
    const double a = rng.normal() * 100, b = rng.uniform() * 1e-3, c = std::floor(rng.normal() * 8);
    char row[160];
    std::snprintf(row, sizeof row, "%.6g,%.4e,%s%g,%s", a, b,
                  r % 5 == 0   ? " "
                  : r % 5 == 1 ? "+"
                               : "",
                  c,
                  numbers               ? std::to_string(r % 4).c_str()
                  : a / 100 + c / 8 > 0 ? "up"
                  : r % 3 == 0          ? "flat"
                                        : "down");
    std::string line = row;
    if (gaps && r % 97 == 5) line = "NA" + line.substr(line.find(','));
    if (gaps && r % 89 == 7)
      line = line.substr(0, line.find(',') + 1) + line.substr(line.find(',', line.find(',') + 1));
    s += line + (r % 7 == 0 ? "\r\n" : "\n");
    if (r % 1000 == 999) s += "\n";
  }
  return s;
}

CsvOptions small_blocks(int threads) {
  CsvOptions o;
  o.threads = threads;
  o.parallel_bytes = 8 << 10;
  o.scan_block_bytes = 64 << 10;
  return o;
}

FitOptions options(const std::string& target, double validation) {
  FitOptions o;
  o.data.target = target;
  o.data.impute = Impute::mean;
  o.layers = {5};
  o.train.epochs = 2;
  o.validation = validation;
  o.seed = 3;
  return o;
}

TEST(CsvScan, FitEvaluateAndPredictGiveTheTablesResults) {
  const std::string path = temp("same.csv");
  for (const int threads : {1, 2})
    for (const std::string target : {"label", "c"})
      for (const double validation : {0.0, 0.2}) {
        write(path, make_csv(true, target == "c"));  // features are numbers
        const Table table = read_csv(path);
        SCOPED_TRACE(target + " threads " + std::to_string(threads) + " validation " +
                     std::to_string(validation));
        const std::unique_ptr<CsvScan> scan = CsvScan::open(path, target, small_blocks(threads));
        ASSERT_TRUE(scan);
        EXPECT_EQ(scan->rows(), 6000u);
        EXPECT_EQ(scan->feature_names().size(), 3u);
        const Dataset data(*scan);
        FitOptions o = options(target, validation);
        o.threads = threads;
        const FitResult from_scan = fit(data, o), from_table = fit(table, o);
        EXPECT_EQ(from_scan.model.params, from_table.model.params);
        ASSERT_EQ(from_scan.model.prep.features.size(), from_table.model.prep.features.size());
        for (std::size_t k = 0; k < from_scan.model.prep.features.size(); ++k) {
          EXPECT_EQ(from_scan.model.prep.features[k].center,
                    from_table.model.prep.features[k].center);
          EXPECT_EQ(from_scan.model.prep.features[k].scale,
                    from_table.model.prep.features[k].scale);
          EXPECT_EQ(from_scan.model.prep.features[k].fill, from_table.model.prep.features[k].fill);
        }
        EXPECT_EQ(from_scan.model.prep.classes, from_table.model.prep.classes);
        if (validation > 0)
          EXPECT_EQ(from_scan.model.metrics->validation->loss,
                    from_table.model.metrics->validation->loss);
        EXPECT_EQ(from_scan.model.metrics->train.loss, from_table.model.metrics->train.loss);
        const Predictions p = predict(from_table.model, data), q = predict(from_table.model, table);
        EXPECT_EQ(p.label, q.label);
        EXPECT_EQ(p.value, q.value);
        EXPECT_EQ(evaluate(from_table.model, data, threads).loss,
                  evaluate(from_table.model, table, threads).loss);
      }
  std::remove(path.c_str());
}

// A target given by its index in the file (as --target 3) names the same column through a scan,
// which holds that column alone, as through the table.
TEST(CsvScan, ATargetByIndexIsTheFilesColumn) {
  const std::string path = temp("index.csv");
  write(path, make_csv(true));
  const std::unique_ptr<CsvScan> scan = CsvScan::open(path, "3", small_blocks(2));
  ASSERT_TRUE(scan);
  EXPECT_TRUE(scan->is_target("3") && scan->is_target("label") && !scan->is_target("0"));
  const FitResult from_scan = fit(Dataset(*scan), options("3", 0.1)),
                  from_table = fit(read_csv(path), options("3", 0.1));
  EXPECT_EQ(from_scan.model.prep.target, "label");
  EXPECT_EQ(from_scan.model.params, from_table.model.params);
  std::remove(path.c_str());
}

TEST(CsvScan, ValuesAndPlacesAreTheTables) {
  for (const bool blank_lines : {true, false}) {
    const std::string path = temp("where.csv");
    std::string text = make_csv(true);
    if (!blank_lines)
      for (std::size_t at; (at = text.find("\n\n")) != std::string::npos;)
        text.erase(at, 1);
    write(path, text);
    const Table table = read_csv(path);
    const std::unique_ptr<CsvScan> scan = CsvScan::open(path, "", small_blocks(2));
    ASSERT_TRUE(scan);
    EXPECT_EQ(scan->targets().columns[0].text, table.columns[3].text);
    EXPECT_EQ(scan->targets().lines.empty(), !blank_lines);  // a first line is enough
    std::size_t seen = 0, blocks = 0;
    scan->scan([&](const CsvScan::Block& b) {
      EXPECT_EQ(b.first_row, seen);
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t i = 0; i < b.rows; ++i) {
          const double v = b.values(j)[i], w = table.columns[j].numbers[b.first_row + i];
          EXPECT_TRUE(v == w || (std::isnan(v) && std::isnan(w))) << b.first_row + i;
        }
      seen += b.rows;
      ++blocks;
    });
    EXPECT_EQ(seen, 6000u);
    EXPECT_GE(blocks, 6u);  // several blocks, each in two spans
    for (const std::size_t row : {0, 998, 999, 1000, 4321, 5999})
      EXPECT_EQ(scan->where(row, 1), table.where(row, table.columns[1]));
    EXPECT_EQ(scan->value(4321, 2), table.columns[2].numbers[4321]);
    std::remove(path.c_str());
  }
}

// The errors fit reports on a scan are the table's, word for word.
TEST(CsvScan, ErrorsAreTheTables) {
  const std::string path = temp("errors.csv");
  write(path, make_csv(true));
  const auto message = [&](const Dataset& d, FitOptions o) {
    try {
      fit(d, o);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::unique_ptr<CsvScan> scan = CsvScan::open(path, "label", small_blocks(2));
  ASSERT_TRUE(scan);
  FitOptions o = options("label", 0.1);
  o.data.impute = Impute::none;
  const std::string missing = message(Dataset(*scan), o);
  EXPECT_NE(missing.find(":7:1: missing value in column 'a'"), std::string::npos) << missing;
  EXPECT_EQ(missing, message(read_csv(path), o));
  // A number beyond float32 once scaled, in a later block.
  std::string text = make_csv(false);
  const std::size_t row = text.find('\n', 150000) + 1;
  text.replace(row, text.find(',', row) - row, "5e39");
  write(path, text);
  const std::unique_ptr<CsvScan> big = CsvScan::open(path, "label", small_blocks(2));
  ASSERT_TRUE(big);
  o.data.scale = Scale::none;
  const std::string range = message(Dataset(*big), o);
  EXPECT_NE(range.find("is out of range of float32"), std::string::npos) << range;
  EXPECT_EQ(range, message(read_csv(path), o));
  std::remove(path.c_str());
}

TEST(CsvScan, LeavesToReadCsvWhatOnlyItReads) {
  const std::string path = temp("other.csv");
  const auto opens = [&](const std::string& text, const CsvOptions& o = {},
                         const std::string& target = "") {
    write(path, text);
    return CsvScan::open(path, target, o) != nullptr;
  };
  EXPECT_TRUE(opens("a,b,y\n1,2,up\n3,NA,down\n"));
  EXPECT_FALSE(opens("a,b,y\n1,red,up\n3,4,down\n"));     // a text feature
  EXPECT_FALSE(opens("a,b,y\n1,\"2\",up\n3,4,down\n"));   // a quoted field
  EXPECT_FALSE(opens("a,b,y\n1,2,up\n3,4\n"));            // a short row
  EXPECT_FALSE(opens("a,b,y\n1,1e999,up\n"));             // out of range
  EXPECT_FALSE(opens("a,b,y\n1,2,3\n4,5,six\n6,7,8\n"));  // a numeric target's stray text
  EXPECT_FALSE(opens("a,b,y\n"));                         // no data rows
  EXPECT_FALSE(opens("a,b,y\n1,2,3\n", {}, "z"));         // no such target
  // A NUL byte: read_csv's error at once when the file is small enough to read for the header.
  write(path, std::string("a,b,y\n1,2\0,3\n", 13));
  EXPECT_THROW(CsvScan::open(path), DataError);
  EXPECT_FALSE(opens("a;b;y\n1,5;2;3\n", {.delimiter = ';', .decimal_comma = true}));
  EXPECT_FALSE(opens("a;b;y\n1;2;x\n3;4;y\n", {.delimiter = ';'}));  // labels: decimal commas?
  EXPECT_TRUE(opens("a,b,y\n1,2,3\n", {}, "0"));                     // a target by index
  EXPECT_TRUE(opens("# preamble\nx\n1,2,3\n4,5,6\n", {.header = false, .skip_rows = 2}));
  {
    gzFile gz = gzopen(path.c_str(), "wb");
    gzputs(gz, "a,b,y\n1,2,3\n");
    gzclose(gz);
    EXPECT_FALSE(CsvScan::open(path));  // compressed: read_csv decompresses it as it reads
  }
  EXPECT_FALSE(CsvScan::open("/dev/null"));
  const std::string fifo = temp("fifo");  // not opened: that would wait for a writer
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(CsvScan::open(fifo));
  std::remove(fifo.c_str());
  write(path, "a,b,y\n1,2,3\n");
  EXPECT_THROW(CsvScan::open(path, "", {.max_bytes = 5}), LimitError);
  write(path, "");
  EXPECT_THROW(CsvScan::open(path), DataError);  // as read_csv: no header
  std::remove(path.c_str());
}

TEST(CsvScan, AFileThatChangesBetweenPassesIsAnError) {
  const std::string path = temp("changing.csv");
  const std::string text = make_csv(false);
  for (const bool grow : {true, false}) {
    write(path, text);
    const std::unique_ptr<CsvScan> scan = CsvScan::open(path, "", small_blocks(1));
    ASSERT_TRUE(scan);
    if (grow)
      std::ofstream(path, std::ios::app) << "1,2,3,up\n";
    else
      ASSERT_EQ(::truncate(path.c_str(), off_t(text.size() / 2)), 0);
    try {
      scan->scan([](const CsvScan::Block&) {});
      ADD_FAILURE() << "no error";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("changed while it was read"), std::string::npos)
          << e.what();
    }
  }
  std::remove(path.c_str());
}

TEST(CsvScan, RowsOutOfOrderAreRefused) {
  const std::string path = temp("order.csv");
  write(path, "a,b,y\n1,2,3\n4,5,6\n7,8,9\n");
  const std::unique_ptr<CsvScan> scan = CsvScan::open(path);
  ASSERT_TRUE(scan);
  const Dataset data(*scan);
  const Preprocessor p = Preprocessor::fit(data, std::vector<std::size_t>{0, 1, 2}, {});
  EXPECT_EQ(p.features[0].center, 4);
  const std::vector<std::size_t> backwards = {2, 0};
  EXPECT_THROW(p.transform<float>(data, backwards), ConfigError);
  EXPECT_THROW(Preprocessor::fit(data, backwards, {}), ConfigError);
  std::remove(path.c_str());
}

}  // namespace
