// CSV files in (RFC 4180, plain, gzip or a pipe): a tokenizer that reports every syntax error
// where it is, a fast path for clean rows (in parallel spans for large files), and column typing.
#include "chainrule/table.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/group.hpp"
#include "chainrule/threads.hpp"
#include "csv_internal.hpp"
#include "csv_rows.hpp"
#include "number.hpp"
#include "prefault.hpp"

namespace chainrule {

using detail::Other;
using detail::parse_number;
using detail::Parsed;
using detail::prefault;
using detail::Rows;
using detail::to_double;
using detail::trim;
using detail::valid_utf8;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DataError(where + ": " + what);
}

std::string quote(std::string_view s) {
  std::string q = "'";
  for (char c : s.substr(0, 40))
    q += (c == '\n' || c == '\r') ? ' ' : c;
  if (s.size() > 40) q += "...";
  return q + "'";
}

// More columns than this is a broken file, not a table (a 100 MB line of commas).
constexpr std::size_t kMaxColumns = 1'000'000;

struct RawRow {
  std::vector<std::string_view> fields;  // into the text, or into the tokenizer's arena
  std::vector<std::size_t> columns;      // 1-based character column where each field starts
  std::size_t line;
};

// RFC 4180 tokenizer: quoted fields may hold delimiters, doubled quotes and newlines; records end
// at LF or CRLF; a UTF-8 byte order mark at the start is skipped; blank lines are skipped.
class CsvTokenizer {
 public:
  CsvTokenizer(std::string_view text, const std::string& source, char delimiter)
      : s_(text), source_(source), delim_(delimiter) {
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = line_start_ = 3;  // columns count after it
  }

  std::size_t position() const { return pos_; }
  std::size_t line() const { return line_; }
  /// Continues at `pos`, the start of line `line`.
  void seek(std::size_t pos, std::size_t line) {
    pos_ = pos;
    line_ = line;
    line_start_ = pos;
  }

  /// Rows with more fields than `n` fail at once, with "expected " + `what`.
  void limit_fields(std::size_t n, std::string what) {
    max_fields_ = n;
    max_what_ = std::move(what);
  }

  void skip_lines(std::size_t n) {
    for (; n > 0 && pos_ < s_.size(); --n) {
      const std::size_t nl = s_.find('\n', pos_);
      pos_ = nl == std::string_view::npos ? s_.size() : nl + 1;
      ++line_;
      line_start_ = pos_;
    }
  }

  bool next(RawRow& row) {
    row.fields.clear();
    row.columns.clear();
    while (pos_ < s_.size()) {
      // Blank line (LF or CRLF alone): skip.
      if (s_[pos_] == '\n' || (s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n')) {
        pos_ += s_[pos_] == '\r' ? 2 : 1;
        ++line_;
        line_start_ = pos_;
        continue;
      }
      break;
    }
    if (pos_ >= s_.size()) return false;
    row.line = line_;
    for (;;) {
      if (row.fields.size() == max_fields_)  // a runaway line: stop before it costs memory
        fail(here(), "more than " + std::to_string(max_fields_) + " fields in a row: expected " +
                         max_what_);
      row.columns.push_back(pos_ - line_start_ + 1);
      if (pos_ < s_.size() && s_[pos_] == '"')
        quoted_field(row);
      else
        plain_field(row);
      if (pos_ >= s_.size()) return true;
      if (s_[pos_] == '\r') ++pos_;
      if (pos_ >= s_.size()) return true;
      if (s_[pos_] == '\n') {
        ++pos_;
        ++line_;
        line_start_ = pos_;
        return true;
      }
      ++pos_;  // the delimiter
    }
  }

 private:
  // A quoted field from pos_ (at its opening quote) to its closing quote, which must end it.
  void quoted_field(RawRow& row) {
    const std::size_t open_line = line_, open_col = pos_ - line_start_ + 1;
    const std::size_t start = ++pos_;
    bool doubled = false;  // "" inside: the field needs its own unescaped copy
    for (;;) {
      if (pos_ >= s_.size())
        fail(source_ + ":" + std::to_string(open_line) + ":" + std::to_string(open_col),
             "unterminated quoted field: expected a closing '\"' before the end of the file");
      const char c = s_[pos_++];
      if (c == '"') {
        if (pos_ < s_.size() && s_[pos_] == '"') {
          doubled = true;
          ++pos_;
          continue;
        }
        break;
      }
      if (c == '\n') {
        ++line_;
        line_start_ = pos_;
      }
    }
    const std::string_view inside = s_.substr(start, pos_ - 1 - start);
    if (doubled) {
      std::string& f = arena_.emplace_back();
      for (std::size_t i = 0; i < inside.size(); ++i) {
        f += inside[i];
        if (inside[i] == '"') ++i;  // the second quote of a pair
      }
      row.fields.emplace_back(f);
    } else {
      row.fields.push_back(inside);
    }
    if (pos_ < s_.size() && s_[pos_] != delim_ && s_[pos_] != '\n' &&
        !(s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') &&
        !(s_[pos_] == '\r' && pos_ + 1 == s_.size()))
      fail(here(), "expected a delimiter or the end of the line after a closing quote, found " +
                       quote(s_.substr(pos_, 1)));
  }

  // An unquoted field from pos_ to the delimiter or the end of the line (its CR not included).
  void plain_field(RawRow& row) {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != delim_ && s_[pos_] != '\n') {
      if (s_[pos_] == '"')
        fail(here(),
             "a '\"' inside an unquoted field: quote the whole field and double the "
             "quotes inside it");
      if (s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] != '\n')
        fail(here(), "a carriage return without a line feed: expected LF or CRLF line endings");
      ++pos_;
    }
    std::size_t end = pos_;
    if (end > start && s_[end - 1] == '\r' && (pos_ == s_.size() || s_[pos_] == '\n')) --end;
    row.fields.push_back(s_.substr(start, end - start));
  }

