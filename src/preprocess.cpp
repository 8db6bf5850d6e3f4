#include "chainrule/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "chainrule/error.hpp"
#include "chainrule/group.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"
#include "enum_names.hpp"
#include "prefault.hpp"
#include "wide.hpp"

namespace chainrule {

namespace {

const Column& column_of(const Table& t, const std::string& name, const std::string& role) {
  const long c = t.find(name);
  if (c < 0) throw DataError(t.source + ": no column '" + name + "' (" + role + ")");
  return t.columns[std::size_t(c)];
}

// One input column: a table's, a column of a matrix in memory, or a feature of a file read in
// passes (the last two numbers only).
struct ColumnRef {
  const Table* table;
  const Column* column = nullptr;      // a table's column, or
  const MatrixView* matrix = nullptr;  // a matrix's column j, or
  Index j = 0;
  std::string name;
  const CsvScan* scan = nullptr;  // the file's feature j

  bool numeric() const { return column == nullptr || column->numeric; }
  /// Row r's value; for a scan a pass over the file (messages only: the loops below read scans
  /// block by block).
  double number(std::size_t r) const {
    return column ? column->numbers[r]
           : scan ? scan->value(r, std::size_t(j))
                  : matrix->at(Index(r), j);
  }
  const std::string& text(std::size_t r) const { return column->text[r]; }
  std::string where(std::size_t r) const {
    return column ? table->where(r, *column)
           : scan ? scan->where(r, std::size_t(j))
                  : table->source + ": row " + std::to_string(r + 1) + ", column '" + name + "'";
  }
};

// A scan is read in row order: the rows it is asked for must ascend (Dataset's contract).
void check_ascending(const Dataset& d, std::span<const std::size_t> rows) {
  if (d.scan() && !std::is_sorted(rows.begin(), rows.end()))
    throw ConfigError(d.source() +
                      ": rows of a file read in passes must be given in ascending order");
}

// Calls f(k, v, r) for every value v of `rows` (ascending) in every feature cols[k].j of a file
// read in passes: in blocks of rows, each column's values in row order.
template <class F>
void scan_values(const CsvScan& scan, const std::vector<ColumnRef>& cols,
                 std::span<const std::size_t> rows, F&& f) {
  std::size_t i = 0;
  scan.scan([&](const CsvScan::Block& b) {
    const std::size_t from = i;
    while (i < rows.size() && rows[i] < b.first_row + b.rows)
      ++i;
    for (std::size_t k = 0; k < cols.size(); ++k) {
      const std::span<const double> v = b.values(std::size_t(cols[k].j));
      for (std::size_t n = from; n < i; ++n)
        f(k, v[rows[n] - b.first_row], rows[n]);
    }
  });
}

// Every column a dataset's features may come from, in order.
std::vector<ColumnRef> columns_of(const Dataset& d) {
  std::vector<ColumnRef> out;
  if (const MatrixView* m = d.matrix()) {
    for (Index j = 0; j < m->cols; ++j)
      out.push_back({&d.table(), nullptr, m, j, d.feature_names()[std::size_t(j)]});
    return out;
  }
  if (const CsvScan* s = d.scan()) {
    for (std::size_t j = 0; j < s->feature_names().size(); ++j)
      out.push_back({&d.table(), nullptr, nullptr, Index(j), s->feature_names()[j], s});
    return out;
  }
  for (const Column& c : d.table().columns)
    out.push_back({&d.table(), &c, nullptr, 0, c.name});
  return out;
}

// The column called `name` (or of the index it spells, for a table).
ColumnRef find_column(const Dataset& d, const std::string& name, const std::string& role) {
  if (d.matrix() == nullptr && d.scan() == nullptr) {
    const Column& c = column_of(d.table(), name, role);
    return {&d.table(), &c, nullptr, 0, c.name};
  }
  if (d.scan() && name == d.table().columns[0].name)  // the target (to say it cannot be dropped)
    return {&d.table(), &d.table().columns[0], nullptr, 0, name};
  const long j = d.scan() ? d.scan()->find(name) : -1;  // a name, or an index in the file
  for (const ColumnRef& c : columns_of(d))
    if (c.name == name || c.j == j) return c;
  throw DataError(d.source() + ": no column '" + name + "' (" + role + ")");
}

// A missing value: an error unless imputed (PreprocessOptions::impute names the fix).
[[noreturn]] void missing_value(const ColumnRef& c, std::size_t row) {
  // In a matrix a missing value is a NaN: said so, as scikit-learn's checks expect of a message.
  throw DataError(c.where(row) + ": missing value" + (c.matrix ? " (NaN)" : "") + " in column '" +
                      c.name + "': expected a " + (c.numeric() ? "number" : "value"),
                  c.numeric() ? "impute" : "impute_text");
}
[[noreturn]] void missing_value(const Table& t, std::size_t row, const Column& c) {
  missing_value(ColumnRef{&t, &c, nullptr, 0, c.name}, row);
}

// What a numeric feature's preprocessing is fitted from: the sum, extremes and count of its
// values, the sum of their squared deviations from the mean (a second pass, as the variance is
// computed), and the first row whose value is missing.
struct NumberStats {
  double sum = 0, lo = INFINITY, hi = -INFINITY, sq = 0;
  std::size_t n = 0;
  std::optional<std::size_t> first_missing;
  std::optional<std::size_t> first_infinite;  // a matrix's ±inf (a table refuses them when read)
  double mean() const { return sum / double(n); }
  void add(double v, std::size_t r) {
    if (std::isnan(v)) {
      if (!first_missing) first_missing = r;
      return;
    }
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++n;
  }
  void add_square(double v, double mean) {
    if (!std::isnan(v)) sq += (v - mean) * (v - mean);
  }
};

// The statistics of a matrix's columns in two passes over its rows, each row read in order:
// per column, the values are added in the same (row) order as one column at a time would. The
// accumulators are kept column by column in arrays, and a missing value leaves them as they are
// (a select, not a branch), so that the loop over a row's columns vectorizes.
// Several processes: the first pass's sums, counts and extremes of every process's rows.
void reduce_first_pass(const Group* g, std::vector<double>& sum, std::vector<double>& n,
                       std::vector<double>& lo, std::vector<double>& hi) {
  if (!g) return;
  const std::size_t K = sum.size();
  std::vector<double> add(sum);
  add.insert(add.end(), n.begin(), n.end());
  g->sum(add);
  std::vector<double> most(hi);
  for (const double v : lo)
    most.push_back(-v);
  g->max(most);
  for (std::size_t k = 0; k < K; ++k) {
    sum[k] = add[k];
    n[k] = add[K + k];
    hi[k] = most[k];
    lo[k] = -most[K + k];
  }
}

// What a pass over a matrix's columns reads and writes (matrix_stats): per used column k, the
// sum, extremes, count and squared deviations from `mean`.
template <class E>
struct StatsPass {
  const MatrixView& m;
  const E* base;
  std::span<const std::size_t> rows;
  const std::vector<ColumnRef>& cols;
  const Index* offset;  // of each used column within its row
  bool dense;           // the used columns are 0, 1, ... of a row-major matrix
  double *sum, *lo, *hi, *sq;
  const double* mean;
  std::uint64_t* n;
  NumberStats* st;
};

// Row r's used values, scaled, into row.
template <class E>
[[gnu::always_inline]] inline void read_row(const StatsPass<E>& p, std::size_t r, double* row) {
  const std::size_t K = p.cols.size();
  if (p.m.row_major) {
    const E* x = p.base + p.m.offset(Index(r), 0);
    if (p.dense)
      for (std::size_t k = 0; k < K; ++k)
        row[k] = double(x[k]) * p.m.scale;
    else
      for (std::size_t k = 0; k < K; ++k)
        row[k] = double(x[p.offset[k]]) * p.m.scale;
  } else {
    for (std::size_t k = 0; k < K; ++k)
      row[k] = double(p.base[p.m.offset(Index(r), p.cols[k].j)]) * p.m.scale;
  }
}

// The first pass: sums, extremes, counts, the first gaps.
template <class E>
[[gnu::always_inline]] inline void first_pass(const StatsPass<E>& p) {
  const std::size_t K = p.cols.size();
  if (p.dense && p.m.scale == 1) {
    // The common case (a caller's float or double matrix, IDX bytes): the values as they are, no
    // row of doubles in between. The extremes are kept in E (the extremes of values are values:
    // the same as in double), the sum in double, each column's in row order as below; a NaN is
    // skipped and counted apart.
    constexpr E top = std::numeric_limits<E>::has_infinity ? std::numeric_limits<E>::infinity()
                                                           : std::numeric_limits<E>::max();
    std::vector<E> elo(K, top),
        ehi(K, std::numeric_limits<E>::has_infinity ? -top : std::numeric_limits<E>::lowest());
    std::vector<std::uint64_t> missing_count(K, 0);
    double* sum = p.sum;
    // Restricted: a store to E = unsigned char may alias anything, and without it the extremes'
    // loop over IDX bytes ran a byte at a time, reloading its pointers after every store (perf
    // annotate): `chainrule train` on Fashion-MNIST "prepared in" 0.19 → 0.13-0.14 s.
    E* __restrict lo = elo.data();
    E* __restrict hi = ehi.data();
    for (const std::size_t r : p.rows) {
      const E* __restrict x = p.base + p.m.offset(Index(r), 0);
      // The extremes and whether the row has a NaN, then the sums: two loops that vectorize (one
      // with the row's and the sums' widths mixed, or with a NaN test in the sum, did not).
      unsigned missing = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const E v = x[k];
        lo[k] = v < lo[k] ? v : lo[k];
        hi[k] = v > hi[k] ? v : hi[k];
        missing |= unsigned(v != v);
      }
      if (!missing) {
        for (std::size_t k = 0; k < K; ++k)
          sum[k] += double(x[k]);
        continue;
      }
      for (std::size_t k = 0; k < K; ++k)
        if (x[k] == x[k]) {
          sum[k] += double(x[k]);
        } else {
          ++missing_count[k];
          if (!p.st[k].first_missing) p.st[k].first_missing = r;
        }
    }
    for (std::size_t k = 0; k < K; ++k) {
      p.n[k] = p.rows.size() - missing_count[k];
      p.lo[k] = p.n[k] ? double(elo[k]) : INFINITY;
      p.hi[k] = p.n[k] ? double(ehi[k]) : -INFINITY;
    }
    return;
  }
  std::vector<double> buffer(K);
  double* row = buffer.data();
  double *sum = p.sum, *lo = p.lo, *hi = p.hi;
  std::uint64_t* n = p.n;
  for (const std::size_t r : p.rows) {
    read_row(p, r, row);
    bool missing = false;
    for (std::size_t k = 0; k < K; ++k) {
      const double v = row[k];
      const bool ok = v == v;
      sum[k] = ok ? sum[k] + v : sum[k];
      lo[k] = ok ? std::min(lo[k], v) : lo[k];
      hi[k] = ok ? std::max(hi[k], v) : hi[k];
      n[k] += ok;
      missing |= !ok;
    }
    if (missing)
      for (std::size_t k = 0; k < K; ++k)
        if (std::isnan(row[k]) && !p.st[k].first_missing) p.st[k].first_missing = r;
  }
}

// The second pass: the squared deviations from the mean.
template <class E>
[[gnu::always_inline]] inline void spread_pass(const StatsPass<E>& p) {
  const std::size_t K = p.cols.size();
  std::vector<double> buffer(K);
  double* row = buffer.data();
  double* sq = p.sq;
  for (const std::size_t r : p.rows) {
    read_row(p, r, row);
    for (std::size_t k = 0; k < K; ++k) {
      const double d = row[k] - p.mean[k];
      sq[k] = row[k] == row[k] ? sq[k] + d * d : sq[k];
    }
  }
}

// Each pass in the widest instruction set the CPU has (wide.hpp): the column-wise loops round
// every operation alike (no reassociation, no contraction), so all versions give the same bits.
// Fashion-MNIST's 47 M values: 29 ms on SSE2, 25 on AVX-512.
template <bool Spread>
struct StatsBody {
  template <class E>
  [[gnu::always_inline]] static void run(const StatsPass<E>& p) {
    if constexpr (Spread)
      spread_pass(p);
    else
      first_pass(p);
  }
};
template <class E, bool Spread>
void run_stats_pass(const StatsPass<E>& p) {
  detail::run_wide<StatsBody<Spread>>(p);
}

template <class E>
void matrix_stats(const MatrixView& m, const std::vector<ColumnRef>& cols,
                  std::span<const std::size_t> rows, std::vector<NumberStats>& st, const Group* g,
                  bool spread) {
  const E* base = static_cast<const E*>(m.data);
  const std::size_t K = cols.size();
  std::vector<Index> offset(K);
  for (std::size_t k = 0; k < K; ++k)
    offset[k] = m.offset(0, cols[k].j) - m.offset(0, 0);
  const bool dense = m.row_major && (K == 0 || offset[K - 1] == Index(K) - 1);  // 0, 1, ...
  std::vector<double> sum(K, 0), lo(K, INFINITY), hi(K, -INFINITY), sq(K, 0), mean(K);
  std::vector<std::uint64_t> n(K, 0);
  const StatsPass<E> pass{m,           base,       rows,      cols,      offset.data(),
                          dense,       sum.data(), lo.data(), hi.data(), sq.data(),
                          mean.data(), n.data(),   st.data()};
  run_stats_pass<E, false>(pass);
  // An infinite value (only a matrix can hold one) shows in the extremes; its first row is then
  // looked for in that column alone, before the extremes are merged with other processes'.
  for (std::size_t k = 0; k < K; ++k)
    if (std::isinf(lo[k]) || std::isinf(hi[k]))
      for (const std::size_t r : rows)
        if (std::isinf(double(base[m.offset(Index(r), cols[k].j)]) * m.scale)) {
          st[k].first_infinite = r;
          break;
        }
  if (g) {
    std::vector<double> count(n.begin(), n.end());
    reduce_first_pass(g, sum, count, lo, hi);
    for (std::size_t k = 0; k < K; ++k)
      n[k] = std::uint64_t(count[k]);
  }
  for (std::size_t k = 0; k < K; ++k)
    mean[k] = sum[k] / double(n[k]);
  if (spread) run_stats_pass<E, true>(pass);
  if (g && spread) g->sum(sq);
  for (std::size_t k = 0; k < K; ++k) {
    st[k].sum = sum[k];
    st[k].lo = lo[k];
    st[k].hi = hi[k];
    st[k].sq = sq[k];
    st[k].n = std::size_t(n[k]);
  }
}

// A table's numeric columns G at a time, row by row: each column's values are still taken in row
// order, with NumberStats::add's operations (the same bits as one column at a time), but the G
// columns' chains of additions overlap instead of each waiting for the one before (W5's 12 M
// values: 45 ms one column at a time). With `mean`, the squared deviations (add_square) instead.
template <std::size_t G>
void table_group(const double* const* x, std::span<const std::size_t> rows, NumberStats* const* st,
                 const double* mean) {
  double sum[G], lo[G], hi[G], sq[G], m[G];
  std::size_t n[G];
  for (std::size_t j = 0; j < G; ++j) {
    sum[j] = st[j]->sum;
    lo[j] = st[j]->lo;
    hi[j] = st[j]->hi;
    sq[j] = st[j]->sq;
    n[j] = st[j]->n;
    m[j] = mean ? mean[j] : 0;
  }
  if (mean) {
    for (const std::size_t r : rows)
      for (std::size_t j = 0; j < G; ++j) {
        const double v = x[j][r], d = v - m[j];
        sq[j] = v == v ? sq[j] + d * d : sq[j];
      }
  } else {
    for (const std::size_t r : rows)
      for (std::size_t j = 0; j < G; ++j) {
        const double v = x[j][r];
        if (v != v) [[unlikely]] {
          if (!st[j]->first_missing) st[j]->first_missing = r;
          continue;
        }
        sum[j] += v;
        lo[j] = std::min(lo[j], v);
        hi[j] = std::max(hi[j], v);
        ++n[j];
      }
  }
  for (std::size_t j = 0; j < G; ++j) {
    st[j]->sum = sum[j];
    st[j]->lo = lo[j];
    st[j]->hi = hi[j];
    st[j]->sq = sq[j];
    st[j]->n = n[j];
  }
}

// Values from which table_stats shares the columns among threads (a thread's start costs more
// than a smaller table's pass).
constexpr std::size_t kThreadedStatsValues = std::size_t(1) << 20;

// The first pass (mean == nullptr) or the second over a table's numeric columns among `cols`;
// the second only for columns with values (as add_square's callers skip the others). With
// `threads`, a share of the columns on each: every column's values are still taken in row order
// by one thread, so the statistics are the same bits for every count.
void table_stats(const std::vector<ColumnRef>& cols, std::span<const std::size_t> rows,
                 std::vector<NumberStats>& st, const double* mean, int threads) {
  constexpr std::size_t G = 4;
  static constexpr void (*kGroup[])(const double* const*, std::span<const std::size_t>,
                                    NumberStats* const*, const double*) = {
      nullptr, table_group<1>, table_group<2>, table_group<3>, table_group<4>};
  std::vector<std::size_t> numeric;  // the columns of this pass
  for (std::size_t k = 0; k < cols.size(); ++k)
    if (cols[k].numeric() && !(mean && st[k].n == 0)) numeric.push_back(k);
  // Columns [b, e) of `numeric`, G at a time.
  const auto pass = [&](std::size_t b, std::size_t e) {
    const double* x[G];
    NumberStats* s[G];
    double means[G];
    std::size_t g = 0;
    const auto flush = [&] {
      if (g > 0) kGroup[g](x, rows, s, mean ? means : nullptr);
      g = 0;
    };
    for (std::size_t i = b; i < e; ++i) {
      const std::size_t k = numeric[i];
      x[g] = cols[k].column->numbers.data();
      s[g] = &st[k];
      means[g] = mean ? mean[k] : 0;
      if (++g == G) flush();
    }
    flush();
  };
  const std::size_t K = numeric.size();
  const std::size_t parts =
      rows.size() * K < kThreadedStatsValues ? 1 : std::min<std::size_t>(std::max(threads, 1), K);
  if (parts <= 1) return pass(0, K);
  detail::WorkerPool pool;  // (the passes throw nothing)
  auto share = [&](std::size_t p) { pass(K * p / parts, K * (p + 1) / parts); };
  pool.run(parts, share);
}

// NumberStats of every numeric column among `cols` (text columns get an empty one); with a
// group, of every process's rows (first_missing stays this process's own). The squared
// deviations (`sq`, a second pass over the rows) only with `spread`: only standardization needs
// them, and for a large matrix the pass costs as much as the first (Fashion-MNIST's 47 M values:
// 35-40 ms each, bound by memory bandwidth).
std::vector<NumberStats> number_stats(const Dataset& data, const std::vector<ColumnRef>& cols,
                                      std::span<const std::size_t> rows, const Group* g,
                                      bool spread, int threads) {
  check_ascending(data, rows);
  std::vector<NumberStats> st(cols.size());
  if (const MatrixView* m = data.matrix()) {
    switch (m->type) {
      case ElementType::u8:
        matrix_stats<std::uint8_t>(*m, cols, rows, st, g, spread);
        break;
      case ElementType::f32:
        matrix_stats<float>(*m, cols, rows, st, g, spread);
        break;
      case ElementType::f64:
        matrix_stats<double>(*m, cols, rows, st, g, spread);
        break;
    }
    return st;
  }
  // Each column's values in row order: a table's four columns at a time, a scan's block by block.
  const CsvScan* scan = data.scan();
  if (scan)
    scan_values(*scan, cols, rows,
                [&](std::size_t k, double v, std::size_t r) { st[k].add(v, r); });
  else
    table_stats(cols, rows, st, nullptr, threads);
  if (g) {
    const std::size_t K = cols.size();
    std::vector<double> sum(K), n(K), lo(K), hi(K);
    for (std::size_t k = 0; k < K; ++k) {
      sum[k] = st[k].sum;
      n[k] = double(st[k].n);
      lo[k] = st[k].lo;
      hi[k] = st[k].hi;
    }
    reduce_first_pass(g, sum, n, lo, hi);
    for (std::size_t k = 0; k < K; ++k) {
      st[k].sum = sum[k];
      st[k].n = std::size_t(n[k]);
      st[k].lo = lo[k];
      st[k].hi = hi[k];
    }
  }
  if (!spread) return st;
  std::vector<double> mean(cols.size());
  for (std::size_t k = 0; k < cols.size(); ++k)
    mean[k] = st[k].n > 0 ? st[k].mean() : 0;
  if (scan)
    scan_values(*scan, cols, rows, [&](std::size_t k, double v, std::size_t) {
      if (st[k].n > 0) st[k].add_square(v, mean[k]);
    });
  else
    table_stats(cols, rows, st, mean.data(), threads);
  if (g) {
    std::vector<double> sq(cols.size());
    for (std::size_t k = 0; k < cols.size(); ++k)
      sq[k] = st[k].sq;
    g->sum(sq);
    for (std::size_t k = 0; k < cols.size(); ++k)
      st[k].sq = sq[k];
  }
  return st;
}

bool target_missing(const Column& y, std::size_t r) {
  return y.numeric ? std::isnan(y.numbers[r]) : y.text[r].empty();
}

}  // namespace

