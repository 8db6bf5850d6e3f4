#include "chainrule/table.hpp"

#include "../src/number.hpp"
#include "../src/prefault.hpp"

#include <gtest/gtest.h>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "vm_flags.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <random>

#include <cstring>

#include <unistd.h>
#include <zlib.h>
#include <charconv>

#include <cmath>
#include <fstream>

#include "chainrule/dataset.hpp"
#include "chainrule/error.hpp"

namespace chainrule {
namespace {

std::string temp_path(const std::string& name) {
  return chainrule::test::temp_file("table_test_" + name);
}

void write_gzip(const std::string& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, content.data(), unsigned(content.size()));
  gzclose(f);
}

// The reader's own number parser (a fast path for up to 19 digits and exponents within ±22)
// gives std::from_chars's double, bit for bit, for every form a CSV writer produces.
TEST(Csv, NumbersAreParsedExactlyAsFromChars) {
  std::mt19937_64 gen(9);
  std::vector<std::string> texts;
  const char* formats[] = {"%.17g", "%.6g", "%.3e", "%.12f", "%.0f", "%g", "%.20g", "%.15E"};
  for (int i = 0; i < 40000; ++i) {
    const double magnitude = std::ldexp(double(gen() >> 11) * 0x1p-53, int(gen() % 140) - 70);
    const double v = (gen() & 1 ? -1 : 1) * magnitude;
    char buf[64];
    std::snprintf(buf, sizeof buf, formats[i % 8], v);
    texts.emplace_back(buf);
  }
  for (const char* t :
       {"0", "-0", "0.5", ".5", "5.", "1e22", "1e23", "1e-22", "1e-23", "9007199254740992",
        "9007199254740993", "18446744073709551615", "1234567890123456789", "12345678901234567890",
        "1.e5", "00000000000000000001", "4.9e-324", "1.7976931348623157e308",
        "2.2250738585072014e-308"})
    texts.emplace_back(t);
  std::string csv = "v\n";
  for (const std::string& t : texts)
    csv += t + "\n";
  const Table table = parse_csv(csv, "numbers.csv");
  ASSERT_TRUE(table.columns[0].numeric);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    double expected = 0;
    std::from_chars(texts[i].data(), texts[i].data() + texts[i].size(), expected);
    ASSERT_EQ(std::memcmp(&table.columns[0].numbers[i], &expected, sizeof expected), 0)
        << texts[i] << " read as " << table.columns[0].numbers[i];
  }
}

// to_double (the fast path fast_rows reads every field with) ends where from_chars ends and gives
// its double for fields whose digits stop before any byte (a delimiter, a letter, a byte of 0xFA
// or more, NUL), with 1 to 25 digits on either side of the point, read alone and with the bytes
// that follow them in the same buffer.
TEST(Csv, FastNumbersEndWhereFromCharsEnds) {
  std::mt19937_64 gen(17);
  const char tails[] = {',', '\n', '\r', 'e',  'E',        'x',        ' ',        '.',
                        '-', '/',  ':',  '\0', char(0xFA), char(0xFF), char(0x80), char(0xB9)};
  for (int i = 0; i < 200000; ++i) {
    std::string t = gen() % 4 == 0 ? "-" : "";
    const int whole = int(gen() % 26), frac = gen() % 3 == 0 ? -1 : int(gen() % 26);
    for (int d = 0; d < whole; ++d)
      t += char('0' + gen() % 10);
    if (frac >= 0) t += '.';
    for (int d = 0; d < frac; ++d)
      t += char('0' + gen() % 10);
    if (gen() % 5 == 0) t += "e" + std::to_string(int(gen() % 60) - 30);
    const std::size_t end = t.size();
    for (int k = int(gen() % 12); k > 0; --k)  // what follows the field, in the same buffer
      t += tails[gen() % sizeof tails];
    for (const std::size_t stop : {end, t.size()}) {  // the field alone, and the field and more
      double got = -1, want = -1;
      const auto g = detail::to_double(t.data(), t.data() + stop, got);
      const auto w = std::from_chars(t.data(), t.data() + stop, want);
      ASSERT_EQ(g.ptr, w.ptr) << t;
      ASSERT_EQ(g.ec, w.ec) << t;
      if (w.ec == std::errc()) ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0) << t;
    }
  }
}

