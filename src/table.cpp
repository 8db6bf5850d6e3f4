#include "chainrule/table.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "chainrule/error.hpp"

namespace chainrule {

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
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }

  std::size_t position() const { return pos_; }

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
      if (pos_ < s_.size() && s_[pos_] == '"') {
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
      } else {
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

// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s) {
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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

enum class Parsed { number, missing, not_a_number, out_of_range };

Parsed parse_number(std::string_view field, double& out) {
  std::string_view s = trim(field);
  if (is_missing(s)) return Parsed::missing;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return Parsed::not_a_number;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range) return Parsed::out_of_range;
  if (ec != std::errc() || end != s.data() + s.size()) return Parsed::not_a_number;
  if (!std::isfinite(out)) return Parsed::out_of_range;  // "inf", "infinity"
  return Parsed::number;
}

}  // namespace

std::string format_number(double v) {
  char buf[32];
  if (v == std::floor(v) && std::abs(v) < 1e15) {  // whole numbers as integers: 10, not 1e+01
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

bool is_missing(std::string_view field) {
  const std::string_view s = trim(field);
  if (s.empty()) return true;
  if (s.size() > 4) return false;  // the spellings below are short: no copy for the common case
  char lower[4];
  for (std::size_t i = 0; i < s.size(); ++i)
    lower[i] = char(std::tolower(static_cast<unsigned char>(s[i])));
  const std::string_view l(lower, s.size());
  return l == "na" || l == "nan" || l == "n/a" || l == "null";
}

long Table::find(std::string_view name) const {
  for (std::size_t c = 0; c < columns.size(); ++c)
    if (columns[c].name == name) return long(c);
  std::size_t index = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (ec == std::errc() && end == name.data() + name.size() && index < columns.size())
    return long(index);
  return -1;
}

std::string Table::where(std::size_t row, const Column& column) const {
  if (row < lines.size())
    return source + ":" + std::to_string(lines[row]) + ":" + std::to_string(column.field);
  return source + ": row " + std::to_string(row + 1) + ", column '" + column.name + "'";
}

Table parse_csv(std::string_view text, const std::string& source, const CsvOptions& options) {
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const std::size_t line =
        1 + std::size_t(std::count(text.begin(), text.begin() + long(nul), '\n'));
    const std::size_t start =
        text.rfind('\n', nul) == std::string_view::npos ? 0 : text.rfind('\n', nul) + 1;
    fail(source + ":" + std::to_string(line) + ":" + std::to_string(nul - start + 1),
         "a NUL byte: expected text (is this a binary file?)");
  }
  CsvTokenizer tok(text, source, options.delimiter);
  tok.skip_lines(options.skip_rows);
  RawRow row;
  Table t;
  t.source = source;
  std::vector<std::string_view> cells;  // row-major: row r's field c is cells[r * width + c]
  std::size_t width = 0;
  std::size_t header_line = 0;
  if (options.header) {
    if (!tok.next(row)) fail(source + ":1", "the file is empty: expected a header line");
    header_line = row.line;
    width = row.fields.size();
    for (std::size_t c = 0; c < width; ++c) {
      if (!valid_utf8(row.fields[c]))
        fail(source + ":" + std::to_string(row.line) + ":" + std::to_string(row.columns[c]),
             "the column name is not valid UTF-8: expected UTF-8 text");
      Column col;
      col.name = std::string(trim(row.fields[c]));
      col.field = c + 1;
      if (col.name.empty()) col.name = "c" + std::to_string(c);
      t.columns.push_back(std::move(col));
    }
    // Duplicate names, by sorting (name, position): the first repeat in file order is reported.
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
      fail(source + ":" + std::to_string(row.line) + ":" + std::to_string(row.columns[repeat]),
           "duplicate column name " + quote(t.columns[repeat].name) + " (also column " +
               std::to_string(first + 1) + ")");
  }
  for (;;) {
    if (width > 0)  // a row far wider than the header fails before it is all read
      tok.limit_fields(2 * width + 16,
                       std::to_string(width) + " fields" +
                           (options.header ? " (as in the header)" : " (as in the first row)"));
    const std::size_t row_start = tok.position();
    if (!tok.next(row)) break;
    if (t.columns.empty()) {
      width = row.fields.size();
      for (std::size_t c = 0; c < width; ++c) {
        Column col;
        col.name = "c" + std::to_string(c);
        col.field = c + 1;
        t.columns.push_back(std::move(col));
      }
    }
    if (row.fields.size() != width)
      fail(source + ":" + std::to_string(row.line) + ":" +
               std::to_string(row.columns[std::min(row.fields.size(), width) - 1]),
           "expected " + std::to_string(width) + " fields" +
               (options.header ? " (as in the header)" : " (as in the first row)") + ", found " +
               std::to_string(row.fields.size()));
    if (cells.empty()) {  // room for as many rows as the first one's length suggests, plus 10%,
                          // but never more than twice the text's size in field objects
      const std::size_t rows =
          text.size() / std::max<std::size_t>(tok.position() - row_start, 1) * 11 / 10 + 1;
      cells.reserve(std::min(width * rows, 2 * text.size() / sizeof(std::string_view) + width));
    }
    cells.insert(cells.end(), row.fields.begin(), row.fields.end());
    t.lines.push_back(row.line);
  }
  if (t.lines.empty())
    fail(
        source + ":" + std::to_string(std::max<std::size_t>(header_line, 1)),
        options.header ? "no data rows after the header" : "the file is empty: expected data rows");

  // Type each column: numeric when most of its non-missing fields are numbers. One parse per
  // field: the numbers are kept as they come, the first field that is not one is remembered.
  const std::size_t rows = t.lines.size();
  for (std::size_t c = 0; c < width; ++c) {
    Column& col = t.columns[c];
    const auto cell = [&](std::size_t r) { return cells[r * width + c]; };
    std::size_t numbers = 0, present = 0, first_bad = rows;
    Parsed bad = Parsed::number;
    col.numbers.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      double& v = col.numbers[r];
      const Parsed p = parse_number(cell(r), v);
      if (p == Parsed::missing) {
        v = std::nan("");
        continue;
      }
      ++present;
      numbers += p == Parsed::number || p == Parsed::out_of_range;
      if (p != Parsed::number && first_bad == rows) {
        first_bad = r;
        bad = p;
      }
    }
    col.numeric = present == 0 || 2 * numbers > present;
    if (col.numeric && first_bad < rows) {
      if (bad == Parsed::out_of_range)
        fail(t.where(first_bad, col), "the number " + quote(cell(first_bad)) + " in column " +
                                          quote(col.name) +
                                          " is out of range: expected a finite number");
      fail(t.where(first_bad, col), "expected a number in column " + quote(col.name) +
                                        " (a numeric column), found " + quote(cell(first_bad)));
    }
    if (!col.numeric) {
      std::vector<double>().swap(col.numbers);
      col.text.reserve(rows);
      for (std::size_t r = 0; r < rows; ++r) {
        if (!valid_utf8(cell(r)))
          fail(t.where(r, col), "the text in column " +
                                    quote(valid_utf8(col.name) ? col.name : "?") +
                                    " is not valid UTF-8: expected UTF-8 text");
        col.text.emplace_back(trim(cell(r)));
      }
    }
  }
  return t;
}