namespace {
constexpr detail::EnumName<Scale> kScaleNames[] = {
    {Scale::standard, "standard"}, {Scale::minmax, "minmax"}, {Scale::none, "none"}};
constexpr detail::EnumName<Task> kTaskNames[] = {{Task::classify, "classify"},
                                                 {Task::regress, "regress"}};
}  // namespace

std::string_view to_string(Scale s) {
  return detail::name_of<Scale>(kScaleNames, s);
}
std::string_view to_string(Task t) {
  return detail::name_of<Task>(kTaskNames, t);
}
Scale parse_scale(std::string_view s) {
  return detail::parse_name<Scale>(kScaleNames, s, "scaling");
}
Task parse_task(std::string_view s) {
  return detail::parse_name<Task>(kTaskNames, s, "task");
}

namespace {
// How many network inputs a feature becomes: one for a number, one per category of a text.
Index input_width(const Feature& f) {
  return f.numeric ? 1 : Index(f.categories.size());
}
}  // namespace

Index Preprocessor::inputs() const {
  Index n = 0;
  for (const Feature& f : features)
    n += input_width(f);
  return n;
}

std::vector<InputColumn> Preprocessor::input_layout() const {
  std::vector<InputColumn> layout;
  layout.reserve(std::size_t(inputs()));
  for (std::size_t k = 0; k < features.size(); ++k) {
    const Feature& f = features[k];
    if (f.numeric) layout.push_back({k, -1, Index(layout.size()), f.name});
    for (std::size_t c = 0; c < f.categories.size() && !f.numeric; ++c)
      layout.push_back({k, long(c), Index(layout.size()), f.name + "=" + f.categories[c]});
  }
  return layout;
}