  std::string here() const {
    return source_ + ":" + std::to_string(line_) + ":" + std::to_string(pos_ - line_start_ + 1);
  }

  std::string_view s_;
  const std::string& source_;
  char delim_;
  std::size_t pos_ = 0, line_ = 1, line_start_ = 0;
  std::deque<std::string> arena_;  // unescaped quoted fields (stable addresses)
  std::size_t max_fields_ = kMaxColumns;
  std::string max_what_ = "at most " + std::to_string(kMaxColumns) + " columns";
};

}  // namespace

bool detail::valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

namespace {

// The first field of column `c` that holds a comma (for the decimal-comma note).
template <class Others>
std::string_view first_comma_number(const Others& others, std::size_t c) {
  for (const auto& o : others)
    if (o.col == c && o.text.find(',') != std::string_view::npos) return o.text;
  return {};
}

// UTF-16 and UTF-32 text (Excel's "Unicode text", PowerShell's default) by its byte-order mark or
// its zero bytes beside ASCII characters, named so that the user knows what to convert.
std::string_view wide_encoding(std::string_view t) {
  if (t.substr(0, 64).find('\0') == std::string_view::npos) return {};  // ASCII would hold NULs
  const auto b = [&](std::size_t i) { return i < t.size() ? static_cast<unsigned char>(t[i]) : 1; };
  if (b(0) == 0xFF && b(1) == 0xFE) return b(2) == 0 && b(3) == 0 ? "UTF-32LE" : "UTF-16LE";
  if (b(0) == 0 && b(1) == 0 && b(2) == 0xFE && b(3) == 0xFF) return "UTF-32BE";
  if (b(0) == 0xFE && b(1) == 0xFF) return "UTF-16BE";
  if (t.size() >= 4 && b(0) != 0 && b(0) < 0x80 && b(1) == 0 && b(2) != 0 && b(3) == 0)
    return "UTF-16LE";
  if (t.size() >= 4 && b(0) == 0 && b(1) != 0 && b(1) < 0x80 && b(2) == 0 && b(3) != 0)
    return "UTF-16BE";
  return {};
}

// Text a CSV reader cannot read: UTF-16 or UTF-32, or a NUL byte (a binary file), named where.
void check_text(std::string_view text, const std::string& source, std::size_t first_line = 1) {
  if (const std::string_view enc = first_line == 1 ? wide_encoding(text) : std::string_view();
      !enc.empty())
    fail(source + ":1:1", "the text is encoded as " + std::string(enc) +
                              ": expected UTF-8 (convert it: iconv -f " + std::string(enc) +
                              " -t UTF-8)");
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const std::size_t line =
        first_line + std::size_t(std::count(text.begin(), text.begin() + long(nul), '\n'));
    const std::size_t start =
        text.rfind('\n', nul) == std::string_view::npos ? 0 : text.rfind('\n', nul) + 1;
    fail(source + ":" + std::to_string(line) + ":" + std::to_string(nul - start + 1),
         "a NUL byte: expected text (is this a binary file?)");
  }
}

// Duplicate names of the header `row`, by sorting (name, position): the first repeat in file
// order is reported.
void check_distinct_names(const Table& t, const RawRow& row) {
  const std::size_t width = t.columns.size();
  std::vector<std::pair<std::string_view, std::size_t>> names;
  names.reserve(width);
  for (std::size_t c = 0; c < width; ++c)
    names.emplace_back(t.columns[c].name, c);
  std::sort(names.begin(), names.end());
  std::size_t repeat = width, first = 0;
  for (std::size_t i = 1; i < names.size(); ++i)
    if (names[i].first == names[i - 1].first && names[i].second < repeat) {
      repeat = names[i].second;
      std::size_t j = i;
      while (j > 0 && names[j - 1].first == names[i].first)
        --j;
      first = names[j].second;
    }
  if (repeat < width)
    fail(t.source + ":" + std::to_string(row.line) + ":" + std::to_string(row.columns[repeat]),
         "duplicate column name " + quote(t.columns[repeat].name) + " (also column " +
             std::to_string(first + 1) + ")");
}

