// fit, evaluate and predict from matrices in memory (row- and column-major, u8/f32/f64, strided)
// give exactly what the same numbers give through a CSV table.
#include "chainrule/dataset.hpp"

#include <gtest/gtest.h>

#include "error_of.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/fit.hpp"
#include "chainrule/random.hpp"

namespace {

using namespace chainrule;

// 60 rows of two features (whole numbers and halves: exact in float32 and u8) and a label.
struct Data {
  std::vector<double> a, b;
  std::vector<std::string> label;
  std::string csv() const {
    std::string s = "a,b,y\n";
    for (std::size_t i = 0; i < a.size(); ++i)
      s += format_number(a[i]) + "," + format_number(b[i]) + "," + label[i] + "\n";
    return s;
  }
};

Data make_data() {
  Data d;
  for (int i = 0; i < 60; ++i) {
    d.a.push_back(double(i % 11));
    d.b.push_back(double((i * 7) % 13) / 2);
    d.label.push_back(d.a.back() + d.b.back() > 8 ? "big" : "small");
  }
  return d;
}

FitOptions options() {
  FitOptions o;
  o.layers = {4};
  o.train.epochs = 5;
  o.seed = 9;
  return o;
}

TEST(Dataset, RowMajorDoublesFitLikeTheTable) {
  const Data d = make_data();
  const Table t = parse_csv(d.csv(), "d.csv");
  std::vector<double> X;  // row-major, packed
  for (std::size_t i = 0; i < d.a.size(); ++i) {
    X.push_back(d.a[i]);
    X.push_back(d.b[i]);
  }
  const MatrixView view{.data = X.data(), .rows = 60, .cols = 2};
  const Dataset m(view, {.name = "y", .labels = d.label}, {"a", "b"}, "memory");
  const FitResult from_table = fit(t, options()), from_matrix = fit(m, options());
  EXPECT_EQ(from_matrix.model.params, from_table.model.params);
  EXPECT_EQ(from_matrix.model.prep.classes, (std::vector<std::string>{"big", "small"}));
  EXPECT_EQ(from_matrix.model.prep.features[1].center, from_table.model.prep.features[1].center);
  // predict and evaluate read the matrix in place too, with the same answers.
  const Predictions p = predict(from_table.model, m), q = predict(from_table.model, t);
  EXPECT_EQ(p.label, q.label);
  EXPECT_EQ(p.probabilities, q.probabilities);
  EXPECT_EQ(evaluate(from_table.model, m).accuracy, evaluate(from_table.model, t).accuracy);
}

TEST(Dataset, ColumnMajorStridedFloatsAndBytesReadTheSameNumbers) {
  const Data d = make_data();
  // Column-major float32 with a stride of 64 (padding after each column of 60).
  std::vector<float> F(2 * 64, -1.0f);
  for (std::size_t i = 0; i < 60; ++i) {
    F[i] = float(d.a[i]);
    F[64 + i] = float(d.b[i]);
  }
  const Dataset f({.data = F.data(),
                   .rows = 60,
                   .cols = 2,
                   .type = ElementType::f32,
                   .row_major = false,
                   .stride = 64},
                  {.labels = d.label}, {"a", "b"});
  // Bytes 2·value scaled by 0.5: the same numbers again.
  std::vector<std::uint8_t> U;
  for (std::size_t i = 0; i < 60; ++i) {
    U.push_back(std::uint8_t(2 * d.a[i]));
    U.push_back(std::uint8_t(2 * d.b[i]));
  }
  const Dataset u({.data = U.data(), .rows = 60, .cols = 2, .type = ElementType::u8, .scale = 0.5},
                  {.labels = d.label}, {"a", "b"});
  const Table t = parse_csv(d.csv(), "d.csv");
  const std::vector<double> want = fit(t, options()).model.params;
  EXPECT_EQ(fit(f, options()).model.params, want);
  EXPECT_EQ(fit(u, options()).model.params, want);
}

// Bytes at scale 1 in a packed row-major matrix (IDX images) take the statistics' fast path,
// whose extremes are kept in bytes, many to a vector instruction: 37 columns (a whole vector and a
// remainder), min-max scaled, fit as the same numbers through a CSV table do.
TEST(Dataset, PackedBytesScaleByTheirExtremesAsTheTableDoes) {
  constexpr std::size_t kRows = 50, kCols = 37;
  std::vector<std::uint8_t> U;
  std::string csv;
  for (std::size_t k = 0; k < kCols; ++k)
    csv += "x" + std::to_string(k) + ",";
  csv += "y\n";
  std::vector<std::string> labels;
  for (std::size_t r = 0; r < kRows; ++r) {
    unsigned sum = 0;
    for (std::size_t k = 0; k < kCols; ++k) {
      const auto v = std::uint8_t((r * 7 + k * 13 + (r * k) % 5 * 40) % 256);
      U.push_back(v);
      sum += v;
      csv += std::to_string(v) + ",";
    }
    labels.push_back(sum % 3 == 0 ? "a" : "b");
    csv += labels.back() + "\n";
  }
  std::vector<std::string> names;
  for (std::size_t k = 0; k < kCols; ++k)
    names.push_back("x" + std::to_string(k));
  const Dataset u(
      {.data = U.data(), .rows = Index(kRows), .cols = Index(kCols), .type = ElementType::u8},
      {.labels = labels}, names);
  FitOptions o = options();
  o.data.scale = Scale::minmax;
  const FitResult from_table = fit(parse_csv(csv, "u.csv"), o);
  const FitResult from_bytes = fit(u, o);
  EXPECT_EQ(from_bytes.model.params, from_table.model.params);
  ASSERT_EQ(from_bytes.model.prep.features.size(), kCols);
  for (std::size_t k = 0; k < kCols; ++k) {  // center = the least value, scale = the range
    EXPECT_EQ(from_bytes.model.prep.features[k].center, from_table.model.prep.features[k].center);
    EXPECT_EQ(from_bytes.model.prep.features[k].scale, from_table.model.prep.features[k].scale);
  }
}

TEST(Dataset, NumericTargetsRegressAndMissingOnesAreLeftOut) {
  std::vector<double> X, y;
  for (int i = 0; i < 50; ++i) {
    X.push_back(i);
    y.push_back(i % 10 == 3 ? NAN : 3.0 * i + 1);
  }
  const Dataset d({.data = X.data(), .rows = 50, .cols = 1}, {.name = "price", .numbers = y});
  FitOptions o = options();
  o.validation = 0;
  const FitResult r = fit(d, o);
  EXPECT_EQ(r.model.prep.task, Task::regress);
  EXPECT_EQ(r.train_rows, 45u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].text.find("5 of 50 rows have no value in the target column 'price'"),
            std::string::npos);
  double sum = 0;
  for (const double v : y)
    if (!std::isnan(v)) sum += v;
  EXPECT_DOUBLE_EQ(r.model.prep.target_center, sum / 45);
  EXPECT_EQ(r.model.prep.features[0].name, "x0");  // default names
}