std::string read_file(const std::string& path) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail(path, std::string("cannot open the file: ") + std::strerror(errno));
  }
  gzFile gz = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (gz == nullptr) fail(path, "cannot open the file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(gz, gzclose);
  gzbuffer(gz, 1 << 17);
  std::string out;
  std::error_code ec;  // a plain file's text is its size; a gzip file's at least that
  if (const auto size = std::filesystem::file_size(path, ec); !ec) out.reserve(std::size_t(size));
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(gz, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      fail(path, std::string("cannot read the file: ") + msg);
    }
    if (n == 0) break;
    out.append(buf, std::size_t(n));
  }
  int code = 0;
  const char* msg = gzerror(gz, &code);
  if (code != Z_OK) fail(path, std::string("the compressed file is damaged or cut short: ") + msg);
  return out;
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  return parse_csv(read_file(path), path, options);
}

namespace {

struct Idx {
  std::vector<std::size_t> dims;
  std::string bytes;
  std::size_t data_offset = 0;
};

Idx read_idx_file(const std::string& path) {
  Idx idx;
  idx.bytes = read_file(path);
  const std::string& b = idx.bytes;
  if (b.size() < 4 || b[0] != 0 || b[1] != 0)
    fail(path + ": byte 0", "not an IDX file: expected the magic bytes 00 00 <type> <dims>");
  if (static_cast<unsigned char>(b[2]) != 0x08)
    fail(path + ": byte 2", "unsupported IDX element type 0x" +
                                std::to_string(static_cast<unsigned char>(b[2])) +
                                ": expected 0x08 (unsigned bytes)");
  const std::size_t ndim = static_cast<unsigned char>(b[3]);
  if (ndim < 1 || ndim > 3)
    fail(path + ": byte 3", "expected 1 to 3 dimensions, found " + std::to_string(ndim));
  if (b.size() < 4 + 4 * ndim) fail(path, "the IDX header is cut short");
  std::size_t total = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const auto* p = reinterpret_cast<const unsigned char*>(b.data() + 4 + 4 * d);
    const std::size_t n =
        (std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) | (std::size_t(p[2]) << 8) | p[3];
    idx.dims.push_back(n);
    if (__builtin_mul_overflow(total, n, &total))
      fail(path, "the header's dimensions multiply to more bytes than any file holds");
  }
  idx.data_offset = 4 + 4 * ndim;
  if (b.size() - idx.data_offset != total)
    fail(path, "the header promises " + std::to_string(total) + " bytes of data, the file holds " +
                   std::to_string(b.size() - idx.data_offset));
  return idx;
}

}  // namespace