TEST(Csv, TypesColumnsAndKeepsLines) {
  const Table t = parse_csv("name,weight,height\nyouge,-2,5\nshare,-5,-2.5\n", "p.csv");
  ASSERT_EQ(t.cols(), 3u);
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_FALSE(t.columns[0].numeric);
  EXPECT_EQ(t.columns[0].text[1], "share");
  EXPECT_TRUE(t.columns[2].numeric);
  EXPECT_EQ(t.columns[2].numbers[1], -2.5);
  EXPECT_EQ(t.lines, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(t.find("height"), 2);
  EXPECT_EQ(t.find("1"), 1);  // an index
  EXPECT_EQ(t.find("nope"), -1);
}

TEST(Csv, Rfc4180QuotingCrLfAndBom) {
  const std::string text =
      "\xEF\xBB\xBFid,comment,x\r\n"
      "1,\"a, b\",3\r\n"
      "2,\"say \"\"hi\"\"\",4\r\n"
      "3,\"two\nlines\",5\r\n"
      "4,,6";  // no final line break; an empty text field
  const Table t = parse_csv(text, "q.csv");
  ASSERT_EQ(t.rows(), 4u);
  EXPECT_EQ(t.columns[0].name, "id");  // the BOM is not part of the name
  EXPECT_EQ(t.columns[1].text[0], "a, b");
  EXPECT_EQ(t.columns[1].text[1], "say \"hi\"");
  EXPECT_EQ(t.columns[1].text[2], "two\nlines");
  EXPECT_EQ(t.columns[1].text[3], "");
  EXPECT_EQ(t.columns[2].numbers[3], 6);
  EXPECT_EQ(t.lines, (std::vector<std::size_t>{2, 3, 4, 6}));  // row 3 spans lines 4 and 5
}

TEST(Csv, DelimiterNoHeaderAndSkipRows) {
  const Table t = parse_csv("150,4,setosa\n5.1;3.5;0\n4.9;3.0;1\n", "iris.csv",
                            {.delimiter = ';', .header = false, .skip_rows = 1});
  ASSERT_EQ(t.cols(), 3u);
  EXPECT_EQ(t.columns[0].name, "c0");
  EXPECT_EQ(t.columns[2].name, "c2");
  EXPECT_EQ(t.columns[1].numbers[1], 3.0);
  EXPECT_EQ(t.lines[0], 2u);
}

TEST(Csv, MissingValuesAreNaN) {
  const Table t = parse_csv("a,b\n1,\n NA ,2\nNaN,3\nnull,4\n", "m.csv");
  EXPECT_TRUE(std::isnan(t.columns[1].numbers[0]));
  EXPECT_TRUE(std::isnan(t.columns[0].numbers[1]));
  EXPECT_TRUE(std::isnan(t.columns[0].numbers[2]));
  EXPECT_TRUE(std::isnan(t.columns[0].numbers[3]));
  EXPECT_EQ(t.columns[1].numbers[3], 4);
}

TEST(Csv, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(
      error_of([] { parse_csv("a,b\n1,\"open\n2,3\n", "u.csv"); }),
      "u.csv:2:3: unterminated quoted field: expected a closing '\"' before the end of the file");
  EXPECT_EQ(error_of([] { parse_csv("a,b,c\n1,2,3\n4,5\n", "r.csv"); }),
            "r.csv:3:3: expected 3 fields (as in the header), found 2");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,2\n3,x\n5,6\n", "n.csv"); }),
            "n.csv:3:2: expected a number in column 'b' (a numeric column), found 'x'");
  EXPECT_EQ(
      error_of([] { parse_csv("a,b\n1,2\n3,1e999\n", "o.csv"); }),
      "o.csv:3:2: the number '1e999' in column 'b' is out of range: expected a finite number");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,inf\n2,3\n", "i.csv"); }),
            "i.csv:2:2: the number 'inf' in column 'b' is out of range: expected a finite number");
  EXPECT_EQ(error_of([] { parse_csv("", "e.csv"); }),
            "e.csv:1: the file is empty: expected a header line");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n", "h.csv"); }),
            "h.csv:1: no data rows after the header");
  EXPECT_EQ(error_of([] { parse_csv("a,b,a\n1,2,3\n", "d.csv"); }),
            "d.csv:1:5: duplicate column name 'a' (also column 1)");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,x\"y\n", "q.csv"); }),
            "q.csv:2:4: a '\"' inside an unquoted field: quote the whole field and double the "
            "quotes inside it");
  EXPECT_EQ(
      error_of([] { parse_csv("a,b\n\"1\"x,2\n", "c.csv"); }),
      "c.csv:2:4: expected a delimiter or the end of the line after a closing quote, found 'x'");
}

