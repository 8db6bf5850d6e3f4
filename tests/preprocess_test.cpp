#include "chainrule/preprocess.hpp"

#include <gtest/gtest.h>

#include "error_of.hpp"

#include <cmath>
#include <cstring>

#include "chainrule/error.hpp"
#include "chainrule/random.hpp"
#include "chainrule/threads.hpp"

namespace chainrule {
namespace {

const char* kData =
    "name,age,color,size,label\n"
    "a,10,red,1,yes\n"
    "b,20,blue,2,no\n"
    "c,30,red,3,yes\n"
    "d,40,green,4,no\n";

TEST(Preprocess, StandardizesOnTrainingRowsAndOneHotsText) {
  const Table t = parse_csv(kData, "d.csv");
  const std::vector<std::size_t> train{0, 1, 2};  // age 10, 20, 30: mean 20, std sqrt(200/3)
  const Preprocessor p = Preprocessor::fit(t, train, {.drop = {"name"}});
  ASSERT_EQ(p.features.size(), 3u);
  EXPECT_EQ(p.features[0].name, "age");
  EXPECT_DOUBLE_EQ(p.features[0].center, 20);
  EXPECT_DOUBLE_EQ(p.features[0].scale, std::sqrt(200.0 / 3));
  EXPECT_EQ(p.features[1].categories, (std::vector<std::string>{"blue", "red"}));  // green unseen
  EXPECT_EQ(p.inputs(), 1 + 2 + 1);
  EXPECT_EQ(p.task, Task::classify);
  EXPECT_EQ(p.classes, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(p.outputs(), 1);

  const Batch<double> X = p.transform<double>(t, all_rows(4));
  EXPECT_DOUBLE_EQ(X(3, 0), (40 - 20) / std::sqrt(200.0 / 3));
  EXPECT_EQ(X.row(0).segment(1, 2), (Eigen::RowVector2d(0, 1)));  // red
  EXPECT_EQ(X.row(3).segment(1, 2), (Eigen::RowVector2d(0, 0)));  // green: unseen, all zeros
  const Batch<double> Y = p.targets<double>(t, all_rows(4));
  EXPECT_EQ(Y(0, 0), 1);  // yes is class 1
  EXPECT_EQ(Y(1, 0), 0);
}

// One entry per network input, in transform's column order: numbers by name, text features one
// column per category named name=category.
TEST(Preprocess, InputLayoutNamesEveryNetworkInput) {
  const Table t = parse_csv(kData, "d.csv");
  const std::vector<std::size_t> train{0, 1, 2};
  const Preprocessor p = Preprocessor::fit(t, train, {.drop = {"name"}});
  const std::vector<InputColumn> layout = p.input_layout();
  ASSERT_EQ(layout.size(), std::size_t(p.inputs()));
  const std::vector<std::string> names{"age", "color=blue", "color=red", "size"};
  const std::vector<std::size_t> feature{0, 1, 1, 2};
  const std::vector<long> category{-1, 0, 1, -1};
  for (std::size_t i = 0; i < layout.size(); ++i) {
    EXPECT_EQ(layout[i].name, names[i]);
    EXPECT_EQ(layout[i].feature, feature[i]);
    EXPECT_EQ(layout[i].category, category[i]);
    EXPECT_EQ(layout[i].offset, Index(i));
  }
  // The one-hot columns transform writes are the ones the layout names.
  const Batch<double> X = p.transform<double>(t, all_rows(4));
  EXPECT_EQ(X(1, layout[1].offset), 1);  // row b: blue
  EXPECT_EQ(X(0, layout[2].offset), 1);  // row a: red
  EXPECT_EQ(X(2, layout[3].offset), (3 - 2) / std::sqrt(2.0 / 3));
}

TEST(Preprocess, MinmaxAndNone) {
  const Table t = parse_csv(kData, "d.csv");
  const Preprocessor mm =
      Preprocessor::fit(t, all_rows(4), {.drop = {"name"}, .scale = Scale::minmax});
  EXPECT_DOUBLE_EQ(mm.transform<double>(t, all_rows(4))(1, 0), (20.0 - 10) / 30);
  const Preprocessor none =
      Preprocessor::fit(t, all_rows(4), {.drop = {"name"}, .scale = Scale::none});
  EXPECT_DOUBLE_EQ(none.transform<double>(t, all_rows(4))(1, 0), 20.0);
}

TEST(Preprocess, TaskInferenceAndClassOrder) {
  // Integer labels in numeric order (2 < 10), three classes: one-hot targets.
  const Table ints =
      parse_csv("x,y\n1,10\n2,2\n3,10\n4,2\n5,3\n6,3\n7,2\n8,10\n9,3\n10,2\n", "i.csv");
  const Preprocessor p = Preprocessor::fit(ints, all_rows(10), {});
  EXPECT_EQ(p.task, Task::classify);
  EXPECT_EQ(p.classes, (std::vector<std::string>{"2", "3", "10"}));
  EXPECT_EQ(p.targets<double>(ints, all_rows(10)).row(0), (Eigen::RowVector3d(0, 0, 1)));
  // Fractional values: regression, target standardized and restorable.
  const Table reals = parse_csv("x,y\n1,0.5\n2,1.5\n3,2.5\n4,3.5\n", "r.csv");
  const Preprocessor r = Preprocessor::fit(reals, all_rows(4), {});
  EXPECT_EQ(r.task, Task::regress);
  EXPECT_DOUBLE_EQ(r.target_center, 2.0);
  EXPECT_DOUBLE_EQ(r.target_scale, std::sqrt(1.25));
  // Forced.
  EXPECT_EQ(Preprocessor::fit(ints, all_rows(10), {.task = Task::regress}).task, Task::regress);
}

TEST(Preprocess, ClassesGivenAheadAreTheModelsWhetherTheRowsHoldThemOrNot) {
  // scikit-learn's partial_fit `classes`: 10 never occurs here, yet is an output.
  const Table ints = parse_csv("x,y\n1,2\n2,3\n3,2\n", "i.csv");
  PreprocessOptions o{.task = Task::classify};
  o.class_values = {10, 2, 3, 2};
  const Preprocessor p = Preprocessor::fit(ints, all_rows(3), o);
  EXPECT_EQ(p.classes, (std::vector<std::string>{"2", "3", "10"}));
  EXPECT_EQ(p.targets<double>(ints, all_rows(3)).row(1), (Eigen::RowVector3d(0, 1, 0)));
  o.class_values = {2, 10};  // 3 is not among them
  EXPECT_THROW(Preprocessor::fit(ints, all_rows(3), o), DataError);

  const Table text = parse_csv("x,y\n1,cat\n2,cat\n", "t.csv");
  PreprocessOptions t{.task = Task::classify};
  t.class_labels = {"dog", "cat", "eel"};
  EXPECT_EQ(Preprocessor::fit(text, all_rows(2), t).classes,
            (std::vector<std::string>{"cat", "dog", "eel"}));
  t.class_labels = {"dog", "eel"};
  EXPECT_THROW(Preprocessor::fit(text, all_rows(2), t), DataError);
}

TEST(Preprocess, ColumnsMatchByNameInAnyOrder) {
  const Table t = parse_csv(kData, "d.csv");
  const Preprocessor p = Preprocessor::fit(t, all_rows(4), {.drop = {"name"}});
  const Table shuffled = parse_csv("size,color,age\n4,green,40\n", "s.csv");
  const Batch<double> a = p.transform<double>(t, std::vector<std::size_t>{3});
  EXPECT_EQ(p.transform<double>(shuffled, all_rows(1)), a);
  const Table missing = parse_csv("size,age\n4,40\n", "m.csv");
  EXPECT_EQ(error_of([&] { p.transform<double>(missing, all_rows(1)); }),
            "m.csv: no column 'color' (a feature the model was trained on)");
}

TEST(Preprocess, MissingValuesAreErrorsUnlessImputed) {
  const Table t = parse_csv("a,b,y\n1,,0\n3,4,1\n5,8,0\n", "g.csv");
  // The library speaks library: the message names the option that fixes it, not a flag.
  try {
    Preprocessor::fit(t, all_rows(3), {});
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "g.csv:2:2: missing value in column 'b': expected a number");
    EXPECT_EQ(e.option, "impute");
  }
  const Preprocessor p =
      Preprocessor::fit(t, all_rows(3), {.scale = Scale::none, .impute = Impute::mean});
  EXPECT_DOUBLE_EQ(p.transform<double>(t, all_rows(3))(0, 1), 6.0);  // the mean of 4 and 8
  const Table no_target = parse_csv("a,b\n1,2\n", "n.csv");
  EXPECT_EQ(error_of([&] { Preprocessor::fit(no_target, all_rows(1), {.target = "y"}); }),
            "n.csv: no column 'y' (the target)");
  const Table one_class = parse_csv("a,y\n1,x\n2,x\n", "o.csv");
  EXPECT_EQ(error_of([&] { Preprocessor::fit(one_class, all_rows(2), {}); }),
            "o.csv: the target column 'y' has only one class ('x'): expected at least two");
  // A missing text value: an error naming the fix, or its own category "" when imputing; a
  // missing token is never a category, and a row without a target is no example.
  const Table text = parse_csv("c,y\nred,1\nNA,0\nblue,1\nred,\ngreen,NA\n", "c.csv");
  try {
    Preprocessor::fit(text, all_rows(3), {});
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "c.csv:3:1: missing value in column 'c': expected a value");
    EXPECT_EQ(e.option, "impute_text");
  }
  const Preprocessor q = Preprocessor::fit(text, all_rows(3), {.impute = Impute::mean});
  EXPECT_EQ(q.features[0].categories, (std::vector<std::string>{"", "blue", "red"}));
  EXPECT_EQ(q.classes, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(q.rows_with_target(text), (std::vector<std::size_t>{0, 1, 2}));
  const Batch<double> X = q.transform<double>(text, all_rows(5));
  EXPECT_EQ(X.row(1), (Eigen::RowVector3d(1, 0, 0)));  // NA: the category ""
  EXPECT_EQ(X.row(4), (Eigen::RowVector3d(0, 0, 0)));  // green: unseen, all zeros
}

// A large matrix (100,000 rows × 13 inputs) is written in row spans on several threads: the same
// matrix, bit for bit, as on one thread, for any count and any row order; and the same error, the
// first refused value in feature-then-row order, whichever span it falls in.
TEST(Preprocess, ParallelTransformGivesTheSameMatrixAndError) {
  std::string csv = "x0,x1,x2,x3,x4,x5,x6,x7,x8,x9,colour,y\n";
  Rng gen(3);
  const std::size_t n = 100'000;
  for (std::size_t r = 0; r < n; ++r) {
    for (int c = 0; c < 10; ++c)
      csv += std::to_string(gen.uniform() * 100 - 50) + ",";
    csv += std::string(r % 3 == 0   ? "red"
                       : r % 3 == 1 ? "green"
                                    : "blue") +
           "," + std::to_string(r % 2) + "\n";
  }
  const Table t = parse_csv(csv, "wide.csv");
  PagedVector<std::size_t> rows = all_rows(n);
  for (std::size_t i = rows.size(); i > 1; --i)
    std::swap(rows[i - 1], rows[gen.below(i)]);
  const Preprocessor p = Preprocessor::fit(t, rows, {});
  ASSERT_EQ(p.inputs(), 13);
  const Batch<float> one = p.transform<float>(t, rows, 1);
  for (const int threads : {2, 3}) {
    const Batch<float> many = p.transform<float>(t, rows, threads);
    ASSERT_EQ(many.rows(), one.rows());
    EXPECT_EQ(std::memcmp(many.data(), one.data(), sizeof(float) * std::size_t(one.size())), 0);
  }
  // Missing values late in x7 and early in x9 (rows 0 and 99,990 of the file): x7's comes first.
  Table holes = t;
  holes.columns[7].numbers[99'990] = std::nan("");
  holes.columns[9].numbers[10] = std::nan("");
  const std::string expected = error_of([&] { p.transform<float>(holes, all_rows(n), 1); });
  EXPECT_NE(expected.find("wide.csv:99992:8"), std::string::npos) << expected;
  EXPECT_EQ(error_of([&] { p.transform<float>(holes, all_rows(n), 2); }), expected);
}

// A large table's statistics with its columns shared among threads: every thread count gives the
// same bits, which are each column's mean and spread over its present values in row order
// (computed here by plain loops); a missing value is reported as by one thread.
TEST(Preprocess, ParallelStatisticsGiveTheSameNumbers) {
  constexpr std::size_t n = 100'000, K = 11;  // 1.1 M values: shared among threads
  Table t;
  t.source = "stats.csv";
  Rng gen(5);
  for (std::size_t c = 0; c <= K; ++c) {
    Column col;
    col.name = c < K ? "x" + std::to_string(c) : "y";
    for (std::size_t r = 0; r < n; ++r)
      col.numbers.push_back(c == K ? double(r % 2) : gen.uniform() * 1000 - double(c) * 7);
    t.columns.push_back(std::move(col));
  }
  for (std::size_t c = 0; c < K; c += 3)
    t.columns[c].numbers[(c * 977) % n] = std::nan("");  // a gap in x0, x3, x6, x9
  const PreprocessOptions o{.scale = Scale::standard, .impute = Impute::mean};
  const Preprocessor one = Preprocessor::fit(t, all_rows(n), o, 1);
  ASSERT_EQ(one.features.size(), K);
  for (std::size_t c = 0; c < K; ++c) {
    double sum = 0, count = 0;
    for (const double v : t.columns[c].numbers)
      if (!std::isnan(v)) sum += v, ++count;
    const double mean = sum / count;
    double sq = 0;
    for (const double v : t.columns[c].numbers)
      if (!std::isnan(v)) sq += (v - mean) * (v - mean);
    EXPECT_DOUBLE_EQ(one.features[c].center, mean) << c;
    EXPECT_DOUBLE_EQ(one.features[c].scale, std::sqrt(sq / count)) << c;
    EXPECT_DOUBLE_EQ(one.features[c].fill, mean) << c;
  }
  for (const int threads : {2, 3, 8}) {
    const Preprocessor many = Preprocessor::fit(t, all_rows(n), o, threads);
    for (std::size_t c = 0; c < K; ++c) {
      EXPECT_EQ(std::memcmp(&many.features[c].center, &one.features[c].center, 8), 0) << c;
      EXPECT_EQ(std::memcmp(&many.features[c].scale, &one.features[c].scale, 8), 0) << c;
      EXPECT_EQ(std::memcmp(&many.features[c].fill, &one.features[c].fill, 8), 0) << c;
    }
  }
  const std::string expected =
      error_of([&] { Preprocessor::fit(t, all_rows(n), {.scale = Scale::none}, 1); });
  EXPECT_NE(expected.find("stats.csv"), std::string::npos) << expected;
  EXPECT_EQ(error_of([&] { Preprocessor::fit(t, all_rows(n), {.scale = Scale::none}, 2); }),
            expected);
}
TEST(Split, StratifiedAndDeterministic) {
  std::vector<int> strata;
  for (int i = 0; i < 100; ++i)
    strata.push_back(i < 80 ? 0 : 1);
  Rng a(3), b(3);
  const Split s = split_rows(100, 0.2, a, &strata);
  EXPECT_EQ(s.validation.size(), 20u);
  int minority = 0;
  for (std::size_t r : s.validation)
    minority += strata[r];
  EXPECT_EQ(minority, 4);  // 20% of each class: 16 + 4
  EXPECT_EQ(split_rows(100, 0.2, b, &strata).validation, s.validation);
  Rng c(3), untouched(3);
  EXPECT_EQ(split_rows(10, 0.0, c).train.size(), 10u);
  EXPECT_EQ(c.uniform(), untouched.uniform());  // no validation: nothing drawn
  EXPECT_THROW(split_rows(10, 1.0, c), ConfigError);
}

}  // namespace
}  // namespace chainrule