Index Preprocessor::outputs() const {
  if (task == Task::regress || classes.size() == 2) return 1;
  return Index(classes.size());
}

PagedVector<std::size_t> all_rows(std::size_t n) {
  PagedVector<std::size_t> r(n);
  std::iota(r.begin(), r.end(), 0);
  return r;
}

namespace {

// The classes given ahead (PreprocessOptions::class_values or class_labels), counted once
// repeated ones are merged: within max_classes.
void check_given_classes(std::size_t n, const PreprocessOptions& o) {
  if (n > o.max_classes)
    throw LimitError(
        "expected at most " + std::to_string(o.max_classes) + " classes, got " + std::to_string(n),
        "max_classes");
}

}  // namespace

Preprocessor Preprocessor::fit_target(const Table& t, const PreprocessOptions& o) {
  if (t.cols() == 0) throw DataError(t.source + ": the table has no columns");
  Preprocessor p;
  p.scale = o.scale;
  p.impute = o.impute;
  const std::string target_name = o.target.empty() ? t.columns.back().name : o.target;
  const Column& y = column_of(t, target_name, "the target");
  p.target = y.name;
  p.target_numeric = y.numeric;
  // Rows with a missing target are no examples: left out here, and of training and evaluation
  // (rows_with_target). Everything below counts the present values only.
  std::size_t present = 0;
  for (std::size_t r = 0; r < t.rows(); ++r)
    present += !target_missing(y, r);
  if (present == 0)
    throw DataError(t.source + ": the target column '" + y.name +
                    "' has no values (every row's is missing): expected a target to learn");
  if (y.numeric) {
    // The present values are y's numbers that are not NaN, taken in row order where they are
    // (a copy of a large target column cost more in page faults than the passes over it).
    bool integers = true;
    for (const double v : y.numbers)
      if (!std::isnan(v) && v != std::floor(v)) {
        integers = false;
        break;
      }
    // The distinct values, sorted: all of them when the task is classification by request, else
    // at most 21 (enough to tell labels from a regression target without a tree of a million).
    std::vector<double> distinct;
    if (o.task == Task::classify && !o.class_values.empty()) {
      distinct = o.class_values;
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      check_given_classes(distinct.size(), o);
      for (std::size_t r = 0; r < y.numbers.size(); ++r)
        if (!std::isnan(y.numbers[r]) &&
            !std::binary_search(distinct.begin(), distinct.end(), y.numbers[r]))
          throw DataError(t.source + ": row " + std::to_string(r + 1) + ": the target " +
                          format_number(y.numbers[r]) + " is not one of the classes given");
    } else if (o.task == Task::classify) {
      distinct.reserve(present);
      for (const double v : y.numbers)
        if (!std::isnan(v)) distinct.push_back(v);
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      if (distinct.size() > o.max_classes)
        throw LimitError(t.source + ": the target column '" + y.name + "' has " +
                             std::to_string(distinct.size()) +
                             " distinct values: expected at most " + std::to_string(o.max_classes) +
                             " classes",
                         "max_classes");
    } else if (integers) {
      for (const double v : y.numbers)
        if (!std::isnan(v) && std::find(distinct.begin(), distinct.end(), v) == distinct.end()) {
          distinct.push_back(v);
          if (distinct.size() > 20) break;
        }
      std::sort(distinct.begin(), distinct.end());
    }
    // A small set of integer labels is a classification: at most 20 distinct values, each seen
    // twice on average (two distinct values always qualify).
    const std::size_t k = distinct.size();
    const bool labels = integers && (k == 2 || (k <= 20 && 2 * k <= present));
    p.task = o.task.value_or(labels ? Task::classify : Task::regress);
    if (p.task == Task::classify) {
      p.class_values.assign(distinct.begin(), distinct.end());
      for (double v : p.class_values)
        p.classes.push_back(format_number(v));
    } else {
      double sum = 0;
      for (const double v : y.numbers)
        if (!std::isnan(v)) sum += v;
      p.target_center = sum / double(present);
      double sq = 0;
      for (const double v : y.numbers)
        if (!std::isnan(v)) sq += (v - p.target_center) * (v - p.target_center);
      p.target_scale = std::sqrt(sq / double(present));
      if (!(p.target_scale > 0)) p.target_scale = 1;
    }
  } else {
    if (o.task == Task::regress)
      throw DataError(t.source + ": the target column '" + y.name +
                      "' holds text: regression needs numbers");
    p.task = Task::classify;
    std::set<std::string> distinct;  // byte order
    if (!o.class_labels.empty()) {
      distinct.insert(o.class_labels.begin(), o.class_labels.end());
      distinct.erase("");
      check_given_classes(distinct.size(), o);
      for (std::size_t r = 0; r < y.text.size(); ++r)
        if (!y.text[r].empty() && !distinct.count(y.text[r]))
          throw DataError(t.source + ": row " + std::to_string(r + 1) + ": the target '" +
                          y.text[r] + "' is not one of the classes given");
    }
    for (const std::string& label : y.text)
      if (!label.empty() && distinct.insert(label).second && distinct.size() > o.max_classes)
        throw LimitError(t.source + ": the target column '" + y.name + "' has more than " +
                             std::to_string(o.max_classes) +
                             " distinct values: expected at most that many classes",
                         "max_classes");
    p.classes.assign(distinct.begin(), distinct.end());
  }
  if (p.task == Task::classify && p.classes.size() < 2)
    throw DataError(t.source + ": the target column '" + y.name + "' has only one class ('" +
                    p.classes.front() + "'): expected at least two");
  return p;
}