TEST(Csv, InvalidUtf8IsAnError) {
  EXPECT_EQ(error_of([] { parse_csv("\xff\xfe,b\n1,2\n", "u8.csv"); }),
            "u8.csv:1:1: the column name is not valid UTF-8: expected UTF-8 text");
  EXPECT_EQ(error_of([] { parse_csv("a,b\nx,1\ny\xc3\x28,2\n", "v8.csv"); }),
            "v8.csv:3:1: the text in column 'a' is not valid UTF-8: expected UTF-8 text");
  EXPECT_NO_THROW(parse_csv("naïve,b\n日本,1\nx,2\n", "ok.csv"));
}

TEST(Csv, ReadsGzipTransparentlyAndReportsCutShortFiles) {
  const std::string text = "x,y\n1,2\n3,4\n";
  const std::string gz = temp_path("data.csv.gz"), plain = temp_path("data.csv");
  write_gzip(gz, text);
  std::ofstream(plain) << text;
  EXPECT_EQ(read_csv(gz).columns[1].numbers, (PagedVector<double>{2, 4}));
  EXPECT_EQ(read_csv(plain).columns[1].numbers, (PagedVector<double>{2, 4}));

  std::ifstream in(gz, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = temp_path("cut.csv.gz");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 6);
  EXPECT_NE(error_of([&] {
              read_csv(cut);
            }).find("cut.csv.gz: the compressed file is damaged or cut short"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              read_csv("/nonexistent/x.csv");
            }).find("/nonexistent/x.csv: cannot open the file"),
            std::string::npos);
}

std::string idx(std::vector<unsigned> dims, const std::vector<unsigned char>& data) {
  std::string s{0, 0, 8, char(dims.size())};
  for (unsigned d : dims)
    s += {char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
  s.append(data.begin(), data.end());
  return s;
}

TEST(Idx, ImagesAndLabels) {
  const std::string images = temp_path("img-idx3-ubyte"), labels = temp_path("lab-idx1-ubyte.gz");
  std::ofstream(images, std::ios::binary)
      << idx({2, 2, 3}, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 255});
  write_gzip(labels, idx({2}, {7, 9}));
  const Table t = read_idx(images, labels);
  ASSERT_EQ(t.cols(), 7u);  // 6 pixels and the label
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.columns[0].name, "px0");
  EXPECT_EQ(t.columns[5].numbers[1], 255);
  EXPECT_EQ(t.columns[6].name, "label");
  EXPECT_EQ(t.columns[6].numbers, (PagedVector<double>{7, 9}));
}

// Straight into a float matrix: the same pixels as the table, scaled, one row per image.
TEST(Idx, ImagesIntoAMatrix) {
  const std::string images = temp_path("mat-idx3-ubyte"), labels = temp_path("mat-idx1-ubyte");
  std::ofstream(images, std::ios::binary)
      << idx({2, 2, 3}, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 255});
  std::ofstream(labels, std::ios::binary) << idx({2}, {7, 9});
  const Batch<float> X = read_idx_images<float>(images, 1.0 / 255);
  ASSERT_EQ(X.rows(), 2);
  ASSERT_EQ(X.cols(), 6);
  const Table t = read_idx(images);
  for (Index r = 0; r < 2; ++r)
    for (Index c = 0; c < 6; ++c)
      EXPECT_EQ(X(r, c), float(t.columns[std::size_t(c)].numbers[std::size_t(r)] / 255));
  EXPECT_EQ(X(1, 5), 1.0f);
  EXPECT_EQ(read_idx_labels(labels), (std::vector<int>{7, 9}));
  EXPECT_NE(error_of([&] { read_idx_labels(images); }).find("expected labels"), std::string::npos);
  std::ofstream(images, std::ios::binary) << idx({0, 9000, 9000}, {});
  EXPECT_NE(error_of([&] { read_idx_images<float>(images); }).find("promises 0 images"),
            std::string::npos);
}

