// Shared array types. A batch is a row-major matrix with one sample per row.
#pragma once

#include <Eigen/Core>

namespace chainrule {

using Index = Eigen::Index;

/// A batch of samples, one per row: (N, features).
template <class T>
using Batch = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A read-only view of a batch (a Batch, a Map over CSV data, a block of rows ...).
template <class T>
using BatchView = Eigen::Ref<const Batch<T>>;

}  // namespace chainrule