// The header line: one column per field, named by it (trimmed; "c<k>" when empty), in UTF-8 and
// distinct. Returns the header's line number.
std::size_t read_header(CsvTokenizer& tok, RawRow& row, Table& t) {
  if (!tok.next(row)) fail(t.source + ":1", "the file is empty: expected a header line");
  for (std::size_t c = 0; c < row.fields.size(); ++c) {
    if (!valid_utf8(row.fields[c]))
      fail(t.source + ":" + std::to_string(row.line) + ":" + std::to_string(row.columns[c]),
           "the column name is not valid UTF-8: expected UTF-8 text");
    Column col;
    col.name = std::string(trim(row.fields[c]));
    col.field = c + 1;
    if (col.name.empty()) col.name = "c" + std::to_string(c);
    t.columns.push_back(std::move(col));
  }
  check_distinct_names(t, row);
  return row.line;
}

// The data rows, from the tokenizer's position to the end: clean rows by fast_rows (in parallel
// spans for a large file), any other row by the tokenizer, which gives the exact error where
// there is one. Without a header, the first row sets the width and names the columns c0, c1, ...
class DataRows {
 public:
  DataRows(std::string_view text, CsvTokenizer& tok, RawRow& row, Table& t,
           const std::string& expected_fields)
      : text_(text),
        tok_(tok),
        row_(row),
        t_(t),
        expected_fields_(expected_fields),
        width_(t.columns.size()),
        pos_(tok.position()),
        line_(tok.line()) {
    read_.values.resize(width_);
  }

  Rows read(const CsvOptions& options) {
    if (width_ == 0 && !slow_row()) pos_ = text_.size();
    // Spans of at least a quarter of the threshold: a thread costs more than reading less.
    const int threads = std::max(options.threads, 1);
    if (threads > 1 && width_ > 0 && text_.size() - pos_ >= options.parallel_bytes &&
        parallel_rows(text_, options.delimiter, width_, pos_, line_, threads,
                      options.parallel_bytes / 4, read_))
      pos_ = text_.size();
    while (pos_ < text_.size()) {
      pos_ = fast_rows(text_, options.delimiter, width_, pos_, text_.size(), text_.size() - pos_,
                       line_, read_);
      if (pos_ < text_.size() && !slow_row()) break;
    }
    return std::move(read_);
  }

 private:
  // Columns c0, c1, ... as many as the first row has fields (a file without a header).
  void name_columns() {
    width_ = row_.fields.size();
    read_.values.resize(width_);
    for (std::size_t k = 0; k < width_; ++k) {
      Column col;
      col.name = "c" + std::to_string(k);
      col.field = k + 1;
      t_.columns.push_back(std::move(col));
    }
  }

  // One row by the tokenizer, at pos_; false at the end of the text.
  bool slow_row() {
    const std::size_t r = read_.lines.size();
    if (width_ > 0) tok_.limit_fields(2 * width_ + 16, std::to_string(width_) + expected_fields_);
    tok_.seek(pos_, line_);
    if (!tok_.next(row_)) return false;
    if (t_.columns.empty()) name_columns();
    if (row_.fields.size() != width_)
      fail(t_.source + ":" + std::to_string(row_.line) + ":" +
               std::to_string(row_.columns[std::min(row_.fields.size(), width_) - 1]),
           "expected " + std::to_string(width_) + expected_fields_ + ", found " +
               std::to_string(row_.fields.size()));
    for (std::size_t k = 0; k < width_; ++k) {
      double v;
      if (parse_number(row_.fields[k], v) == Parsed::number) {
        read_.values[k].push_back(v);
      } else {
        read_.values[k].push_back(std::nan(""));
        read_.others.push_back({r, k, row_.fields[k]});
      }
    }
    read_.lines.push_back(row_.line);
    if (r == 0) reserve_rows(read_, tok_.position() - pos_, text_.size() - pos_);
    pos_ = tok_.position();
    line_ = tok_.line();
    return true;
  }

  std::string_view text_;
  CsvTokenizer& tok_;
  RawRow& row_;
  Table& t_;
  const std::string& expected_fields_;
  std::size_t width_, pos_, line_;
  Rows read_;
};

// What the fields the fast path did not read say about each column: how many are missing, how
// many are numbers, the first that is not (and why), how many are numbers with a decimal comma.
struct FieldCounts {
  std::vector<std::size_t> missing, numbers, first_bad, comma_numbers;
  std::vector<Parsed> bad;
};