Preprocessor Preprocessor::fit(const Dataset& data, std::span<const std::size_t> rows,
                               const PreprocessOptions& o, int threads) {
  return fit_features(fit_target(data.table(), o), data, rows, o, nullptr, threads);
}

namespace {

// A set of strings as one string (each length-prefixed), and back: what processes exchange.
std::string pack(const std::set<std::string>& items) {
  std::string s;
  for (const std::string& i : items)
    s += std::to_string(i.size()) + ":" + i;
  return s;
}
void unpack(std::string_view s, std::set<std::string>& into) {
  while (!s.empty()) {
    const std::size_t colon = s.find(':');
    const std::size_t n = std::stoull(std::string(s.substr(0, colon)));
    into.emplace(s.substr(colon + 1, n));
    s.remove_prefix(colon + 1 + n);
  }
}

}  // namespace

Preprocessor Preprocessor::fit_features(Preprocessor p, const Dataset& data,
                                        std::span<const std::size_t> rows,
                                        const PreprocessOptions& o, const Group* g, int threads) {
  const Table& t = data.table();
  std::set<std::string> dropped;
  for (const std::string& d : o.drop) {
    const std::string name = find_column(data, d, "among the dropped columns").name;
    if (name == p.target)
      throw ConfigError("column '" + name + "' is the target: it cannot also be dropped");
    if (!dropped.insert(name).second)
      throw ConfigError("column '" + name + "' is named twice among the dropped columns");
  }
  if (!g && rows.empty()) throw DataError(t.source + ": no rows to train on");
  std::vector<ColumnRef> used;
  for (const ColumnRef& c : columns_of(data))
    if (c.name != p.target && !dropped.count(c.name)) used.push_back(c);
  const std::vector<NumberStats> stats =
      number_stats(data, used, rows, g, o.scale == Scale::standard, threads);
  // With a group, an error of this process's rows is kept until every process has taken part in
  // every exchange, then agreed on (Group::agree): no process waits for one that has left.
  std::exception_ptr error;
  const auto local = [&](auto&& step) {
    if (!g) return step();
    if (error) return;
    try {
      step();
    } catch (...) {
      error = std::current_exception();
    }
  };
  for (std::size_t k = 0; k < used.size(); ++k) {
    const ColumnRef& c = used[k];
    Feature f;
    f.name = c.name;
    f.numeric = c.numeric();
    if (f.numeric) {
      const NumberStats& st = stats[k];
      local([&] {
        if (st.first_missing && o.impute == Impute::none) missing_value(c, *st.first_missing);
        if (st.first_infinite)
          throw DataError(c.where(*st.first_infinite) + ": an infinite value in column '" + c.name +
                          "': expected a finite number");
      });
      if (st.n == 0)
        throw DataError(t.source + ": column '" + c.name + "' has no values to learn from");
      const double mean = st.mean();
      f.fill = mean;
      switch (o.scale) {
        case Scale::standard:  // x' = (x - mean) / std (population std; 1 for a constant column)
          f.center = mean;
          f.scale = std::sqrt(st.sq / double(st.n));
          break;
        case Scale::minmax:  // x' = (x - min) / (max - min), in [0, 1] on the training split
          f.center = st.lo;
          f.scale = st.hi - st.lo;
          break;
        case Scale::none:
          break;
      }
      if (!(f.scale > 0)) f.scale = 1;
    } else {
      std::set<std::string> cats;
      const auto too_many = [&] {
        return LimitError(t.source + ": the text column '" + c.name + "' has more than " +
                              std::to_string(o.max_categories) +
                              " categories, each a network input: expected at most that many "
                              "(an identifier or free text is better dropped)",
                          "max_categories");
      };
      local([&] {
        for (std::size_t r : rows) {
          // A missing text value is its own category "" (one-hot input '<name>=') when imputing.
          if (c.text(r).empty() && o.impute == Impute::none) missing_value(c, r);
          if (cats.insert(c.text(r)).second && cats.size() > o.max_categories) throw too_many();
        }
      });
      if (g) {  // every process's categories, merged (a set: sorted, whatever the order)
        const std::vector<std::string> all = g->all_gather(error ? std::string() : pack(cats));
        for (const std::string& part : all)
          unpack(part, cats);
        local([&] {
          if (cats.size() > o.max_categories) throw too_many();
        });
      }
      f.categories.assign(cats.begin(), cats.end());
    }
    p.features.push_back(std::move(f));
  }
  if (g) g->agree(error);
  if (p.features.empty())
    throw DataError(t.source + ": no feature columns left besides the target '" + p.target + "'");
  return p;
}

