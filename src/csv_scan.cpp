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
  return detail::block_rows(*file_,
                            {.start = data_start_,
                             .line = data_line_,
                             .width = header_.cols(),
                             .delimiter = delimiter_,
                             .threads = threads_,
                             .block_bytes = block_bytes_,
                             .parallel_bytes = parallel_bytes_,
                             .target = target_,
                             .target_labels = target_labels},
                            f);
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
        PagedVector<double>& v = part.values[s->target_];
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
  PagedVector<double>().swap(col.numbers);
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