// Parses the fields of `read.others` (in row order) of a table of `rows` rows, writing the
// numbers among them into their columns' values, and counts them.
FieldCounts parse_other_fields(Rows& read, std::size_t width, std::size_t rows,
                               const CsvOptions& options) {
  FieldCounts n{std::vector<std::size_t>(width), std::vector<std::size_t>(width, rows),
                std::vector<std::size_t>(width, rows), std::vector<std::size_t>(width, 0),
                std::vector<Parsed>(width, Parsed::number)};
  std::string swapped;
  for (const Other& o : read.others) {  // in row order
    double v;
    Parsed kind = parse_number(o.text, v);
    if (kind == Parsed::not_a_number && options.delimiter != ',' &&
        std::count(o.text.begin(), o.text.end(), ',') == 1 &&
        o.text.find('.') == std::string_view::npos) {
      swapped.assign(o.text);
      std::replace(swapped.begin(), swapped.end(), ',', '.');
      double w;
      if (parse_number(swapped, w) == Parsed::number) {
        if (options.decimal_comma) {
          kind = Parsed::number;
          v = w;
        } else {
          ++n.comma_numbers[o.col];
        }
      }
    }
    if (kind == Parsed::missing) {
      ++n.missing[o.col];
      --n.numbers[o.col];
    } else if (kind == Parsed::number) {  // " 5", "+5"
      read.values[o.col][o.row] = v;
    } else {
      if (kind == Parsed::not_a_number) --n.numbers[o.col];
      if (n.first_bad[o.col] == rows) {
        n.first_bad[o.col] = o.row;
        n.bad[o.col] = kind;
      }
    }
  }
  return n;
}

// The error for the field of numeric column `c` in row `r` that is not a number.
[[noreturn]] void fail_not_a_number(const Table& t, const std::vector<Other>& others, std::size_t c,
                                    std::size_t r, Parsed bad) {
  const Column& col = t.columns[c];
  std::string_view field;
  for (const Other& o : others)
    if (o.row == r && o.col == c) field = o.text;
  if (bad == Parsed::out_of_range)
    fail(t.where(r, col), "the number " + quote(field) + " in column " + quote(col.name) +
                              " is out of range: expected a finite number");
  fail(t.where(r, col), "expected a number in column " + quote(col.name) +
                            " (a numeric column), found " + quote(field));
}

// Types each column: numeric when most of its non-missing fields are numbers (its values move
// into the column), else text. Returns the text columns.
// With a group (a shard of the file on each process), the counts of every process's rows decide:
// every process types the columns the same way, as one process reading the whole file would.
std::vector<std::size_t> type_columns(Table& t, Rows& read, const CsvOptions& options,
                                      const Group* g = nullptr) {
  const std::size_t width = t.columns.size(), local_rows = t.lines.size();
  FieldCounts n = parse_other_fields(read, width, local_rows, options);
  std::size_t rows = local_rows;
  if (g) {
    std::vector<double> sums;
    for (std::size_t c = 0; c < width; ++c) {
      sums.push_back(double(n.missing[c]));
      sums.push_back(double(n.numbers[c]));
      sums.push_back(double(n.comma_numbers[c]));
    }
    sums.push_back(double(rows));
    g->sum(sums);
    rows = std::size_t(sums.back());
    for (std::size_t c = 0; c < width; ++c) {
      n.missing[c] = std::size_t(sums[3 * c]);
      n.numbers[c] = std::size_t(sums[3 * c + 1]);
      n.comma_numbers[c] = std::size_t(sums[3 * c + 2]);
    }
  }
  std::vector<std::size_t> text_columns;
  for (std::size_t c = 0; c < width; ++c) {
    Column& col = t.columns[c];
    const std::size_t present = rows - n.missing[c];
    col.numeric = present == 0 || 2 * n.numbers[c] > present;
    if (!col.numeric && 2 * (n.numbers[c] + n.comma_numbers[c]) > present)
      t.notes.push_back({"column " + quote(col.name) +
                             " holds numbers with a decimal comma (such "
                             "as " +
                             quote(first_comma_number(read.others, c)) + "), read as text",
                         "decimal_comma"});
    if (!col.numeric) {
      text_columns.push_back(c);
      PagedVector<double>().swap(read.values[c]);
      continue;
    }
    col.numbers = std::move(read.values[c]);
    if (n.first_bad[c] < local_rows) fail_not_a_number(t, read.others, c, n.first_bad[c], n.bad[c]);
  }
  return text_columns;
}