std::vector<std::size_t> Preprocessor::rows_with_target(const Table& t) const {
  const Column& y = column_of(t, target, "the target");
  std::vector<std::size_t> rows;
  rows.reserve(t.rows());
  for (std::size_t r = 0; r < t.rows(); ++r)
    if (!target_missing(y, r)) rows.push_back(r);
  return rows;
}

std::vector<int> Preprocessor::class_ids(const Table& t) const {
  const Column& y = column_of(t, target, "the target");
  std::vector<int> ids(t.rows());
  for (std::size_t r = 0; r < t.rows(); ++r) {
    long id = -1;
    if (y.numeric != target_numeric)
      throw DataError(t.where(r, y) + ": the target column '" + y.name + "' holds " +
                      (y.numeric ? "numbers" : "text") + ", the model was trained on " +
                      (target_numeric ? "numbers" : "text"));
    if (target_missing(y, r)) {
      ids[r] = -1;  // no target: left out (rows_with_target)
      continue;
    }
    if (y.numeric) {
      const auto it = std::lower_bound(class_values.begin(), class_values.end(), y.numbers[r]);
      if (it != class_values.end() && *it == y.numbers[r]) id = it - class_values.begin();
    } else {
      const auto it = std::lower_bound(classes.begin(), classes.end(), y.text[r]);
      if (it != classes.end() && *it == y.text[r]) id = it - classes.begin();
    }
    if (id < 0)
      throw DataError(t.where(r, y) + ": unknown class '" +
                      (y.numeric ? format_number(y.numbers[r]) : y.text[r]) + "' in column '" +
                      y.name + "': the model knows " + std::to_string(classes.size()) + " classes");
    ids[r] = int(id);
  }
  return ids;
}