// The statistics of a wide matrix (40 columns: the vector loops of every instruction set, and
// their remainders) are those of a table of the same numbers, bit for bit: float and byte
// matrices, dense and scaled, standardized and min-max, with a gap in one row.
TEST(Dataset, WideMatrixStatisticsAreTheTables) {
  constexpr Index N = 500, K = 43;  // (43: the table is read four columns at a time, and three)
  std::vector<float> F(std::size_t(N * K));
  std::vector<std::uint8_t> B(F.size());
  Rng gen(7);
  for (std::size_t i = 0; i < F.size(); ++i) {
    F[i] = float(gen.normal() * 10);
    B[i] = std::uint8_t(gen.below(256));
  }
  F[std::size_t(123 * K + 17)] = NAN;
  std::vector<double> y;
  for (Index r = 0; r < N; ++r)
    y.push_back(double(r % 2));
  for (const ElementType type : {ElementType::f32, ElementType::u8})
    for (const double scale : {1.0, 1.0 / 255}) {
      const MatrixView view{.data = type == ElementType::f32 ? static_cast<const void*>(F.data())
                                                             : static_cast<const void*>(B.data()),
                            .rows = N,
                            .cols = K,
                            .type = type,
                            .scale = scale};
      Table t;  // the same numbers as a table of doubles
      t.source = "t.csv";
      for (Index c = 0; c < K; ++c) {
        Column col;
        col.name = "x" + std::to_string(c);
        for (Index r = 0; r < N; ++r)
          col.numbers.push_back(view.at(r, c));
        t.columns.push_back(std::move(col));
      }
      Column target;
      target.name = "y";
      target.numbers.assign(y.begin(), y.end());
      t.columns.push_back(std::move(target));
      const Dataset m(view, {.numbers = y});
      for (const Scale s : {Scale::standard, Scale::minmax}) {
        const PreprocessOptions o{.scale = s, .impute = Impute::mean};
        const Preprocessor a = Preprocessor::fit(m, all_rows(std::size_t(N)), o),
                           b = Preprocessor::fit(t, all_rows(std::size_t(N)), o);
        for (std::size_t k = 0; k < std::size_t(K); ++k) {
          EXPECT_EQ(a.features[k].center, b.features[k].center) << k;
          EXPECT_EQ(a.features[k].scale, b.features[k].scale) << k;
          EXPECT_EQ(a.features[k].fill, b.features[k].fill) << k;
        }
        // The training matrices too, rows in reverse order (the gap imputed), in both widths.
        PagedVector<std::size_t> back = all_rows(std::size_t(N));
        std::reverse(back.begin(), back.end());
        const Batch<float> xa = a.transform<float>(m, back), xb = b.transform<float>(t, back);
        EXPECT_EQ(std::memcmp(xa.data(), xb.data(), sizeof(float) * std::size_t(xa.size())), 0);
        const Batch<double> da = a.transform<double>(m, back), db = b.transform<double>(t, back);
        EXPECT_EQ(std::memcmp(da.data(), db.data(), sizeof(double) * std::size_t(da.size())), 0);
        // Without imputation the gap is refused, where it is.
        const PreprocessOptions strict{.scale = s, .impute = Impute::none};
        PagedVector<std::size_t> rest = all_rows(std::size_t(N));
        rest.erase(rest.begin() + 123);
        const Preprocessor c = Preprocessor::fit(m, rest, strict);
        if (type == ElementType::f32) {
          const std::string e = error_of([&] { c.transform<float>(m, back); });
          EXPECT_NE(e.find("x17"), std::string::npos) << e;
        } else {
          EXPECT_NO_THROW(c.transform<float>(m, back));
        }
      }
    }
}