// Text columns: one more pass of the tokenizer, from the first data row, for every field of
// those columns (checked to be UTF-8; a missing value is the empty string).
void read_text_columns(CsvTokenizer& tok, RawRow& row, Table& t,
                       const std::vector<std::size_t>& text_columns, std::size_t data_start,
                       std::size_t data_line, const std::string& expected_fields) {
  const std::size_t width = t.columns.size(), rows = t.lines.size();
  tok.limit_fields(2 * width + 16, std::to_string(width) + expected_fields);
  tok.seek(data_start, data_line);
  for (const std::size_t c : text_columns)
    t.columns[c].text.reserve(rows);
  for (std::size_t r = 0; r < rows && tok.next(row); ++r)
    for (const std::size_t c : text_columns) {
      Column& col = t.columns[c];
      if (!valid_utf8(row.fields[c]))
        fail(t.where(r, col), "the text in column " + quote(valid_utf8(col.name) ? col.name : "?") +
                                  " is not valid UTF-8: expected UTF-8 text");
      // A missing value (NA, null, ...) is the empty string, as in numeric columns NaN: never a
      // category named after the token.
      const std::string_view v = trim(row.fields[c]);
      col.text.emplace_back(is_missing(v) ? std::string_view() : v);
    }
}

// What a row's error says it expected: " fields (as in the header)" or " fields (as in the
// first row)".
std::string expected_fields_text(const CsvOptions& options) {
  return " fields" + std::string(options.header ? " (as in the header)" : " (as in the first row)");
}

}  // namespace

