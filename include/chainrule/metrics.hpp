// Metrics, each written once: of network outputs during training (accuracy, R² in the network's
// units) and of predictions against the truth (confusion matrix, per-class precision, recall and
// F1, regression errors in the target's units). Training, fit and evaluate all call these.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chainrule/types.hpp"

namespace chainrule {

/// What validation reports besides the loss.
enum class Metric { none, accuracy, r2 };

/// "accuracy", "r2" or "none".
std::string_view to_string(Metric m);
/// Inverse of to_string; a name it does not know is Metric::none.
Metric parse_metric(std::string_view s);

/// Accuracy of outputs P against targets Y: argmax for several outputs, threshold 0.5 for one.
template <class T>
double accuracy(const Batch<T>& P, const BatchView<T>& Y);
/// Coefficient of determination R² = 1 - Σ(y - p)² / Σ(y - ȳ)², over all outputs (each output's
/// ȳ its own); 0 when the targets do not vary.
template <class T>
double r2_score(const Batch<T>& P, const BatchView<T>& Y);

/// counts[true class][predicted class].
using Confusion = std::vector<std::vector<long>>;

/// The confusion matrix of K classes from true and predicted class indices (the same length).
Confusion confusion_matrix(std::span<const std::size_t> truth,
                           std::span<const std::size_t> predicted, std::size_t K);
/// Σ diagonal / Σ all; 0 for no rows.
double accuracy(const Confusion& c);

struct ClassMetrics {
  std::string label;
  double precision = 0, recall = 0, f1 = 0;
  long support = 0;  ///< rows of this true class
};

/// Precision tp / predicted, recall tp / actual and F1 (their harmonic mean) of every class
/// (0 where a denominator is 0), labelled by `labels` (one per class).
std::vector<ClassMetrics> class_metrics(const Confusion& c, const std::vector<std::string>& labels);

struct RegressionMetrics {
  double mse = 0, mae = 0, r2 = 0;
};

/// Mean squared and absolute error and R² of predictions p against truth y (the same length,
/// not empty); R² is 0 when y does not vary.
RegressionMetrics regression_metrics(std::span<const double> y, std::span<const double> p);

}  // namespace chainrule