// A value that overflows the training precision once scaled (1e39 in float32 with --scale none).
template <class T>
[[noreturn]] void out_of_range(const ColumnRef& c, std::size_t row, double v) {
  throw DataError(
      c.where(row) + ": the number " + format_number(v) + " in column '" + c.name +
          "' is out of range of " + (sizeof(T) == 4 ? "float32" : "float64") +
          (sizeof(T) == 4 ? " after scaling: expected a magnitude below 3.4e38" : " after scaling"),
      sizeof(T) == 4 ? "dtype" : "");
}

// Below this many matrix entries, transform writes on one thread.
constexpr double kParallelValues = 1 << 20;

// Writes the inputs of feature f for row r at x (one number, or its one-hot block). False when the
// value is missing (and not imputed) or out of T's range once scaled: throw_problem says which.
// A numeric value's input: scaled, a missing one filled (or refused), false when not finite in T.
template <class T>
bool encode_number(const Preprocessor& p, const Feature& f, double v, T* x) {
  if (std::isnan(v)) {
    if (p.impute == Impute::none) return false;
    v = f.fill;
  }
  *x = T((v - f.center) / f.scale);
  return std::isfinite(*x);
}

// A text feature's inputs: one-hot.
template <class T>
bool encode_text(const Preprocessor& p, const Feature& f, const std::string& v, T* x) {
  if (v.empty() && p.impute == Impute::none) return false;  // else the category "" (missing)
  std::fill(x, x + f.categories.size(), T(0));  // an unseen category encodes as all zeros
  const auto it = std::lower_bound(f.categories.begin(), f.categories.end(), v);
  if (it != f.categories.end() && *it == v) x[it - f.categories.begin()] = T(1);
  return true;
}

// A number's inputs; a numeric column read where text was trained: its text form's.
template <class T>
bool encode_value(const Preprocessor& p, const Feature& f, double v, T* x) {
  return f.numeric ? encode_number(p, f, v, x) : encode_text(p, f, format_number(v), x);
}

template <class T>
bool encode(const Preprocessor& p, const Feature& f, const ColumnRef& c, std::size_t r, T* x) {
  return c.numeric() ? encode_value(p, f, c.number(r), x) : encode_text(p, f, c.text(r), x);
}

// A matrix's numeric features, read through typed pointers rather than MatrixView::at's switch
// per element (Fashion-MNIST: 47 M reads): the same doubles, so the same inputs as encode's.
struct MatrixInput {
  Index column, offset;  // in the matrix, in the network's inputs
  const Feature* feature;
};

// Rows [from, to) of a row-major matrix whose K columns are the network's first K inputs, in
// order, each as encode_number writes it: (v·scale - center) / spread, rounded to T. A row with
// a value that is not finite once written (NaN read, or out of T's range) is marked bad and left
// to encode_number. The loop over a row's columns vectorizes (every operation rounded as IEEE
// does, none fused or reordered: the same bits in every instruction set).
template <class T, class E>
struct DenseRowsBody {
  [[gnu::always_inline]] static void run(const E* base, Index stride, const std::size_t* rows,
                                         std::size_t from, std::size_t to, double mscale,
                                         const double* center, const double* spread, std::size_t K,
                                         T* X, Index xstride, char* bad) {
    constexpr T kMax = std::numeric_limits<T>::max();
    for (std::size_t i = from; i < to; ++i) {
      const E* __restrict src = base + Index(rows[i]) * stride;
      T* __restrict x = X + Index(i) * xstride;
      unsigned out = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const T y = T((double(src[k]) * mscale - center[k]) / spread[k]);
        x[k] = y;
        out |= unsigned(!(y >= -kMax)) | unsigned(!(y <= kMax));
      }
      bad[i - from] = char(out != 0);
    }
  }
};