Table read_idx(const std::string& images, const std::string& labels) {
  const Idx img = read_idx_file(images);
  if (img.dims.size() < 2)
    fail(images, "expected images (N × rows × cols), found a 1-dimensional file");
  const std::size_t n = img.dims[0];
  const std::size_t features = img.dims.size() == 3 ? img.dims[1] * img.dims[2] : img.dims[1];
  if (n == 0 || features == 0)  // an empty file could otherwise claim billions of columns
    fail(images, "the header promises " + std::to_string(n) + " images of " +
                     std::to_string(features) + " pixels: expected at least one of at least one");
  Table t;
  t.source = images;
  t.columns.resize(features + (labels.empty() ? 0 : 1));
  for (std::size_t f = 0; f < features; ++f) {
    Column& c = t.columns[f];
    c.name = "px" + std::to_string(f);
    c.field = f + 1;
    c.numbers.resize(n);
  }
  const auto* data = reinterpret_cast<const unsigned char*>(img.bytes.data() + img.data_offset);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t f = 0; f < features; ++f)
      t.columns[f].numbers[r] = data[r * features + f];
  if (!labels.empty()) {
    const Idx lab = read_idx_file(labels);
    if (lab.dims.size() != 1) fail(labels, "expected labels (a 1-dimensional IDX file)");
    if (lab.dims[0] != n)
      fail(labels, "holds " + std::to_string(lab.dims[0]) + " labels for " + std::to_string(n) +
                       " images in " + images);
    Column& c = t.columns.back();
    c.name = "label";
    c.field = features + 1;
    c.numbers.resize(n);
    for (std::size_t r = 0; r < n; ++r)
      c.numbers[r] = static_cast<unsigned char>(lab.bytes[lab.data_offset + r]);
  }
  return t;
}

}  // namespace chainrule
