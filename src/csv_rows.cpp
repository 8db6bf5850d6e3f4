// The CSV reader's fast path: clean numeric rows read straight from the text, in parallel spans
// for a large file (csv_rows.hpp).
#include "csv_rows.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "chainrule/table.hpp"
#include "chainrule/threads.hpp"
#include "csv_internal.hpp"
#include "number.hpp"
#include "wide.hpp"

namespace chainrule::detail {

void reserve_rows(Rows& out, std::size_t first_row_bytes, std::size_t bytes) {
  const std::size_t width = out.values.size();
  if (width == 0) return;
  const std::size_t rows = std::min(bytes / std::max<std::size_t>(first_row_bytes, 1) * 11 / 10 + 1,
                                    bytes / (2 * width) + 1);
  for (auto& v : out.values)
    v.reserve(rows);
}

namespace {

// The shuffles that gather a short number's digits, right-aligned, from its first 16 bytes: for
// a '.' at byte i (i == e: none) and the number's end e, byte j of the result is the byte it
// takes (0x80: none, a zero).
struct DigitShuffles {
  alignas(16) unsigned char mask[17][17][16];
  constexpr DigitShuffles() : mask() {
    for (int i = 0; i <= 16; ++i)
      for (int e = i; e <= 16; ++e) {
        int from[16] = {}, n = 0;
        for (int k = 0; k < e && n < 16; ++k)
          if (k != i) from[n++] = k;
        for (int j = 0; j < 16; ++j)
          mask[i][e][j] = j < 16 - n ? 0x80 : static_cast<unsigned char>(from[j - (16 - n)]);
      }
  }
};
constexpr DigitShuffles kDigitShuffles;

// to_double's value for the field [p, p + len) when it is the most common kind: an optional
// '-', then 1 to 15 digits with at most one '.' among them (false for anything else, which
// to_double then reads). Its digits are read 16 bytes at a time, without a branch on their
// number: the same mantissa and power of ten as to_double's, so the same one correctly rounded
// division. Needs 17 readable bytes from p.
__attribute__((target("sse4.1"))) inline bool field_number(const char* p, std::size_t len,
                                                           double& v) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  const bool negative = *p == '-';
  const unsigned n = unsigned(len) - negative;  // bytes after the sign
  if (n - 1 >= 16) return false;                // none, or more than 16
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + negative));
  const __m128i t = _mm_sub_epi8(s, _mm_set1_epi8('0'));
  const unsigned digits =
      unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t)));
  const unsigned dots = unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(s, _mm_set1_epi8('.'))));
  const unsigned field = (1u << n) - 1;
  const unsigned i = std::min(unsigned(__builtin_ctz(dots | 0x10000u)), n);  // the '.', or n
  const bool dot = i < n;
  // Every byte a digit but the '.'; 1 to 15 digits.
  if ((digits & field) != (field & ~(unsigned(dot) << i)) || n - dot - 1 >= 15) return false;
  const __m128i aligned = _mm_shuffle_epi8(
      t, _mm_load_si128(reinterpret_cast<const __m128i*>(kDigitShuffles.mask[i][n])));
  // Pairs, then fours, then eights of digits: the two halves of a 16-digit number.
  const __m128i twos = _mm_maddubs_epi16(
      aligned, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
  const __m128i fours = _mm_madd_epi16(twos, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
  const __m128i eights = _mm_madd_epi16(_mm_packus_epi32(fours, fours),
                                        _mm_setr_epi16(10000, 1, 10000, 1, 0, 0, 0, 0));
  const std::uint64_t m = std::uint64_t(unsigned(_mm_cvtsi128_si32(eights))) * 100000000u +
                          unsigned(_mm_extract_epi32(eights, 1));
  // Converted into a zeroed register: a plain double(m) merges into the register that holds the
  // previous field's value, and waits for its division.
  const double mantissa = _mm_cvtsd_f64(_mm_cvtsi64_sd(_mm_setzero_pd(), std::int64_t(m)));
  const double x = mantissa / kPow10[n - i - dot];  // the digits after the '.'
  // The sign set by its bit, not chosen by a branch: in a column of numbers of both signs that
  // branch went the wrong way half the time, and each time the fields read after it were read
  // again (-0 stays -0, as from_chars gives it).
  v = _mm_cvtsd_f64(_mm_or_pd(
      _mm_set_sd(x),
      _mm_castsi128_pd(_mm_cvtsi64_si128(static_cast<long long>(std::uint64_t(negative) << 63)))));
  return true;
}

// The bytes of v equal to a, b or c, one bit each.
__attribute__((target("avx2"))) inline std::uint32_t bytes_equal(__m256i v, __m256i a, __m256i b,
                                                                 __m256i c) {
  return std::uint32_t(_mm256_movemask_epi8(_mm256_or_si256(
      _mm256_or_si256(_mm256_cmpeq_epi8(v, a), _mm256_cmpeq_epi8(v, b)), _mm256_cmpeq_epi8(v, c))));
}

// The separators (`delim`, '\n', '\r') among the 64 bytes from w, one bit each.
__attribute__((target("avx2"))) inline std::uint64_t separators_of_64(const char* w, char delim) {
  const __m256i d = _mm256_set1_epi8(delim), n = _mm256_set1_epi8('\n'), r = _mm256_set1_epi8('\r');
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
  return bytes_equal(lo, d, n, r) | std::uint64_t(bytes_equal(hi, d, n, r)) << 32;
}

// fast_rows's loop. With Wide, a row is first read by finding each field's end among the
// separators of 64 bytes at a time, so that the next field's start never waits for this one's
// digits, and short numbers are read 16 bytes at a time (field_number); a row that way cannot
// read goes field by field, as without Wide.
template <bool Wide>
struct FastRows {
  static void run(std::string_view text, char delim, std::size_t width, std::size_t& pos,
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
    std::vector<PagedVector<double>>& values = out.values;
    // Wide: the separators from byte `base` on, of a window of 64 bytes.
    std::size_t base = 0;
    std::uint64_t seps = 0;
    // Only under a delimiter that cannot be part of a number does a number end at the first
    // separator after its start, as the field-by-field read requires.
    const bool separate = !std::isalnum(static_cast<unsigned char>(delim)) && delim != '.' &&
                          delim != '+' && delim != '-' && delim != '"' && delim != '\n' &&
                          delim != '\r';
    // The separators from byte p on (bit 0: p), 0 when there are none in the 64 bytes from p or
    // the text ends before them.
    const auto separators_from = [&](std::size_t p) -> std::uint64_t {
      if (p - base < 64) {
        if (const std::uint64_t b = seps >> (p - base)) return b;
      }
      if (p + 64 > text.size()) return 0;
      base = p;
      seps = separators_of_64(begin + p, delim);
      return seps;
    };
    // Reads the row at pos whole (its values appended, pos at the next row) or not at all.
    const auto wide_row = [&](std::size_t& row_start, std::size_t r) {
      std::size_t p = row_start, c = 0;
      for (; c < width; ++c) {
        const std::uint64_t b = separators_from(p);
        if (b == 0) break;
        const std::size_t s = p + std::size_t(__builtin_ctzll(b));
        const char ch = text[s];
        const bool crlf = ch == '\r' && s + 1 < text.size() && text[s + 1] == '\n';
        if (c + 1 < width ? ch != delim : ch != '\n' && !crlf) break;
        double v;
        if (!(p + 17 <= text.size() && field_number(begin + p, s - p, v))) {
          const auto [to, ec] = to_double(begin + p, begin + s, v);
          if (s == p || ec != std::errc() || to != begin + s || !std::isfinite(v)) break;
        }
        values[c].push_back(v);
        p = s + 1 + crlf;
      }
      if (c < width) {
        for (std::size_t k = 0; k < c; ++k)
          values[k].pop_back();
        return false;
      }
      out.lines.push_back(line);
      if (r == 0) reserve_rows(out, p - row_start, reserve_bytes);
      row_start = p;
      ++line;
      return true;
    };
    for (;;) {
      while (pos < stop &&  // blank lines
             (text[pos] == '\n' ||
              (text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n'))) {
        pos += text[pos] == '\r' ? 2 : 1;
        ++line;
      }
      if (pos >= stop || width == 0) return;
      const std::size_t r = out.lines.size();
      if constexpr (Wide) {
        if (separate && wide_row(pos, r)) continue;
      }
      bool fast = true;
      std::size_t p = pos, c = 0;
      for (; c < width; ++c) {
        double v;
        const auto [e, ec] = to_double(begin + p, end, v);
        std::size_t q = ec == std::errc() && std::isfinite(v) ? std::size_t(e - begin) : p;
        const bool clean = q > p && (q == text.size() || text[q] == delim || is_row_end(q));
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
        return;
      }
      out.lines.push_back(line);
      if (r == 0) reserve_rows(out, p - pos, reserve_bytes);
      pos = p;
      ++line;
    }
  }
};

// FastRows<true> with everything it calls inlined into one function compiled for AVX2 (which
// field_number's SSE4.1 is part of).
__attribute__((target("avx2"), flatten)) void fast_rows_avx2(std::string_view text, char delim,
                                                             std::size_t width, std::size_t& pos,
                                                             std::size_t stop,
                                                             std::size_t reserve_bytes,
                                                             std::size_t& line, Rows& out) {
  FastRows<true>::run(text, delim, width, pos, stop, reserve_bytes, line, out);
}

}  // namespace

std::size_t fast_rows(std::string_view text, char delim, std::size_t width, std::size_t pos,
                      std::size_t stop, std::size_t reserve_bytes, std::size_t& line, Rows& out) {
  if (cpu_width() == Width::baseline)
    FastRows<false>::run(text, delim, width, pos, stop, reserve_bytes, line, out);
  else
    fast_rows_avx2(text, delim, width, pos, stop, reserve_bytes, line, out);
  return pos;
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
      PagedVector<double>().swap(part.values[c]);
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

bool block_rows(const RangeFile& file, const BlockRows& how,
                const std::function<bool(Rows&, std::size_t, std::string_view)>& f) {
  const std::size_t size = std::min(file.size(), how.end), width = how.width;
  std::optional<WorkerPool> own;  // threads kept from block to block
  WorkerPool& pool = how.pool ? *how.pool : own.emplace();
  // Each thread's rows, kept from block to block: their room is reused, never faulted in again.
  std::vector<Rows> parts(static_cast<std::size_t>(std::max(how.threads, 1)));
  std::vector<std::size_t> newlines(parts.size());
  std::vector<char> ok(parts.size());
  std::vector<std::size_t> cuts;
  // One buffer for every block, never cleared: the file's bytes are its only writes.
  const std::size_t block = std::min(std::max<std::size_t>(how.block_bytes, 1), size);
  const std::unique_ptr<char[]> buf(new char[block]);
  std::size_t at = how.start, line = how.line, row = 0;
  while (at < size) {
    const std::size_t end = std::min(size, at + block);
    // A block read in two halves on two threads, each looked through for a NUL byte (the copy
    // out of the page cache was a tenth of a large file's read, on one thread while the others
    // waited).
    const bool halves = parts.size() > 1 && end - at >= how.parallel_bytes;
    const std::size_t half = halves ? (end - at) / 2 : end - at;
    std::size_t half_got[2] = {};
    bool half_nul[2] = {};
    std::exception_ptr half_error[2];
    auto read_half = [&](std::size_t i) {
      const std::size_t from = at + i * half, to = i == 0 ? at + half : end;
      try {
        half_got[i] = file.read(from, to, buf.get() + i * half);
        half_nul[i] = std::memchr(buf.get() + i * half, 0, half_got[i]) != nullptr;
      } catch (...) {  // (a read error) thrown below, on the calling thread
        half_error[i] = std::current_exception();
      }
    };
    pool.run(halves ? 2 : 1, read_half);
    for (const std::exception_ptr& e : half_error)
      if (e) std::rethrow_exception(e);
    // (A first half cut short, the file shrinking as it is read: what it holds.)
    const std::size_t got_bytes = half_got[0] < half ? half_got[0] : half_got[0] + half_got[1];
    if (half_nul[0] || (half_got[0] == half && half_nul[1])) return false;
    const std::string_view got(buf.get(), got_bytes);
    std::size_t take = got.size();  // whole rows: to the last line end, or the end of the file
    if (end < size) {
      const std::size_t nl = got.rfind('\n');
      if (nl == std::string::npos) return false;  // a row longer than a block
      take = nl + 1;
    }
    const std::string_view text(buf.get(), take);
    // One span per thread, cut at line starts (a small block in one).
    cuts.assign(1, 0);
    const std::size_t spans = take >= how.parallel_bytes ? parts.size() : 1;
    for (std::size_t k = 1; k < spans; ++k) {
      const std::size_t nl = text.find('\n', std::max(take / spans * k, cuts.back()));
      if (nl == std::string_view::npos || nl + 1 >= take) break;
      cuts.push_back(nl + 1);
    }
    cuts.push_back(take);
    const std::size_t n = cuts.size() - 1;
    auto read = [&](std::size_t i) {
      Rows& p = parts[i];
      p.values.resize(width);
      for (PagedVector<double>& v : p.values)
        v.clear();
      p.others.clear();
      p.lines.clear();
      std::size_t l = 0;  // lines counted from the span's first
      try {
        ok[i] = fast_rows(text, how.delimiter, width, cuts[i], cuts[i + 1], cuts[i + 1] - cuts[i],
                          l, p) == cuts[i + 1];
      } catch (const std::exception&) {  // (bad_alloc) read_csv then says what it is
        ok[i] = 0;
      }
      newlines[i] = l;  // a span ends at a line end: each of its lines ends with one '\n'
    };
    pool.run(n, read);
    if (std::find(ok.begin(), ok.begin() + long(n), 0) != ok.begin() + long(n)) return false;
    for (std::size_t i = 0; i < n; ++i) {
      Rows& part = parts[i];
      for (std::size_t& l : part.lines)
        l += line;
      // The fields that are not plain numbers, as type_columns reads them: " 5" and "+5" are
      // numbers, NA and the empty field missing; text only in the target column.
      for (const Other& o : part.others) {
        double v;
        const Parsed kind = parse_number(o.text, v);
        if (kind == Parsed::number) {
          part.values[o.col][o.row] = v;
        } else if (kind != Parsed::missing) {
          if (kind == Parsed::out_of_range || o.col != how.target) return false;
          if (how.target_labels) ++*how.target_labels;
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

}  // namespace chainrule::detail

namespace chainrule {

std::size_t detail::csv_parallel_reads() {
  return parallel_reads.load(std::memory_order_relaxed);
}

}  // namespace chainrule