// A row-major float matrix that needs no preprocessing (no scaling, nothing missing, every row
// a training row) is read by the network in place, without a copy: the model is the one the
// copy would give (a column-major matrix of the same numbers is copied), and the run's own
// matrix is untouched. With a missing value (imputed) or a validation split it is copied.
TEST(Dataset, UnscaledFloatRowsAreReadInPlaceWithTheSameResult) {
  const Data d = make_data();
  std::vector<float> rows, cols(2 * d.a.size());
  for (std::size_t i = 0; i < d.a.size(); ++i) {
    rows.push_back(float(d.a[i]));
    rows.push_back(float(d.b[i]));
    cols[i] = float(d.a[i]);
    cols[d.a.size() + i] = float(d.b[i]);
  }
  const std::vector<float> before = rows;
  FitOptions o = options();
  o.data.scale = Scale::none;
  for (const double val : {0.0, 0.2})
    for (const Index threads : {1, 2}) {
      o.validation = val;
      o.threads = int(threads);
      const Dataset in_place({.data = rows.data(), .rows = 60, .cols = 2, .type = ElementType::f32},
                             {.name = "y", .labels = d.label}, {"a", "b"}, "rows");
      const Dataset copied({.data = cols.data(),
                            .rows = 60,
                            .cols = 2,
                            .type = ElementType::f32,
                            .row_major = false},
                           {.name = "y", .labels = d.label}, {"a", "b"}, "columns");
      const FitResult a = fit(in_place, o), b = fit(copied, o);
      EXPECT_EQ(a.model.params, b.model.params) << "validation " << val;
      EXPECT_EQ(a.model.metrics, b.model.metrics);
    }
  EXPECT_EQ(rows, before);
  // A missing value, imputed: the copy path (which fills it in) on both sides.
  rows[3] = NAN;
  cols[60 + 1] = NAN;  // the same cell: row 1, column b
  o.data.impute = Impute::mean;
  o.validation = 0;
  const Dataset gap({.data = rows.data(), .rows = 60, .cols = 2, .type = ElementType::f32},
                    {.name = "y", .labels = d.label}, {"a", "b"}, "rows");
  const Dataset gap_cols(
      {.data = cols.data(), .rows = 60, .cols = 2, .type = ElementType::f32, .row_major = false},
      {.name = "y", .labels = d.label}, {"a", "b"}, "columns");
  EXPECT_EQ(fit(gap, o).model.params, fit(gap_cols, o).model.params);
  // An infinite value is refused as the copy path refuses it.
  rows[3] = INFINITY;
  o.data.impute = Impute::none;
  EXPECT_THROW(fit(Dataset({.data = rows.data(), .rows = 60, .cols = 2, .type = ElementType::f32},
                           {.name = "y", .labels = d.label}, {"a", "b"}, "rows"),
                   o),
               DataError);
}