namespace detail {

RangeFile::RangeFile(const std::string& path, const std::string& reading) {
  const std::string what = open(path);
  if (what.empty()) return;
  if (fd_ >= 0) ::close(fd_);  // no destructor runs after a constructor throws
  if (what == "gzip-compressed")
    throw DataError(path + ": gzip-compressed: " + reading +
                    ", which a compressed file does not have (gunzip it first)");
  if (what == "not a regular file")
    throw DataError(path + ": not a regular file: " + reading +
                    " (decompress it, or save the pipe's output, first)");
  throw DataError(path + ": " + what);
}

std::unique_ptr<RangeFile> RangeFile::open_plain(const std::string& path) {
  std::unique_ptr<RangeFile> f(new RangeFile());
  return f->open(path).empty() ? std::move(f) : nullptr;
}

std::string RangeFile::open(const std::string& path) {
  path_ = path;
  // Looked at before it is opened, and opened without waiting: opening a FIFO would wait for a
  // writer, and then close on it (the data it writes meant for the reader that reads it).
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return "not a regular file";
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) return std::string("cannot open: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  size_ = std::size_t(st.st_size);
  mtime_ns_ = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  inode_ = st.st_ino;
  unsigned char magic[2] = {0, 0};
  if (size_ >= 2 && ::pread(fd_, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
    return "gzip-compressed";
  return {};
}

RangeFile::~RangeFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RangeFile::read(std::size_t from, std::size_t to, std::string& out) const {
  to = std::min(to, size_);
  const std::size_t at = out.size();
  out.resize(at + (to > from ? to - from : 0));
  read(from, to, out.data() + at);
}

std::size_t RangeFile::read(std::size_t from, std::size_t to, char* dst) const {
  to = std::min(to, size_);
  std::size_t done = 0;
  while (from + done < to) {
    const ssize_t got = ::pread(fd_, dst + done, to - from - done, off_t(from + done));
    if (got <= 0)
      throw DataError(
          path_ + ": read error" +
          (got < 0 ? std::string(": ") + std::strerror(errno) : std::string(" (the file shrank)")));
    done += std::size_t(got);
  }
  return done;
}

bool RangeFile::unchanged() const {
  struct stat st {};
  return ::fstat(fd_, &st) == 0 && std::size_t(st.st_size) == size_ && st.st_ino == inode_ &&
         std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec == mtime_ns_;
}

std::string read_head(const RangeFile& file, const std::string& path, const CsvOptions& options,
                      Table& t, std::size_t& data_start, std::size_t& data_line) {
  std::string head;
  // The header (or, without one, the first row, which sets the width), from a prefix of the
  // file that grows (up to the input limit) until what it needs ends before the prefix does.
  const std::uint64_t limit = options.max_bytes > 0 ? options.max_bytes : default_max_input_bytes();
  for (std::size_t want = std::size_t(1) << 16;; want *= 4) {
    head.clear();
    file.read(0, want, head);
    const bool whole = head.size() == file.size();
    std::size_t end = 0;
    try {
      if (whole) check_text(head, path);
      CsvTokenizer tok(head, path, options.delimiter);
      tok.skip_lines(options.skip_rows);
      RawRow row;
      t.columns.clear();
      if (options.header) {
        read_header(tok, row, t);
        end = tok.position();
      } else {
        const std::size_t pos = tok.position(), line = tok.line();
        if (tok.next(row))
          for (std::size_t k = 0; k < row.fields.size(); ++k) {
            Column col;
            col.name = "c" + std::to_string(k);
            col.field = k + 1;
            t.columns.push_back(std::move(col));
          }
        end = tok.position();
        tok.seek(pos, line);
      }
      data_start = tok.position();
      data_line = tok.line();
    } catch (const DataError&) {
      if (whole) throw;  // a prefix cut inside the header is no error of the file's
    }
    if (whole || (end > 0 && end < head.size())) break;
    if (want >= limit)
      throw LimitError(
          path + ": the header is longer than the input limit of " + format_bytes(limit),
          "max_input_bytes");
  }
  check_text(std::string_view(head).substr(0, data_start), path);
  return head;
}

}  // namespace detail

Table parse_csv(std::string_view text, const std::string& source, const CsvOptions& options) {
  check_text(text, source);
  CsvTokenizer tok(text, source, options.delimiter);
  tok.skip_lines(options.skip_rows);
  RawRow row;
  Table t;
  t.source = source;
  const std::size_t header_line = options.header ? read_header(tok, row, t) : 0;
  const std::string expected_fields = expected_fields_text(options);
  const std::size_t data_start = tok.position(), data_line = tok.line();
  Rows read = DataRows(text, tok, row, t, expected_fields).read(options);
  t.lines = std::move(read.lines);
  if (t.lines.empty())
    fail(
        source + ":" + std::to_string(std::max<std::size_t>(header_line, 1)),
        options.header ? "no data rows after the header" : "the file is empty: expected data rows");
  const std::vector<std::size_t> text_columns = type_columns(t, read, options);
  if (!text_columns.empty())
    read_text_columns(tok, row, t, text_columns, data_start, data_line, expected_fields);
  return t;
}

namespace {

// A large plain file is read in blocks of this much text through one buffer (read_in_blocks).
constexpr std::size_t kBlockBytes = std::size_t(2) << 20;
// Smaller files are read whole: their text costs little memory, and a file that needs the
// tokenizer is not read twice.
constexpr std::uint64_t kBlockReadMinBytes = std::uint64_t(8) << 20;

std::atomic<std::size_t> block_reads{0};  // for detail::csv_block_reads

// The columns' pages are faulted in ahead of their values, this many values (512 KiB) at a time.
constexpr std::size_t kPrefaultValues = std::size_t(1) << 16;

// The data rows of bytes [start, end) of `file` (`width` fields each, the first on line `line`)
// read in blocks of rows through one reused buffer (block_rows) into `out`'s columns, each block
// while it is still in the cache, on `threads` threads. False when a row needs the tokenizer: a
// quote, text, a NUL byte, a bad row. With `first_line`, rows on consecutive lines (no blank
// line between them) are not given a line each: `out.lines` stays empty and *first_line is the
// first row's (the rows' lines are kept one by one from the first gap on, and *first_line is 0).
bool rows_in_blocks(const detail::RangeFile& file, std::size_t start, std::size_t line,
                    std::size_t end, std::size_t width, const CsvOptions& options, int threads,
                    Rows& out, std::size_t* first_line = nullptr) {
  const std::size_t bytes = std::min(end, file.size()) - std::min(start, file.size());
  std::size_t first = 0, total = 0;  // the first row's line, and the rows so far
  bool consecutive = first_line != nullptr;
  out.values.assign(width, {});
  std::vector<char> huge;   // whether a column's reserved room is in huge pages (not prefaulted)
  detail::WorkerPool pool;  // the threads that read the blocks and copy their columns
  const auto append = [&](Rows& part, std::size_t, std::string_view text) {
    const std::size_t n = part.lines.size();
    if (n == 0) return true;
    // Room for the rows the first span's length suggests, plus 5%.
    const auto rows = [&] {
      return std::min(bytes / std::max<std::size_t>(text.size() / n, 1) * 21 / 20 + n,
                      bytes / (2 * width) + 1);
    };
    if (total == 0) {
      first = part.lines[0];
      if (!consecutive) out.lines.reserve(rows());
      huge.assign(width, 0);
      for (std::size_t c = 0; c < width; ++c) {
        // Whole 2 MiB blocks from 1 MiB up (buffer.hpp), which ask for huge pages where the
        // kernel has the free blocks; asked again here to learn whether it had (if not, the
        // pages are faulted in ahead below).
        PagedVector<double>& v = out.values[c];
        v.reserve(rows());
        huge[c] = detail::advise_huge_pages(v.data(), v.data() + v.capacity());
      }
    }
    if (consecutive)
      for (std::size_t i = 0; i < n; ++i)
        if (part.lines[i] != first + total + i) {  // a gap: every row's line from here on
          consecutive = false;
          out.lines.reserve(std::max(rows(), total + n));
          for (std::size_t r = 0; r < total; ++r)
            out.lines.push_back(first + r);
          break;
        }
    if (!consecutive) out.lines.insert(out.lines.end(), part.lines.begin(), part.lines.end());
    total += n;
    // The columns copied a share each on the reading threads, their new pages in huge pages or
    // faulted in ahead (prefault.hpp): the first writes to them are most of the time a large
    // file's copy takes.
    const auto copy = [&](std::size_t k, std::size_t spans) {
      for (std::size_t c = k; c < width; c += spans) {
        PagedVector<double>& to = out.values[c];
        const PagedVector<double>& from = part.values[c];
        const bool fits = to.capacity() >= to.size() + from.size();
        if (!fits) huge[c] = 0;  // grown past its reserved room: a new buffer, not advised
        if (fits && !huge[c] &&
            (to.empty() || to.size() % kPrefaultValues + from.size() >= kPrefaultValues))
          prefault(to.data() + to.size(),
                   to.data() + std::min(to.capacity(), to.size() + from.size() + kPrefaultValues));
        to.insert(to.end(), from.begin(), from.end());
      }
    };
    const std::size_t spans = std::min<std::size_t>(std::size_t(threads), width);
    std::vector<std::exception_ptr> failed(spans);  // (bad_alloc) thrown here, after the copies
    auto share = [&](std::size_t k) {
      try {
        copy(k, spans);
      } catch (...) {
        failed[k] = std::current_exception();
      }
    };
    pool.run(spans, share);
    for (const std::exception_ptr& e : failed)
      if (e) std::rethrow_exception(e);
    return true;
  };
  const bool read = width > 0 && detail::block_rows(file,
                                                    {.start = start,
                                                     .line = line,
                                                     .end = end,
                                                     .width = width,
                                                     .delimiter = options.delimiter,
                                                     .threads = threads,
                                                     .block_bytes = kBlockBytes,
                                                     .parallel_bytes = options.parallel_bytes,
                                                     .pool = &pool},
                                                    append);
  if (first_line) *first_line = consecutive && total > 0 ? first : 0;
  return read;
}

// A large regular, uncompressed file whose fields are all numbers or missing, read in blocks
// (rows_in_blocks) rather than whole: the text never takes memory beside the table. The table is
// the one parse_csv gives for the whole text. Nothing (the file perhaps read in part) when the
// file needs the tokenizer, or its header cannot be read: read_csv then reads it whole and says
// what is wrong where.
std::optional<Table> read_in_blocks(const std::string& path, const CsvOptions& options) {
  if (options.decimal_comma) return std::nullopt;
  const std::unique_ptr<detail::RangeFile> file = detail::RangeFile::open_plain(path);
  const std::uint64_t limit = options.max_bytes > 0 ? options.max_bytes : default_max_input_bytes();
  if (!file || file->size() < kBlockReadMinBytes || file->size() > limit) return std::nullopt;
  Table t;
  t.source = path;
  std::size_t start = 0, line = 1;
  try {
    detail::read_head(*file, path, options, t, start, line);
  } catch (const DataError&) {
    return std::nullopt;
  }
  Rows rows;
  std::size_t first_line = 0;
  if (!rows_in_blocks(*file, start, line, file->size(), t.cols(), options,
                      std::max(options.threads, 1), rows, &first_line) ||
      (rows.lines.empty() && first_line == 0) || !file->unchanged())
    return std::nullopt;
  t.lines = std::move(rows.lines);  // empty when the rows' lines follow one another
  t.first_line = first_line;
  for (std::size_t c = 0; c < t.cols(); ++c)
    t.columns[c].numbers = std::move(rows.values[c]);
  block_reads.fetch_add(1, std::memory_order_relaxed);
  return t;
}

}  // namespace

std::size_t detail::csv_block_reads() {
  return block_reads.load(std::memory_order_relaxed);
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  if (std::optional<Table> t = read_in_blocks(path, options)) return std::move(*t);
  // One open, one pass: pipes and /dev/stdin are read as they come, and a NUL byte stops the
  // read at once (the parser reports where; /dev/zero is not read to the limit).
  InputFile in(path);
  const Bytes text = in.read_all(options.max_bytes, true, options.threads);
  return parse_csv(text.view(), path, options);
}

namespace {

// The first record boundary at or after `from`: the byte after a newline that lies outside
// quotes, `quotes_before` being the number of quote characters before `from` (RFC 4180: a quote
// opens or closes a quoted field, "" inside one does both). Counts the newlines it passes.
std::size_t next_record(const detail::RangeFile& f, std::size_t from, std::uint64_t quotes_before,
                        std::uint64_t& newlines) {
  bool inside = quotes_before % 2 == 1;
  newlines = 0;
  std::string buf;
  for (std::size_t at = from; at < f.size(); at += buf.size()) {
    buf.clear();
    f.read(at, at + (std::size_t(1) << 16), buf);
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if (buf[i] == '"') inside = !inside;
      if (buf[i] == '\n') {
        ++newlines;
        if (!inside) return at + i + 1;
      }
    }
  }
  return f.size();
}

}  // namespace

Table read_csv_shard(const std::string& path, const CsvOptions& options, const Group& g) {
  // Every step that may fail on one process only is followed by g.together's agreement.
  const int N = g.size(), r = g.rank();
  std::unique_ptr<detail::RangeFile> file;
  Table t;
  t.source = path;
  std::string head;  // the file's start: the preamble and the header
  std::size_t data_start = 0, data_line = 1;
  g.together([&] {
    file = std::make_unique<detail::RangeFile>(
        path, "several processes read their parts of a file by byte ranges");
    head = detail::read_head(*file, path, options, t, data_start, data_line);
  });
  // Every process must read the same file: its size and its header, compared with rank 0's.
  g.together([&] {
    const std::string mine = std::to_string(file->size()) + ":" + head.substr(0, data_start);
    const std::vector<std::string> all = g.all_gather(mine);
    if (all[0] != mine)
      throw DataError(path +
                      ": this process sees another file than the first process (its size "
                      "or header differ): every host must see the same file");
  });
  // Nominal cuts at equal byte counts; each process counts the quotes and newlines of its own
  // range, and the counts of the ranges before a cut say whether it lies inside quotes.
  const std::size_t S = file->size();
  const auto cut = [&](int k) {
    return k == 0 ? data_start : std::max(data_start, std::size_t(double(S) * k / N));
  };
  std::uint64_t counts[2] = {0, 0};  // quotes, newlines in [cut(r), cut(r + 1))
  g.together([&] {
    std::string buf;
    for (std::size_t at = cut(r); at < cut(r + 1); at += buf.size()) {
      buf.clear();
      file->read(at, std::min(cut(r + 1), at + (std::size_t(1) << 20)), buf);
      counts[0] += std::uint64_t(std::count(buf.begin(), buf.end(), '"'));
      counts[1] += std::uint64_t(std::count(buf.begin(), buf.end(), '\n'));
    }
  });
  const std::vector<std::string> all =
      g.all_gather(std::string(reinterpret_cast<const char*>(counts), sizeof counts));
  // The quotes and newlines before each nominal cut.
  std::vector<std::uint64_t> quotes_at(std::size_t(N) + 1, 0), lines_at(std::size_t(N) + 1, 0);
  for (int k = 0; k < N; ++k) {
    std::uint64_t c[2];
    std::memcpy(c, all[std::size_t(k)].data(), sizeof c);
    quotes_at[std::size_t(k) + 1] = quotes_at[std::size_t(k)] + c[0];
    lines_at[std::size_t(k) + 1] = lines_at[std::size_t(k)] + c[1];
  }
  // This process's records: from the first record boundary at or after its cut to the first at
  // or after the next process's cut (the file's data start and end at the ends).
  Rows read;
  std::size_t part_from = 0, part_to = 0;  // this process's records' bytes
  g.together([&] {
    std::uint64_t skipped = 0, unused = 0;
    const std::size_t from =
        r == 0 ? data_start : next_record(*file, cut(r), quotes_at[std::size_t(r)], skipped);
    const std::size_t to =
        r == N - 1
            ? S
            : std::max(from, next_record(*file, cut(r + 1), quotes_at[std::size_t(r) + 1], unused));
    const std::uint64_t limit =
        options.max_bytes > 0 ? options.max_bytes : default_max_input_bytes();
    if (to - from > limit)
      throw LimitError(path + ": this process's part of the file is " + format_bytes(to - from) +
                           ", more than the " + format_bytes(limit) + " allowed",
                       "max_bytes");
    part_from = from;
    part_to = to;
    head.clear();
    head.shrink_to_fit();
    const std::size_t first_line = data_line + lines_at[std::size_t(r)] + skipped;
    // A part of numbers (or missing values) only is read in blocks, as read_csv reads a whole
    // file (read_in_blocks): its text never held whole. Anything else is read whole below.
    if (!options.decimal_comma && to > from &&
        rows_in_blocks(*file, from, first_line, to, t.cols(), options, 1, read)) {
      t.lines = std::move(read.lines);
      return;
    }
    read = Rows{};
    // The records' text stays in `head` until the columns are typed (the fields the fast path
    // did not read point into it).
    file->read(from, to, head);
    const std::string& text = head;
    check_text(text, path, first_line);
    CsvTokenizer tok(text, path, options.delimiter);
    tok.seek(0, first_line);
    RawRow row;
    const std::string expected_fields = expected_fields_text(options);
    CsvOptions one = options;
    one.threads = 1;
    read = DataRows(text, tok, row, t, expected_fields).read(one);
    t.lines = std::move(read.lines);
  });
  {
    std::vector<double> n = {double(t.lines.size())};
    g.sum(n);
    if (n[0] == 0) throw DataError(path + ": no data rows after the header");
  }
  std::vector<std::size_t> text_columns;
  g.together([&] { text_columns = type_columns(t, read, options, &g); });
  g.together([&] {
    if (text_columns.empty()) return;
    if (head.empty()) file->read(part_from, part_to, head);  // read in blocks: now its text
    CsvTokenizer tok(head, path, options.delimiter);
    RawRow row;
    const std::string expected_fields = expected_fields_text(options);
    read_text_columns(tok, row, t, text_columns, 0, t.lines.empty() ? 1 : t.lines.front(),
                      expected_fields);
  });
  return t;
}

}  // namespace chainrule
