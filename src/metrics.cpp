#include "chainrule/metrics.hpp"

#include <cmath>

#include "enum_names.hpp"

namespace chainrule {

namespace {
constexpr detail::EnumName<Metric> kMetricNames[] = {
    {Metric::accuracy, "accuracy"}, {Metric::r2, "r2"}, {Metric::none, "none"}};
}  // namespace

std::string_view to_string(Metric m) {
  return detail::name_of<Metric>(kMetricNames, m);
}

Metric parse_metric(std::string_view s) {
  return detail::find_name<Metric>(kMetricNames, s).value_or(Metric::none);
}

template <class T>
double accuracy(const Batch<T>& P, const BatchView<T>& Y) {
  Index correct = 0;
  for (Index n = 0; n < P.rows(); ++n) {
    if (P.cols() == 1) {
      correct += (P(n, 0) >= T(0.5)) == (Y(n, 0) >= T(0.5));
    } else {
      Index p, y;
      P.row(n).maxCoeff(&p);
      Y.row(n).maxCoeff(&y);
      correct += p == y;
    }
  }
  return P.rows() == 0 ? 0.0 : double(correct) / double(P.rows());
}

template <class T>
double r2_score(const Batch<T>& P, const BatchView<T>& Y) {
  double sse = 0, sst = 0;
  for (Index k = 0; k < Y.cols(); ++k) {
    const double mean = Y.col(k).template cast<double>().mean();
    for (Index n = 0; n < Y.rows(); ++n) {
      sse += std::pow(double(Y(n, k)) - double(P(n, k)), 2);
      sst += std::pow(double(Y(n, k)) - mean, 2);
    }
  }
  return sst == 0 ? 0.0 : 1 - sse / sst;
}

template double accuracy<float>(const Batch<float>&, const BatchView<float>&);
template double accuracy<double>(const Batch<double>&, const BatchView<double>&);
template double r2_score<float>(const Batch<float>&, const BatchView<float>&);
template double r2_score<double>(const Batch<double>&, const BatchView<double>&);

Confusion confusion_matrix(std::span<const std::size_t> truth,
                           std::span<const std::size_t> predicted, std::size_t K) {
  Confusion c(K, std::vector<long>(K, 0));
  for (std::size_t n = 0; n < truth.size(); ++n)
    ++c[truth[n]][predicted[n]];
  return c;
}

double accuracy(const Confusion& c) {
  long correct = 0, total = 0;
  for (std::size_t k = 0; k < c.size(); ++k) {
    correct += c[k][k];
    for (const long v : c[k])
      total += v;
  }
  return total == 0 ? 0.0 : double(correct) / double(total);
}

std::vector<ClassMetrics> class_metrics(const Confusion& c,
                                        const std::vector<std::string>& labels) {
  const std::size_t K = c.size();
  std::vector<ClassMetrics> out;
  for (std::size_t k = 0; k < K; ++k) {
    long predicted = 0, actual = 0;
    for (std::size_t i = 0; i < K; ++i) {
      predicted += c[i][k];
      actual += c[k][i];
    }
    ClassMetrics m{.label = labels[k], .support = actual};
    const long tp = c[k][k];
    m.precision = predicted ? double(tp) / double(predicted) : 0.0;
    m.recall = actual ? double(tp) / double(actual) : 0.0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    out.push_back(m);
  }
  return out;
}

RegressionMetrics regression_metrics(std::span<const double> y, std::span<const double> p) {
  const double n = double(y.size());
  double mean = 0;
  for (const double v : y)
    mean += v;
  mean /= n;
  double se = 0, ae = 0, st = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = y[i] - p[i];
    se += d * d;
    ae += std::abs(d);
    st += (y[i] - mean) * (y[i] - mean);
  }
  return {.mse = se / n, .mae = ae / n, .r2 = st > 0 ? 1 - se / st : 0.0};
}

}  // namespace chainrule