// The model keeps every epoch's report (for chainrule report): what on_epoch saw, without the
// wall times, so that two runs of a seed write the same bytes.
TEST(Dataset, TheModelKeepsTheHistoryOnEpochSaw) {
  std::vector<double> X, y;
  for (int i = 0; i < 60; ++i) {
    X.push_back(i % 7);
    y.push_back(i % 7 > 3 ? 1 : 0);
  }
  const Dataset d({.data = X.data(), .rows = 60, .cols = 1}, {.name = "y", .numbers = y});
  FitOptions o = options();
  o.validation = 0.25;
  o.train.epochs = 6;
  std::vector<EpochReport> seen;
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochReport& e) { seen.push_back(e); };
  const FitResult r = fit(d, o, cb);
  ASSERT_TRUE(r.model.metrics);
  ASSERT_EQ(r.model.metrics->history.size(), 6u);
  for (EpochReport& e : seen) {
    EXPECT_GE(e.seconds, 0);
    e.seconds = 0;
  }
  EXPECT_EQ(r.model.metrics->history, seen);
  EXPECT_TRUE(seen.back().val_loss.has_value());
}

TEST(Dataset, ShapesAndNamesAreChecked) {
  std::vector<double> X(6, 1.0);
  const auto error = [](auto f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error([&] {
              Dataset({.data = X.data(), .rows = 3, .cols = 2}, {.numbers = {1, 2}});
            }),
            "the matrix: 2 targets for 3 rows");
  EXPECT_EQ(error([&] { Dataset({.data = X.data(), .rows = 3, .cols = 2}, {}, {"a"}); }),
            "the matrix: 1 feature names for 2 columns");
  EXPECT_EQ(error([&] { Dataset({.data = X.data(), .rows = 3, .cols = 2, .stride = 1}); }),
            "the matrix: a stride of 1 elements is shorter than a row (2)");
  EXPECT_EQ(error([&] {
              Dataset({.data = X.data(), .rows = 3, .cols = 2}, {}, {"a", "a"});
            }),
            "the matrix: feature name 'a' is empty or appears twice");
  EXPECT_EQ(error([&] { Dataset({.data = nullptr, .rows = 3, .cols = 2}); }),
            "the matrix: expected a matrix of at least one row and one column, got 3 × 2");
  // A missing feature value (a NaN) names its row and column.
  std::vector<double> gap = {1, 2, NAN, 4, 5, 6};
  const Dataset d({.data = gap.data(), .rows = 3, .cols = 2}, {.numbers = {0, 1, 0}});
  EXPECT_EQ(
      error([&] { fit(d, options()); }),
      "the matrix: row 2, column 'x0': missing value (NaN) in column 'x0': expected a number");
  // So does an infinite one, whatever the scaling and imputation (it used to make every value
  // of its column "out of range after scaling", the first row named).
  for (const double inf : {INFINITY, -INFINITY})
    for (const Scale scale : {Scale::standard, Scale::minmax, Scale::none})
      for (const Impute impute : {Impute::none, Impute::mean}) {
        std::vector<float> far = {1, 2, 3, 4, 5, 6, 7, 8};
        far[5] = float(inf);  // row 3, column x1
        const Dataset f({.data = far.data(), .rows = 4, .cols = 2, .type = ElementType::f32},
                        {.numbers = {0, 1, 0, 1}});
        FitOptions o = options();
        o.data.scale = scale;
        o.data.impute = impute;
        EXPECT_EQ(error([&] { fit(f, o); }),
                  "the matrix: row 3, column 'x1': an infinite value in column 'x1': expected a "
                  "finite number");
      }
}

}  // namespace