// encode_number over rows [from, to) of the matrix, value by value.
template <class T, class E>
bool encode_matrix_values(const Preprocessor& p, const MatrixView& m,
                          const std::vector<MatrixInput>& in, std::span<const std::size_t> rows,
                          std::size_t from, std::size_t to, Batch<T>& X) {
  const E* base = static_cast<const E*>(m.data);
  for (std::size_t i = from; i < to; ++i) {
    const auto r = Index(rows[i]);
    T* x = &X(Index(i), 0);
    for (const MatrixInput& c : in)
      if (!encode_number(p, *c.feature, double(base[m.offset(r, c.column)]) * m.scale,
                         x + c.offset))
        return false;
  }
  return true;
}

template <class T, class E>
bool encode_matrix(const Preprocessor& p, const MatrixView& m, const std::vector<MatrixInput>& in,
                   std::span<const std::size_t> rows, std::size_t from, std::size_t to,
                   Batch<T>& X) {
  const E* base = static_cast<const E*>(m.data);
  bool dense = m.row_major;
  for (std::size_t k = 0; k < in.size() && dense; ++k)
    dense = in[k].column == Index(k) && in[k].offset == Index(k);
  if (dense && from < to) {  // a block of rows at a time, in the widest instructions
    const std::size_t K = in.size();
    std::vector<double> center(K), spread(K);
    for (std::size_t k = 0; k < K; ++k) {
      center[k] = in[k].feature->center;
      spread[k] = in[k].feature->scale;
    }
    constexpr std::size_t kBlock = 256;
    std::vector<char> bad(kBlock);
    const Index stride = m.offset(1, 0) - m.offset(0, 0);
    for (std::size_t i0 = from; i0 < to; i0 += kBlock) {
      const std::size_t i1 = std::min(to, i0 + kBlock);
      detail::run_wide<DenseRowsBody<T, E>>(base, stride, rows.data(), i0, i1, m.scale,
                                            center.data(), spread.data(), K, X.data(),
                                            Index(X.cols()), bad.data());
      for (std::size_t i = i0; i < i1; ++i)
        if (bad[i - i0] && !encode_matrix_values<T, E>(p, m, in, rows, i, i + 1, X)) return false;
    }
    return true;
  }
  return encode_matrix_values<T, E>(p, m, in, rows, from, to, X);
}

// The error for row r of feature f, which encode refused.
template <class T>
[[noreturn]] void throw_problem(const Feature& f, const ColumnRef& c, std::size_t r) {
  if (!f.numeric || std::isnan(c.number(r))) missing_value(c, r);
  out_of_range<T>(c, r, c.number(r));
}

namespace {

// Where the network's inputs come from: for each feature, its column and its first input.
struct Source {
  ColumnRef column;
  const Feature* feature;
  Index col;
};

std::vector<Source> sources_of(const Preprocessor& p, const Dataset& data) {
  // The columns by name, each looked up once (Fashion-MNIST's 784 features looked for one by one
  // among its 784 columns took 10 ms); find_column for the rest (an index, an error).
  const std::vector<ColumnRef> all = columns_of(data);
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < all.size(); ++i)
    by_name.emplace(all[i].name, i);
  std::vector<Source> sources;
  for (const InputColumn& in : p.input_layout()) {
    if (in.category > 0) continue;  // each feature from its first input on
    const Feature& f = p.features[in.feature];
    const auto it = by_name.find(f.name);
    ColumnRef c = it != by_name.end()
                      ? all[it->second]
                      : find_column(data, f.name, "a feature the model was trained on");
    if (f.numeric && !c.numeric())
      throw DataError(data.source() + ": column '" + c.name +
                      "' holds text, the model expects numbers");
    sources.push_back({std::move(c), &f, in.offset});
  }
  return sources;
}

// transform's matrices of several sets of rows (each ascending) of a file read in passes, in one
// pass over it, block by block; a refused value reported as transform reports it, set by set.
template <class T>
void transform_scan(const Preprocessor& p, const Dataset& data, const std::vector<Source>& sources,
                    std::initializer_list<std::span<const std::size_t>> sets,
                    std::initializer_list<Batch<T>*> out) {
  std::size_t total = 0;
  for (const std::span<const std::size_t> rows : sets) {
    check_ascending(data, rows);
    total += rows.size();
  }
  if (total == 0) return;
  // Per set, the first refused value of each source, by its position in the set's rows.
  std::vector<std::vector<std::size_t>> refused;
  for (const std::span<const std::size_t> rows : sets)
    refused.emplace_back(sources.size(), rows.size());
  std::vector<std::size_t> next(sets.size(), 0);
  std::vector<std::span<const double>> v(sources.size());
  data.scan()->scan([&](const CsvScan::Block& b) {
    for (std::size_t k = 0; k < sources.size(); ++k)
      v[k] = b.values(std::size_t(sources[k].column.j));
    for (std::size_t s = 0; s < sets.size(); ++s) {
      const std::span<const std::size_t> rows = sets.begin()[s];
      Batch<T>& X = *out.begin()[s];
      std::size_t& i = next[s];
      for (; i < rows.size() && rows[i] < b.first_row + b.rows; ++i)
        for (std::size_t k = 0; k < sources.size(); ++k)
          if (!encode_value<T>(p, *sources[k].feature, v[k][rows[i] - b.first_row],
                               &X(Index(i), sources[k].col)) &&
              refused[s][k] == rows.size())
            refused[s][k] = i;
    }
  });
  for (std::size_t s = 0; s < sets.size(); ++s)
    for (std::size_t k = 0; k < sources.size(); ++k)
      if (refused[s][k] < sets.begin()[s].size())
        throw_problem<T>(*sources[k].feature, sources[k].column, sets.begin()[s][refused[s][k]]);
}

}  // namespace

