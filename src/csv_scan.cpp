// A numeric CSV file read in passes, in blocks of rows straight from the file (csv_scan.hpp).
// Every block is read by the CSV reader's fast path (csv_rows.hpp), so a value is the double
// read_csv gives for the same field; anything that path cannot read alone sends the file back to
// read_csv, which reports errors where they are.
#include "chainrule/csv_scan.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "chainrule/threads.hpp"
#include "csv_internal.hpp"
#include "csv_rows.hpp"
#include "number.hpp"

namespace chainrule {

CsvScan::~CsvScan() = default;

bool CsvScan::large(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && std::uint64_t(st.st_size) >= kLargeBytes;
}

bool CsvScan::blocks(const std::function<bool(detail::Rows&, std::size_t, std::string_view)>& f,
                     std::size_t* target_labels) const {
  const std::size_t size = file_->size(), width = header_.cols();
  // Each thread's rows, kept from block to block: their room is reused, never faulted in again.
  std::vector<detail::Rows> parts(static_cast<std::size_t>(threads_));
  std::vector<std::size_t> newlines(parts.size());
  std::vector<char> ok(parts.size());
  std::vector<std::size_t> cuts;
  std::string buf;
  std::size_t at = data_start_, line = data_line_, row = 0;
  while (at < size) {
    buf.clear();
    const std::size_t end = std::min(size, at + block_bytes_);
    file_->read(at, end, buf);
    std::size_t take = buf.size();  // whole rows: to the last line end, or the end of the file
    if (end < size) {
      const std::size_t nl = buf.rfind('\n');
      if (nl == std::string::npos) return false;  // a row longer than a block
      take = nl + 1;
    }
    const std::string_view text(buf.data(), take);
    if (text.find('\0') != std::string_view::npos) return false;
    // One span per thread, cut at line starts (a small block in one).
    cuts.assign(1, 0);
    const std::size_t spans = take >= parallel_bytes_ ? parts.size() : 1;
    for (std::size_t k = 1; k < spans; ++k) {
      const std::size_t nl = text.find('\n', std::max(take / spans * k, cuts.back()));
      if (nl == std::string_view::npos || nl + 1 >= take) break;
      cuts.push_back(nl + 1);
    }
    cuts.push_back(take);
    const std::size_t n = cuts.size() - 1;
    detail::run_spans(n, [&](std::size_t i) {
      detail::Rows& p = parts[i];
      p.values.resize(width);
      for (std::vector<double>& v : p.values)
        v.clear();
      p.others.clear();
      p.lines.clear();
      std::size_t l = 0;  // lines counted from the span's first
      try {
        ok[i] = detail::fast_rows(text, delimiter_, width, cuts[i], cuts[i + 1],
                                  cuts[i + 1] - cuts[i], l, p) == cuts[i + 1];
      } catch (const std::exception&) {  // (bad_alloc) read_csv then says what it is
        ok[i] = 0;
      }
      newlines[i] = std::size_t(
          std::count(text.begin() + long(cuts[i]), text.begin() + long(cuts[i + 1]), '\n'));
    });
    if (std::find(ok.begin(), ok.begin() + long(n), 0) != ok.begin() + long(n)) return false;
    for (std::size_t i = 0; i < n; ++i) {
      detail::Rows& part = parts[i];
      for (std::size_t& l : part.lines)
        l += line;
      // The fields that are not plain numbers, as type_columns reads them: " 5" and "+5" are
      // numbers, NA and the empty field missing; text only in the target column.
      for (const detail::Other& o : part.others) {
        double v;
        const detail::Parsed kind = detail::parse_number(o.text, v);
        if (kind == detail::Parsed::number) {
          part.values[o.col][o.row] = v;
        } else if (kind != detail::Parsed::missing) {
          if (kind == detail::Parsed::out_of_range || o.col != target_) return false;
          if (target_labels) ++*target_labels;
        }
      }
      if (!f(part, row, text.substr(cuts[i], cuts[i + 1] - cuts[i]))) return false;
      row += part.lines.size();
      line += newlines[i];
    }
    at += take;
  }
  return true;
}

std::unique_ptr<CsvScan> CsvScan::open(const std::string& path, const std::string& target,
                                       const CsvOptions& options) {
  if (options.decimal_comma) return nullptr;
  std::unique_ptr<CsvScan> s(new CsvScan());
  s->file_ = detail::RangeFile::open_plain(path);
  if (!s->file_) return nullptr;
  if (options.max_bytes > 0 && s->file_->size() > options.max_bytes)
    throw LimitError(path + ": the file holds " + format_bytes(s->file_->size()) +
                         ", more than the " + format_bytes(options.max_bytes) + " allowed",
                     "max_input_bytes");
  s->header_.source = path;
  detail::read_head(*s->file_, path, options, s->header_, s->data_start_, s->data_line_);
  const long t = s->header_.find(
      target.empty() && s->header_.cols() > 0 ? s->header_.columns.back().name : target);
  if (t < 0 || s->header_.cols() < 2) return nullptr;
  s->target_ = std::size_t(t);
  s->delimiter_ = options.delimiter;
  s->threads_ = std::max(options.threads, 1);
  s->block_bytes_ = std::max(options.scan_block_bytes, std::size_t(1) << 16);
  s->parallel_bytes_ = options.parallel_bytes;
  s->max_bytes_ = options.max_bytes;
  for (std::size_t c = 0; c < s->header_.cols(); ++c)
    if (c != s->target_) {
      s->names_.push_back(s->header_.columns[c].name);
      s->columns_.push_back(c);
    }

  // The first pass: every field checked, the target's numbers (NaN where text or missing) and
  // the line of each row, kept as a first line while the rows follow each other line by line.
  Table& y = s->targets_;
  y.source = path;
  Column& col = y.columns.emplace_back();
  col.name = s->header_.columns[s->target_].name;
  col.field = s->target_ + 1;
  std::size_t labels = 0, missing = 0;
  const bool read = s->blocks(
      [&](detail::Rows& part, std::size_t first, std::string_view) {
        std::vector<double>& v = part.values[s->target_];
        s->check_room((col.numbers.size() + v.size() + y.lines.size()) * sizeof(double));
        col.numbers.insert(col.numbers.end(), v.begin(), v.end());
        for (std::size_t i = 0; i < part.lines.size(); ++i) {
          if (first + i == 0) y.first_line = part.lines[0];
          if (y.lines.empty() && part.lines[i] != y.first_line + first + i) {
            for (std::size_t r = 0; r < first + i; ++r)
              y.lines.push_back(y.first_line + r);
            y.first_line = 0;
          }
          if (!y.lines.empty()) y.lines.push_back(part.lines[i]);
        }
        for (const detail::Other& o : part.others)
          missing += o.col == s->target_ && std::isnan(v[o.row]);
        return true;
      },
      &labels);
  s->rows_ = col.numbers.size();
  if (!read || s->rows_ == 0) return nullptr;
  missing -= labels;  // the labels are NaN too
  // Typed as read_csv types it: numbers when most present values are; then every one must be.
  const std::size_t present = s->rows_ - missing;
  if (present == 0 || 2 * (present - labels) > present) {
    if (labels > 0) return nullptr;  // read_csv says which field is not a number
    return s;
  }
  if (options.delimiter != ',') return nullptr;  // text that may be decimal commas: read_csv's note
  return s->read_target_labels() ? std::move(s) : nullptr;
}

// A text target: one more pass for its fields, each row split at its delimiters (the first pass
// found no quote), trimmed, missing ones empty, as read_csv's text columns.
bool CsvScan::read_target_labels() {
  Column& col = targets_.columns[0];
  std::vector<double>().swap(col.numbers);
  col.numeric = false;
  col.text.reserve(rows_);
  return blocks([&](detail::Rows&, std::size_t, std::string_view text) {
           for (std::size_t p = 0; p < text.size();) {
             std::size_t e = text.find('\n', p);
             e = e == std::string_view::npos ? text.size() : e;
             std::string_view line = text.substr(p, e - p);
             p = e + 1;
             if (line.empty() || line == "\r") continue;  // a blank line
             if (line.back() == '\r') line.remove_suffix(1);
             check_room(col.text.size() * sizeof(std::string));
             for (std::size_t k = 0; k < target_; ++k)
               line.remove_prefix(line.find(delimiter_) + 1);
             const std::string_view v = detail::trim(line.substr(0, line.find(delimiter_)));
             if (!detail::valid_utf8(v)) return false;  // read_csv says where
             col.text.emplace_back(is_missing(v) ? std::string_view() : v);
           }
           return true;
         }) &&
         col.text.size() == rows_;
}

long CsvScan::find(const std::string& name) const {
  const long c = header_.find(name);
  return c < 0 || std::size_t(c) == target_ ? -1 : std::size_t(c) < target_ ? c : c - 1;
}

void CsvScan::check_room(std::uint64_t bytes) const {
  const std::uint64_t limit = max_bytes_ > 0 ? max_bytes_ : default_max_input_bytes();
  if (bytes > limit)
    throw LimitError(source() + ": its target column alone takes more than the " +
                         format_bytes(limit) + " an input may take",
                     "max_input_bytes");
}

void CsvScan::changed() const {
  throw DataError(source() +
                  ": the file changed while it was read (its size, time or rows differ from the "
                  "first pass): expected it to stay as it was until training starts");
}

void CsvScan::scan(const std::function<void(const Block&)>& visit) const {
  if (!file_->unchanged()) changed();
  std::size_t rows = 0;
  Block b;
  b.columns_.resize(columns_.size());
  const bool read = blocks([&](detail::Rows& part, std::size_t first, std::string_view) {
    b.first_row = first;
    b.rows = part.lines.size();
    if (first + b.rows > rows_) return false;
    for (std::size_t j = 0; j < columns_.size(); ++j)
      b.columns_[j] = part.values[columns_[j]];
    visit(b);
    rows += b.rows;
    return true;
  });
  if (!read || rows != rows_ || !file_->unchanged()) changed();
}

double CsvScan::value(std::size_t row, std::size_t j) const {
  double v = std::nan("");
  scan([&](const Block& b) {
    if (row >= b.first_row && row < b.first_row + b.rows) v = b.values(j)[row - b.first_row];
  });
  return v;
}

std::string CsvScan::where(std::size_t row, std::size_t j) const {
  return targets_.where(row, header_.columns[columns_[j]]);  // its lines, the column's field
}

}  // namespace chainrule