// Read a block at a time into the matrix (more than one block here, gzip and plain): every pixel
// is the table's, and a file with fewer or more bytes than its header promises is the same error
// as the table's.
TEST(Idx, ImagesIntoAMatrixAcrossBlocks) {
  const std::string plain = temp_path("big-idx3-ubyte"), gz = temp_path("big-idx3-ubyte.gz");
  std::vector<unsigned char> pixels(150 * 28 * 28);  // 117600 bytes: two blocks of 64 KiB
  for (std::size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
  std::ofstream(plain, std::ios::binary) << idx({150, 28, 28}, pixels);
  write_gzip(gz, idx({150, 28, 28}, pixels));
  const Table t = read_idx(plain);
  for (const std::string& path : {plain, gz}) {
    const Batch<double> X = read_idx_images<double>(path, 0.5);
    ASSERT_EQ(X.rows(), 150);
    ASSERT_EQ(X.cols(), 784);
    for (Index r = 0; r < 150; ++r)
      for (Index c = 0; c < 784; ++c)
        ASSERT_EQ(X(r, c), t.columns[std::size_t(c)].numbers[std::size_t(r)] * 0.5)
            << r << " " << c;
  }
  pixels.pop_back();
  std::ofstream(plain, std::ios::binary) << idx({150, 28, 28}, pixels);
  EXPECT_NE(
      error_of([&] {
        read_idx_images<float>(plain);
      }).find("big-idx3-ubyte: the header promises 117600 bytes of data, the file holds 117599"),
      std::string::npos);
  pixels.insert(pixels.end(), {1, 2});
  write_gzip(gz, idx({150, 28, 28}, pixels));
  EXPECT_NE(error_of([&] {
              read_idx_images<float>(gz);
            }).find("the header promises 117600 bytes of data, the file holds 117601"),
            std::string::npos);
}

TEST(Memory, BuddyinfoCountsFree2MiBBlocks) {
  // An order-9 block is one 2 MiB block, an order-10 block two; orders below 9 count for none.
  const char* text =
      "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1 "
      "     3 \n"
      "Node 0, zone    DMA32      4      1      2      2      2      2      1      4      4      2 "
      "   752 \n"
      "Node 0, zone   Normal  15563  11965   7113   2025    799    322     80    106    190     19 "
      "   860 \n";
  EXPECT_EQ(detail::huge_blocks_in_buddyinfo(text), (1 + 2 * 3) + (2 + 2 * 752) + (19 + 2 * 860));
  EXPECT_EQ(detail::huge_blocks_in_buddyinfo(""), 0u);
  EXPECT_EQ(detail::huge_blocks_in_buddyinfo("Node 0, zone Normal 5 4 3\n"), 0u);
}

// A large matrix read from IDX asks for huge pages (MADV_HUGEPAGE shows as "hg" in its mapping's
// VmFlags) where the kernel has the free 2 MiB blocks; a small one does not.
TEST(Memory, LargeMatricesAskForHugePages) {
  const std::string path = temp_path("huge-idx3-ubyte");
  std::ofstream(path, std::ios::binary)
      << idx({2000, 28, 28}, std::vector<unsigned char>(2000 * 784, 7));
  if (detail::free_huge_blocks() < 10) GTEST_SKIP() << "the kernel has no free 2 MiB blocks now";
  const Batch<float> X = read_idx_images<float>(path);  // 6.3 MB
  EXPECT_EQ(X(1999, 783), 7.0f);
  EXPECT_NE(vm_flags_of(X.data() + X.size() / 2).find(" hg"), std::string::npos)
      << vm_flags_of(X.data() + X.size() / 2);
  std::ofstream(path, std::ios::binary)
      << idx({100, 28, 28}, std::vector<unsigned char>(100 * 784, 7));
  const Batch<float> small = read_idx_images<float>(path);  // 314 KB
  EXPECT_EQ(vm_flags_of(small.data()).find(" hg"), std::string::npos);

  // The command line's pixels (one byte each, read_idx_pixels): 4.7 MB, taken at once in 2 MiB
  // blocks that ask for huge pages, not grown by doubling 4 KiB pages from 1 MiB.
  std::vector<unsigned char> pixels(6000 * 784);
  for (std::size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<unsigned char>(i * 7 % 251);
  std::ofstream(path, std::ios::binary) << idx({6000, 28, 28}, pixels);
  const IdxImages img = read_idx_pixels(path);
  ASSERT_EQ(img.pixels.size(), pixels.size());
  EXPECT_TRUE(std::equal(pixels.begin(), pixels.end(),
                         reinterpret_cast<const unsigned char*>(img.pixels.data())));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(img.pixels.data()) % (std::uintptr_t(2) << 20), 0u);
  EXPECT_NE(vm_flags_of(img.pixels.data() + img.pixels.size() - 1).find(" hg"), std::string::npos)
      << vm_flags_of(img.pixels.data() + img.pixels.size() - 1);
}

// A large CSV file's columns (read in blocks, each column's room reserved at once) are whole
// 2 MiB blocks asking for huge pages, from their first value to their last: none of their pages
// is faulted in 4 KiB at a time (W5: a tenth of the read, in the copy into the columns).
TEST(Memory, LargeCsvColumnsAskForHugePages) {
  const std::string path = temp_path("huge.csv");
  {
    std::ofstream f(path);
    f << "a,b\n";
    for (int r = 0; r < 1000000; ++r)
      f << r % 10 << ".5," << r % 7 << ".25\n";  // 9.9 MB: read in blocks
  }
  if (detail::free_huge_blocks() < 20) GTEST_SKIP() << "the kernel has no free 2 MiB blocks now";
  const Table t = read_csv(path);
  ASSERT_EQ(t.rows(), 1000000u);
  constexpr std::uintptr_t kBlock = std::uintptr_t(2) << 20;
  for (const Column& c : t.columns) {
    const double* first = c.numbers.data();
    const double* last = first + c.numbers.size() - 1;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % kBlock, 0u) << c.name;
    EXPECT_NE(vm_flags_of(first).find(" hg"), std::string::npos) << vm_flags_of(first);
    EXPECT_NE(vm_flags_of(last).find(" hg"), std::string::npos) << vm_flags_of(last);
  }
  EXPECT_EQ(t.columns[0].numbers[999999], 9.5);
  EXPECT_EQ(t.columns[1].numbers[999999], double(999999 % 7) + 0.25);
}

