// The CSV reader's fast path: clean numeric rows read straight from the text, in parallel spans
// for a large file (csv_rows.hpp).
#include "csv_rows.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <system_error>

#include "chainrule/table.hpp"
#include "chainrule/threads.hpp"
#include "number.hpp"

namespace chainrule::detail {

void reserve_rows(Rows& out, std::size_t first_row_bytes, std::size_t bytes) {
  const std::size_t width = out.values.size();
  if (width == 0) return;
  const std::size_t rows = std::min(bytes / std::max<std::size_t>(first_row_bytes, 1) * 11 / 10 + 1,
                                    bytes / (2 * width) + 1);
  for (auto& v : out.values)
    v.reserve(rows);
}

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

namespace {

// Appends `part` to `out`, its lines shifted by `line_base`; `part` is left empty. The columns
// are copied on `threads` threads, a share of the columns each (the copies, and the first writes
// to the pages out's columns reserved for them, are most of a large file's merge).
void append_rows(Rows& out, Rows& part, std::size_t line_base, int threads) {
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
  const std::size_t width = out.values.size(), n = part.lines.size();
  const auto copy = [&](std::size_t k, std::size_t spans) {
    for (std::size_t c = k; c < width; c += spans) {
      out.values[c].insert(out.values[c].end(), part.values[c].begin(), part.values[c].end());
      std::vector<double>().swap(part.values[c]);
    }
  };
  const std::size_t spans =
      std::min<std::size_t>(std::size_t(std::max(threads, 1)), std::max<std::size_t>(width, 1));
  if (spans > 1 && n * width >= (std::size_t(1) << 16))
    detail::run_spans(spans, [&](std::size_t k) { copy(k, spans); });
  else
    copy(0, 1);
  part = Rows{};
}

std::atomic<std::size_t> parallel_reads{0};  // for detail::csv_parallel_reads

}  // namespace

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
    append_rows(out, parts[i], line_base, threads);
    line_base += lines[i];
  }
  return true;
}

}  // namespace chainrule::detail

namespace chainrule {

std::size_t detail::csv_parallel_reads() {
  return parallel_reads.load(std::memory_order_relaxed);
}

}  // namespace chainrule