template <class T>
Batch<T> Preprocessor::transform(const Dataset& data, std::span<const std::size_t> rows,
                                 int threads_given) const {
  const std::vector<Source> sources = sources_of(*this, data);
  // Row by row, so the row-major matrix is written in order, in one pass; a large matrix in row
  // spans on `threads_given` threads (each row depends on its own values only).
  Batch<T> X(Index(rows.size()), inputs());
  if (!detail::advise_huge_pages(X.data(), X.data() + X.size()))  // (prefault.hpp)
    detail::prefault(X.data(), X.data() + X.size());              // its pages in one call
  if (data.scan()) {                                              // one pass over the file
    transform_scan<T>(*this, data, sources, {rows}, {&X});
    return X;
  }
  // A table whose features are all numbers read from numeric columns (encode's common case).
  const bool numeric_table =
      !data.matrix() && std::all_of(sources.begin(), sources.end(), [](const Source& s) {
        return s.column.column && s.column.column->numeric && s.feature->numeric;
      });
  const auto fill = [&](std::size_t from, std::size_t to) {
    if (const MatrixView* m = data.matrix()) {  // numbers only: typed reads, the same values
      std::vector<MatrixInput> in;
      for (const Source& s : sources)
        in.push_back({s.column.j, s.col, s.feature});
      switch (m->type) {
        case ElementType::u8:
          return encode_matrix<T, std::uint8_t>(*this, *m, in, rows, from, to, X);
        case ElementType::f32:
          return encode_matrix<T, float>(*this, *m, in, rows, from, to, X);
        case ElementType::f64:
          return encode_matrix<T, double>(*this, *m, in, rows, from, to, X);
      }
    }
    if (numeric_table) {  // blocks of rows, column by column: no dispatch per value
      constexpr std::size_t kBlock = 256;
      for (std::size_t i0 = from; i0 < to; i0 += kBlock) {
        const std::size_t i1 = std::min(to, i0 + kBlock);
        for (const Source& s : sources) {
          const double* v = s.column.column->numbers.data();
          for (std::size_t i = i0; i < i1; ++i)
            if (!encode_number<T>(*this, *s.feature, v[rows[i]], &X(Index(i), s.col))) return false;
        }
      }
      return true;
    }
    bool ok = true;
    for (std::size_t i = from; i < to && ok; ++i)
      for (const Source& s : sources)
        ok = ok && encode<T>(*this, *s.feature, s.column, rows[i], &X(Index(i), s.col));
    return ok;
  };
  // At least kParallelValues / 4 entries per span: a thread costs more than writing fewer.
  const double values = double(rows.size()) * double(inputs());
  const std::size_t threads = values >= kParallelValues
                                  ? std::min(std::size_t(std::max(threads_given, 1)),
                                             std::size_t(values / (kParallelValues / 4)))
                                  : 1;
  if (threads > 1) {
    std::vector<char> ok(threads, 0);
    detail::run_spans(threads, [&](std::size_t k) {
      try {
        ok[k] = fill(rows.size() * k / threads, rows.size() * (k + 1) / threads);
      } catch (const std::exception&) {  // (bad_alloc) the single-thread pass below says it
        ok[k] = 0;
      }
    });
    if (std::find(ok.begin(), ok.end(), 0) == ok.end()) return X;
  }
  if (fill(0, rows.size())) return X;
  // Report the first refused value of the first feature that has one (feature, then row order).
  std::vector<T> scratch(std::size_t(std::max<Index>(inputs(), 1)));
  for (const Source& s : sources)
    for (const std::size_t r : rows)
      if (!encode<T>(*this, *s.feature, s.column, r, scratch.data()))
        throw_problem<T>(*s.feature, s.column, r);
  return X;  // not reached: encode refused some value
}

template <class T>
std::pair<Batch<T>, Batch<T>> Preprocessor::transform_split(const Dataset& data,
                                                            std::span<const std::size_t> train,
                                                            std::span<const std::size_t> validation,
                                                            int threads) const {
  if (!data.scan())
    return {transform<T>(data, train, threads), transform<T>(data, validation, threads)};
  std::pair<Batch<T>, Batch<T>> X{Batch<T>(Index(train.size()), inputs()),
                                  Batch<T>(Index(validation.size()), inputs())};
  transform_scan<T>(*this, data, sources_of(*this, data), {train, validation},
                    {&X.first, &X.second});
  return X;
}

template <class T>
Batch<T> Preprocessor::targets(const Table& t, std::span<const std::size_t> rows) const {
  Batch<T> Y = Batch<T>::Zero(Index(rows.size()), outputs());
  if (task == Task::regress) {
    const Column& y = column_of(t, target, "the target");
    if (!y.numeric) throw DataError(t.source + ": the target column '" + y.name + "' holds text");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const double v = y.numbers[rows[i]];
      if (std::isnan(v)) missing_value(t, rows[i], y);
      const T x = T((v - target_center) / target_scale);
      if (!std::isfinite(x)) out_of_range<T>(ColumnRef{&t, &y, nullptr, 0, y.name}, rows[i], v);
      Y(Index(i), 0) = x;
    }
    return Y;
  }
  const std::vector<int> ids = class_ids(t);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const int id = ids[rows[i]];
    if (id < 0) missing_value(t, rows[i], column_of(t, target, "the target"));
    if (classes.size() == 2)
      Y(Index(i), 0) = T(id);
    else
      Y(Index(i), id) = T(1);
  }
  return Y;
}

template Batch<float> Preprocessor::transform<float>(const Dataset&, std::span<const std::size_t>,
                                                     int) const;
template Batch<double> Preprocessor::transform<double>(const Dataset&, std::span<const std::size_t>,
                                                       int) const;
template std::pair<Batch<float>, Batch<float>> Preprocessor::transform_split<float>(
    const Dataset&, std::span<const std::size_t>, std::span<const std::size_t>, int) const;
template std::pair<Batch<double>, Batch<double>> Preprocessor::transform_split<double>(
    const Dataset&, std::span<const std::size_t>, std::span<const std::size_t>, int) const;
template Batch<float> Preprocessor::targets<float>(const Table&,
                                                   std::span<const std::size_t>) const;
template Batch<double> Preprocessor::targets<double>(const Table&,
                                                     std::span<const std::size_t>) const;

Split split_rows(std::size_t n, double fraction, Rng& rng, const std::vector<int>* strata) {
  if (!(fraction >= 0 && fraction < 1))
    throw ConfigError("the validation fraction must be in [0, 1), got " + std::to_string(fraction));
  Split s;
  if (fraction == 0) {  // no validation: draw nothing from the generator
    s.train.resize(n);
    std::iota(s.train.begin(), s.train.end(), 0);
    return s;
  }
  std::map<int, std::vector<std::size_t>> groups;
  for (std::size_t r = 0; r < n; ++r)
    groups[strata ? (*strata)[r] : 0].push_back(r);
  std::vector<char> is_val(n, 0);
  for (auto& [key, rows] : groups) {
    shuffle(std::span<std::size_t>(rows), rng);
    const auto take = std::size_t(std::llround(fraction * double(rows.size())));
    for (std::size_t i = 0; i < take; ++i)
      is_val[rows[i]] = 1;
  }
  for (std::size_t r = 0; r < n; ++r)
    (is_val[r] ? s.validation : s.train).push_back(r);
  return s;
}

}  // namespace chainrule