TEST(Idx, HeadersThatLieAreErrors) {
  const std::string images = temp_path("lie-idx3-ubyte"), labels = temp_path("few-idx1-ubyte");
  std::ofstream(images, std::ios::binary) << idx({1000, 28, 28}, {1, 2, 3});
  EXPECT_NE(error_of([&] {
              read_idx(images);
            }).find("the header promises 784000 bytes of data, the file holds 3"),
            std::string::npos);
  std::ofstream(images, std::ios::binary) << idx({2, 1, 1}, {1, 2});
  std::ofstream(labels, std::ios::binary) << idx({3}, {1, 2, 3});
  EXPECT_NE(error_of([&] { read_idx(images, labels); }).find("holds 3 labels for 2 images"),
            std::string::npos);
  std::ofstream(labels, std::ios::binary) << "not idx";
  EXPECT_NE(error_of([&] { read_idx(images, labels); }).find("not an IDX file"), std::string::npos);
}

// Two tables are the same: names, types, every number bit for bit (NaN where missing), every
// text, every row's line.
// Rows of short numbers (an optional '-', 1 to 17 digits, a '.' anywhere among them or none:
// what fast_rows reads 16 bytes at a time, and the lengths around its limits), with now and then
// a field it leaves to to_double (an exponent, a '+', spaces, NA) and CRLF or LF line ends: every
// value is from_chars's (parse_number's where from_chars reads no number), bit for bit.
TEST(Csv, ShortNumbersAreParsedExactlyAsFromChars) {
  std::mt19937_64 gen(23);
  const std::size_t width = 5;
  std::vector<std::string> fields;
  std::string csv = "a,b,c,d,e\n";
  while (fields.size() < 300000 * width) {
    for (std::size_t c = 0; c < width; ++c) {
      std::string t = gen() % 3 == 0 ? "-" : "";
      const int digits = 1 + int(gen() % 17), dot = int(gen() % (digits + 2)) - 1;
      for (int d = 0; d < digits; ++d) {
        if (d == dot) t += '.';
        t += char('0' + gen() % 10);
      }
      if (dot == digits) t += '.';
      switch (gen() % 40) {
        case 0:
          t += "e" + std::to_string(int(gen() % 40) - 20);
          break;
        case 1:
          t = "+" + t;
          break;
        case 2:
          t = " " + t + " ";
          break;
        case 3:
          t = "NA";
          break;
        default:
          break;
      }
      csv += t;
      csv += c + 1 < width ? "," : gen() % 5 == 0 ? "\r\n" : "\n";
      fields.push_back(t);
    }
  }
  const Table table = parse_csv(csv, "short.csv");
  ASSERT_EQ(table.rows() * width, fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    double want = std::nan("");
    detail::parse_number(fields[i], want);  // "NA": NaN
    const double got = table.columns[i % width].numbers[i / width];
    ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "'" << fields[i] << "' read as " << got;
    if (fields[i].find_first_of("+ NA") == std::string::npos) {  // from_chars's own
      double exact = 0;
      std::from_chars(fields[i].data(), fields[i].data() + fields[i].size(), exact);
      ASSERT_EQ(std::memcmp(&got, &exact, sizeof got), 0) << fields[i];
    }
  }
}

