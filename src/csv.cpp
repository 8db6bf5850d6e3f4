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
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/threads.hpp"
#include "number.hpp"

namespace chainrule {

using detail::parse_number;
using detail::Parsed;
using detail::to_double;
using detail::trim;

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

// The first field of column `c` that holds a comma (for the decimal-comma note).
template <class Others>
std::string_view first_comma_number(const Others& others, std::size_t c) {
  for (const auto& o : others)
    if (o.col == c && o.text.find(',') != std::string_view::npos) return o.text;
  return {};
}

// A field the fast path did not read as a clean number, typed later in row order.
struct Other {
  std::size_t row, col;
  std::string_view text;
};

// Data rows as read so far: each column's values (NaN where a field is not a clean number), the
// fields that are not, and the line of each row.
struct Rows {
  std::vector<std::vector<double>> values;
  std::vector<Other> others;
  std::vector<std::size_t> lines;
};

// Room for as many rows as the first one's length suggests in `bytes` of text, plus 10%.
void reserve_rows(Rows& out, std::size_t first_row_bytes, std::size_t bytes) {
  const std::size_t width = out.values.size();
  if (width == 0) return;
  const std::size_t rows = std::min(bytes / std::max<std::size_t>(first_row_bytes, 1) * 11 / 10 + 1,
                                    bytes / (2 * width) + 1);
  for (auto& v : out.values)
    v.reserve(rows);
}

// Reads data rows from `pos` (the start of line `line`, which follows along) until `stop` (the
// end of the text or the start of a line) or the first row it cannot read on its own: a quote, a
// line ending it does not know, the wrong number of fields. Returns where it stopped. Each field
// is read as a clean number straight from the text, ending at a delimiter or the end of the row;
// any other field is kept as a view. Most numeric CSV never needs more, and nothing is copied.
// `reserve_bytes`: how much text the rows of `out` are expected to come from.
std::size_t fast_rows(std::string_view text, char delim, std::size_t width, std::size_t pos,
                      std::size_t stop, std::size_t reserve_bytes, std::size_t& line, Rows& out) {
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  const auto is_row_end = [&](std::size_t q) {
    return q == text.size() || text[q] == '\n' ||
           (text[q] == '\r' && (q + 1 == text.size() || text[q + 1] == '\n'));
  };
  const auto after_row_end = [&](std::size_t q) {
    return q == text.size() ? q : text[q] == '\n' ? q + 1 : std::min(q + 2, text.size());
  };
  std::vector<std::vector<double>>& values = out.values;
  for (;;) {
    while (pos < stop &&  // blank lines
           (text[pos] == '\n' ||
            (text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n'))) {
      pos += text[pos] == '\r' ? 2 : 1;
      ++line;
    }
    if (pos >= stop || width == 0) return pos;
    const std::size_t r = out.lines.size();
    bool fast = true;
    std::size_t p = pos, c = 0;
    for (; c < width; ++c) {
      double v;
      const auto [e, ec] = to_double(begin + p, end, v);
      std::size_t q = std::size_t(e - begin);
      const bool clean = ec == std::errc() && q > p && std::isfinite(v) &&
                         (q == text.size() || text[q] == delim || is_row_end(q));
      if (clean) {
        values[c].push_back(v);
      } else {
        q = p;
        while (q < text.size() && text[q] != delim && text[q] != '\n' && text[q] != '"' &&
               text[q] != '\r')
          ++q;
        if (q < text.size() && (text[q] == '"' || (text[q] == '\r' && !is_row_end(q)))) {
          fast = false;
          break;
        }
        values[c].push_back(std::nan(""));
        out.others.push_back({r, c, text.substr(p, q - p)});
      }
      const bool last = c + 1 == width;
      if (is_row_end(q)) {
        if (!last) fast = false;  // too few fields
        p = after_row_end(q);
      } else {                   // a delimiter
        if (last) fast = false;  // too many fields
        p = q + 1;
      }
      if (!fast) {
        ++c;
        break;
      }
    }
    if (!fast) {  // undo this row's fields: the caller reads it some other way
      for (std::size_t k = 0; k < std::min(c, width); ++k)
        values[k].pop_back();
      while (!out.others.empty() && out.others.back().row == r)
        out.others.pop_back();
      return pos;
    }
    out.lines.push_back(line);
    if (r == 0) reserve_rows(out, p - pos, reserve_bytes);
    pos = p;
    ++line;
  }
}

// Appends `part` to `out`, its lines shifted by `line_base`; `part` is left empty.
void append_rows(Rows& out, Rows& part, std::size_t line_base) {
  if (out.lines.empty() && line_base == 0) {
    out = std::move(part);
    return;
  }
  const std::size_t row_base = out.lines.size();
  for (const std::size_t l : part.lines)
    out.lines.push_back(line_base + l);
  for (Other o : part.others) {
    o.row += row_base;
    out.others.push_back(o);
  }
  for (std::size_t c = 0; c < out.values.size(); ++c) {
    out.values[c].insert(out.values[c].end(), part.values[c].begin(), part.values[c].end());
    std::vector<double>().swap(part.values[c]);
  }
  part = Rows{};
}

std::atomic<std::size_t> parallel_reads{0};  // for detail::csv_parallel_reads

// The data rows from `pos` (line `line`) to the end, cut into `threads` spans (of at least
// `min_span` bytes) at line starts and read by fast_rows on as many threads; `out` gets them in
// file order, exactly as one fast_rows over the whole text would give them. False when a span holds
// a row fast_rows cannot read (or a quoted field that crosses a cut): the caller then reads the
// rows in order, and reports any error as it would have.
bool parallel_rows(std::string_view text, char delim, std::size_t width, std::size_t pos,
                   std::size_t line, int threads, std::size_t min_span, Rows& out) {
  const std::size_t spans_wanted =
      std::min(std::size_t(threads), (text.size() - pos) / std::max<std::size_t>(min_span, 1));
  std::vector<std::size_t> cuts{pos};
  for (std::size_t k = 1; k < spans_wanted; ++k) {
    const std::size_t at = pos + (text.size() - pos) / spans_wanted * k;
    const std::size_t nl = text.find('\n', std::max(at, cuts.back()));
    if (nl == std::string_view::npos) break;
    if (nl + 1 < text.size()) cuts.push_back(nl + 1);
  }
  cuts.push_back(text.size());
  const std::size_t spans = cuts.size() - 1;
  std::vector<Rows> parts(spans);
  std::vector<std::size_t> lines(spans, 0);  // the first span counts from `line`, others from 0
  std::vector<char> ok(spans, 0);
  lines[0] = line;
  const auto read = [&](std::size_t i) {
    try {
      parts[i].values.resize(width);
      // The first span's columns get room for every row, so the others append without moving.
      const std::size_t expect = i == 0 ? text.size() - pos : cuts[i + 1] - cuts[i];
      ok[i] = fast_rows(text, delim, width, cuts[i], cuts[i + 1], expect, lines[i], parts[i]) ==
              cuts[i + 1];
    } catch (const std::exception&) {  // (bad_alloc) the read in order then says what it is
      ok[i] = 0;
    }
  };
  detail::run_spans(spans, read);
  if (std::find(ok.begin(), ok.end(), 0) != ok.end()) return false;
  parallel_reads.fetch_add(1, std::memory_order_relaxed);
  std::size_t line_base = 0;  // the first span's lines are already absolute
  for (std::size_t i = 0; i < spans; ++i) {
    append_rows(out, parts[i], line_base);
    line_base += lines[i];
  }
  return true;
}

}  // namespace

std::size_t detail::csv_parallel_reads() {
  return parallel_reads.load(std::memory_order_relaxed);
}

namespace {

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

}  // namespace

Table parse_csv(std::string_view text, const std::string& source, const CsvOptions& options) {
  if (const std::string_view enc = wide_encoding(text); !enc.empty())
    fail(source + ":1:1", "the text is encoded as " + std::string(enc) +
                              ": expected UTF-8 (convert it: iconv -f " + std::string(enc) +
                              " -t UTF-8)");
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
  // Data rows: clean rows by fast_rows (in parallel spans for a large file), any other row by
  // the tokenizer, which gives the exact error where there is one.
  const std::string expected_fields =
      " fields" + std::string(options.header ? " (as in the header)" : " (as in the first row)");
  const std::size_t data_start = tok.position(), data_line = tok.line();
  const int threads = std::max(options.threads, 1);
  Rows read;
  read.values.resize(width);
  std::size_t pos = data_start, line = data_line;
  // One row by the tokenizer, at `pos`; false at the end of the text.
  const auto slow_row = [&] {
    const std::size_t r = read.lines.size();
    if (width > 0) tok.limit_fields(2 * width + 16, std::to_string(width) + expected_fields);
    tok.seek(pos, line);
    if (!tok.next(row)) return false;
    if (t.columns.empty()) {  // no header: the first row sets the width
      width = row.fields.size();
      read.values.resize(width);
      for (std::size_t k = 0; k < width; ++k) {
        Column col;
        col.name = "c" + std::to_string(k);
        col.field = k + 1;
        t.columns.push_back(std::move(col));
      }
    }
    if (row.fields.size() != width)
      fail(source + ":" + std::to_string(row.line) + ":" +
               std::to_string(row.columns[std::min(row.fields.size(), width) - 1]),
           "expected " + std::to_string(width) + expected_fields + ", found " +
               std::to_string(row.fields.size()));
    for (std::size_t k = 0; k < width; ++k) {
      double v;
      if (parse_number(row.fields[k], v) == Parsed::number) {
        read.values[k].push_back(v);
      } else {
        read.values[k].push_back(std::nan(""));
        read.others.push_back({r, k, row.fields[k]});
      }
    }
    read.lines.push_back(row.line);
    if (r == 0) reserve_rows(read, tok.position() - pos, text.size() - pos);
    pos = tok.position();
    line = tok.line();
    return true;
  };
  if (width == 0 && !slow_row()) pos = text.size();
  // Spans of at least a quarter of the threshold: a thread costs more than reading less.
  if (threads > 1 && width > 0 && text.size() - pos >= options.parallel_bytes &&
      parallel_rows(text, options.delimiter, width, pos, line, threads, options.parallel_bytes / 4,
                    read))
    pos = text.size();
  while (pos < text.size()) {
    pos =
        fast_rows(text, options.delimiter, width, pos, text.size(), text.size() - pos, line, read);
    if (pos < text.size() && !slow_row()) break;
  }
  std::vector<std::vector<double>>& values = read.values;
  const std::vector<Other>& others = read.others;
  t.lines = std::move(read.lines);
  if (t.lines.empty())
    fail(
        source + ":" + std::to_string(std::max<std::size_t>(header_line, 1)),
        options.header ? "no data rows after the header" : "the file is empty: expected data rows");

  // Type each column: numeric when most of its non-missing fields are numbers.
  const std::size_t rows = t.lines.size();
  std::vector<std::size_t> missing(width), numbers(width, rows), first_bad(width, rows);
  std::vector<Parsed> bad(width, Parsed::number);
  std::vector<std::size_t> comma_numbers(width, 0);  // fields such as 1,5 (a decimal comma)
  std::string swapped;
  for (const Other& o : others) {  // in row order
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
          ++comma_numbers[o.col];
        }
      }
    }
    if (kind == Parsed::missing) {
      ++missing[o.col];
      --numbers[o.col];
    } else if (kind == Parsed::number) {  // " 5", "+5"
      values[o.col][o.row] = v;
    } else {
      if (kind == Parsed::not_a_number) --numbers[o.col];
      if (first_bad[o.col] == rows) {
        first_bad[o.col] = o.row;
        bad[o.col] = kind;
      }
    }
  }
  std::vector<std::size_t> text_columns;
  for (std::size_t c = 0; c < width; ++c) {
    Column& col = t.columns[c];
    const std::size_t present = rows - missing[c];
    col.numeric = present == 0 || 2 * numbers[c] > present;
    if (!col.numeric && 2 * (numbers[c] + comma_numbers[c]) > present)
      t.notes.push_back({"column " + quote(col.name) +
                             " holds numbers with a decimal comma (such "
                             "as " +
                             quote(first_comma_number(others, c)) + "), read as text",
                         "decimal_comma"});
    if (!col.numeric) {
      text_columns.push_back(c);
      std::vector<double>().swap(values[c]);
      continue;
    }
    col.numbers = std::move(values[c]);
    if (first_bad[c] < rows) {
      const std::size_t r = first_bad[c];
      std::string_view field;
      for (const Other& o : others)
        if (o.row == r && o.col == c) field = o.text;
      if (bad[c] == Parsed::out_of_range)
        fail(t.where(r, col), "the number " + quote(field) + " in column " + quote(col.name) +
                                  " is out of range: expected a finite number");
      fail(t.where(r, col), "expected a number in column " + quote(col.name) +
                                " (a numeric column), found " + quote(field));
    }
  }
  // Text columns: one more pass of the tokenizer, for every field of those columns.
  if (!text_columns.empty()) {
    tok.limit_fields(2 * width + 16, std::to_string(width) + expected_fields);
    tok.seek(data_start, data_line);
    for (const std::size_t c : text_columns)
      t.columns[c].text.reserve(rows);
    for (std::size_t r = 0; r < rows && tok.next(row); ++r)
      for (const std::size_t c : text_columns) {
        Column& col = t.columns[c];
        if (!valid_utf8(row.fields[c]))
          fail(t.where(r, col), "the text in column " +
                                    quote(valid_utf8(col.name) ? col.name : "?") +
                                    " is not valid UTF-8: expected UTF-8 text");
        // A missing value (NA, null, ...) is the empty string, as in numeric columns NaN: never a
        // category named after the token.
        const std::string_view v = trim(row.fields[c]);
        col.text.emplace_back(is_missing(v) ? std::string_view() : v);
      }
  }
  return t;
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  // One open, one pass: pipes and /dev/stdin are read as they come, and a NUL byte stops the
  // read at once (the parser reports where; /dev/zero is not read to the limit).
  InputFile in(path);
  const Bytes text = in.read_all(options.max_bytes, true);
  return parse_csv(text.view(), path, options);
}

}  // namespace chainrule