void expect_same_table(const Table& a, const Table& b) {
  ASSERT_EQ(a.cols(), b.cols());
  ASSERT_EQ(a.rows(), b.rows());
  for (std::size_t r = 0; r < a.rows(); ++r)  // kept one by one, or as the first row's
    ASSERT_EQ(a.line_of(r), b.line_of(r)) << "row " << r;
  for (std::size_t c = 0; c < a.cols(); ++c) {
    const Column &x = a.columns[c], &y = b.columns[c];
    ASSERT_EQ(x.name, y.name);
    ASSERT_EQ(x.numeric, y.numeric) << x.name;
    EXPECT_EQ(x.text, y.text) << x.name;
    ASSERT_EQ(x.numbers.size(), y.numbers.size());
    for (std::size_t r = 0; r < x.numbers.size(); ++r)
      ASSERT_EQ(std::memcmp(&x.numbers[r], &y.numbers[r], sizeof(double)), 0)
          << x.name << " row " << r << ": " << x.numbers[r] << " vs " << y.numbers[r];
  }
}

// Rows of mixed fields until the text holds `bytes`: x (17 digits), k (an integer), m (NA, empty
// or 2.5), p (" 7" or -1e-3) and last(u, gen), each row ended by LF, CRLF or a blank line. `rows`
// counts them.
template <class Last>
std::string mixed_rows(std::mt19937_64& gen, std::size_t bytes, std::size_t& rows, Last last) {
  std::string body;
  while (body.size() < bytes) {
    ++rows;
    const auto u = gen();
    char buf[160];
    std::snprintf(buf, sizeof buf, "%.17g,%lld,%s,%s,", double(gen() >> 11) * 0x1p-40 - 3000,
                  (long long)(u % 100000) - 50000,
                  u % 7 == 0    ? "NA"
                  : u % 11 == 0 ? ""
                                : "2.5",
                  u % 13 == 0 ? " 7" : "-1e-3");
    body += buf;
    body += last(u, gen);
    body += u % 17 == 0 ? "\r\n" : u % 19 == 0 ? "\n\n" : "\n";
  }
  return body;
}

// A large file (3 MB) is read in parallel spans: the table is the one a single thread reads, for
// any thread count, whatever falls at the cuts (blank lines, CRLF, missing values, text, padded
// numbers). A quoted field across a cut, or a broken row, sends the read back to one thread in
// file order, so the result or the error is the same too.
TEST(Csv, ParallelReadingGivesTheSameTable) {
  std::mt19937_64 gen(5);
  std::size_t n = 0;
  const std::string body = mixed_rows(gen, 3'000'000, n, [](std::uint64_t u, std::mt19937_64&) {
    return std::string(u % 3 == 0 ? "red" : "blue");
  });
  const std::string header = "x,k,m,p,colour\n";
  const auto read = [&](const std::string& text, int threads, bool with_header = true) {
    CsvOptions o;
    o.threads = threads;
    o.header = with_header;
    return parse_csv(text, "big.csv", o);
  };
  const Table one = read(header + body, 1);
  ASSERT_EQ(one.rows(), n);
  ASSERT_TRUE(one.columns[2].numeric);
  ASSERT_TRUE(one.columns[3].numeric);
  ASSERT_FALSE(one.columns[4].numeric);
  for (const int threads : {2, 3, 4, 7}) {
    const std::size_t before = detail::csv_parallel_reads();
    expect_same_table(read(header + body, threads), one);
    EXPECT_EQ(detail::csv_parallel_reads(), before + 1) << threads << " threads";
  }
  // No header: the first row sets the width, the rest is read in parallel.
  const std::size_t before = detail::csv_parallel_reads();
  expect_same_table(read(body, 3, false), read(body, 1, false));
  EXPECT_EQ(detail::csv_parallel_reads(), before + 1);

  // A quoted field with a line break in the middle of the file: the cut may fall inside it.
  const std::size_t middle = body.find('\n', body.size() / 2) + 1;
  const std::string quoted =
      header + body.substr(0, middle) + "1,2,3,4,\"a\nb\"\n" + body.substr(middle);
  const Table q = read(quoted, 2);
  expect_same_table(q, read(quoted, 1));
  EXPECT_NE(std::find(q.columns[4].text.begin(), q.columns[4].text.end(), "a\nb"),
            q.columns[4].text.end());

  // A short row near the end, and a word in a numeric column: the same message, same line.
  const std::string short_row = header + body + "1,2,3\n";
  EXPECT_EQ(error_of([&] { read(short_row, 2); }), error_of([&] { read(short_row, 1); }));
  EXPECT_NE(error_of([&] { read(short_row, 2); }).find("expected 5 fields"), std::string::npos);
  std::string word = header + body;
  word.replace(word.rfind("-1e-3"), 5, "oops!");
  for (int i = 0; i < 3; ++i)  // enough of them that the column stays numeric
    word.replace(word.find("-1e-3"), 5, "-2e-3");
  const std::string expected = error_of([&] { read(word, 1); });
  EXPECT_EQ(error_of([&] { read(word, 4); }), expected);
  EXPECT_NE(expected.find("'oops!'"), std::string::npos) << expected;
  const std::size_t oops_line =
      1 + std::size_t(std::count(word.begin(), word.begin() + long(word.find("oops!")), '\n'));
  EXPECT_NE(expected.find("big.csv:" + std::to_string(oops_line) + ":4"), std::string::npos)
      << expected;
}

// A large plain file (over 8 MiB) of numbers is read in blocks through one buffer rather than
// whole: the table is the one the whole text gives, on one thread or several, with CRLF and blank
// lines, missing and padded values, long and short numbers, and no line end at the end. A file
// that needs the tokenizer (text, a quote) or holds an error is read whole: the same table, or
// the same error at the same line.
TEST(Csv, LargeFilesReadInBlocksGiveTheWholeTextsTable) {
  std::mt19937_64 gen(31);
  std::size_t n = 0;
  std::string body =
      mixed_rows(gen, std::size_t(9) << 20, n, [](std::uint64_t, std::mt19937_64& g) {
        char q[32];
        std::snprintf(q, sizeof q, "%.6g", double(std::int64_t(g() % 2000001) - 1000000) / 7);
        return std::string(q);
      });
  body.pop_back();  // no line end after the last row
  if (body.back() == '\r' || body.back() == '\n') body.pop_back();
  const std::string header = "x,k,m,p,q\n", path = temp_path("large.csv");
  const auto write = [&](const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  };
  const auto whole = [&](const std::string& text, bool with_header = true) {
    CsvOptions o;
    o.header = with_header;
    return parse_csv(text, path, o);
  };
  const auto read = [&](int threads, bool with_header = true) {
    CsvOptions o;
    o.threads = threads;
    o.header = with_header;
    return read_csv(path, o);
  };
  write(header + body);
  const Table expected = whole(header + body);
  ASSERT_EQ(expected.cols(), 5u);
  ASSERT_TRUE(expected.columns[2].numeric);
  for (const int threads : {1, 3}) {
    const std::size_t before = detail::csv_block_reads();
    expect_same_table(read(threads), expected);
    EXPECT_EQ(detail::csv_block_reads(), before + 1) << threads << " threads";
  }
  write(body);  // no header: the first row sets the width
  std::size_t before = detail::csv_block_reads();
  expect_same_table(read(2, false), whole(body, false));
  EXPECT_EQ(detail::csv_block_reads(), before + 1);

  // Read whole: a text column, a quoted field.
  std::string text = header + body;  // column m in words
  for (std::size_t i = text.find(",2.5,"); i != std::string::npos; i = text.find(",2.5,", i))
    text.replace(i, 5, ",two,");
  std::string quoted = header + body;
  quoted.insert(quoted.find('\n', quoted.size() / 3) + 1, "\"1\",2,3,4,5\n");
  std::string word = header + body;
  word.replace(word.rfind("-1e-3"), 5, "oops!");
  for (const std::string* t : {&quoted, &word}) {
    write(*t);
    before = detail::csv_block_reads();
    const std::string want = error_of([&] { whole(*t); });
    if (want == "(no error)") expect_same_table(read(2), whole(*t));
    EXPECT_EQ(error_of([&] { read(2); }), want);
    EXPECT_EQ(detail::csv_block_reads(), before);
  }
  EXPECT_NE(error_of([&] { read(1); }).find("'oops!'"), std::string::npos);
  write(text);
  before = detail::csv_block_reads();
  const Table words = read(1);
  EXPECT_EQ(detail::csv_block_reads(), before);
  EXPECT_FALSE(words.columns[2].numeric);
  expect_same_table(words, whole(text));
  std::remove(path.c_str());
}

// A large file read in blocks whose rows follow one another on consecutive lines keeps the first
// row's line, not one per row; a blank line late in the file (blocks after the first) gives every
// row its line from there on, and every row's line is the whole text's either way.
TEST(Csv, LargeFilesKeepOneLinePerRowOnlyAfterAGap) {
  std::string body;
  for (int r = 0; body.size() < (std::size_t(10) << 20); ++r)
    body += std::to_string(r) + "," + std::to_string(r % 13) + ".25\n";
  const std::string header = "a,b\n", path = temp_path("consecutive.csv");
  std::ofstream(path, std::ios::binary) << header + body;
  const std::size_t before = detail::csv_block_reads();
  const Table t = read_csv(path, {.threads = 2});
  EXPECT_EQ(detail::csv_block_reads(), before + 1);
  EXPECT_TRUE(t.lines.empty());
  EXPECT_EQ(t.first_line, 2u);
  expect_same_table(t, parse_csv(header + body, path));
  EXPECT_EQ(t.line_of(t.rows() - 1), t.rows() + 1);

  std::string gap = header + body;
  gap.insert(gap.find('\n', gap.size() * 2 / 3) + 1, "\n");  // a blank line two thirds in
  std::ofstream(path, std::ios::binary) << gap;
  const Table g = read_csv(path, {.threads = 2});
  EXPECT_EQ(detail::csv_block_reads(), before + 2);
  EXPECT_EQ(g.lines.size(), g.rows());
  EXPECT_EQ(g.line_of(g.rows() - 1), g.rows() + 2);  // one line more: the blank one
  expect_same_table(g, parse_csv(gap, path));

  // A NUL byte in the second half of a block (each block is read in halves on two threads): not
  // read in blocks, and the whole read's error.
  for (const std::size_t at : {gap.size() / 2 + (std::size_t(1) << 20) + 123, gap.size() - 5}) {
    std::string nul = gap;
    nul[at] = '\0';
    std::ofstream(path, std::ios::binary) << nul;
    const std::string want = error_of([&] { read_csv(path, {.threads = 1}); });
    EXPECT_NE(want.find("NUL"), std::string::npos) << want;
    EXPECT_EQ(error_of([&] { read_csv(path, {.threads = 2}); }), want);
    EXPECT_EQ(detail::csv_block_reads(), before + 2);
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace chainrule
