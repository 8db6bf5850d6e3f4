#include "chainrule/loss.hpp"

#include <cmath>
#include <string>

#include "chainrule/error.hpp"
#include "enum_names.hpp"

namespace chainrule {

namespace {
constexpr detail::EnumName<Loss> kNames[] = {{Loss::mse, "mse"},
                                             {Loss::binary_cross_entropy, "binary_cross_entropy"},
                                             {Loss::softmax_cross_entropy, "softmax_cross_entropy"},
                                             {Loss::binary_cross_entropy, "bce"},
                                             {Loss::softmax_cross_entropy, "cross_entropy"}};
}  // namespace

std::string_view to_string(Loss l) {
  return detail::name_of<Loss>(kNames, l);
}

Loss parse_loss(std::string_view name) {
  return detail::parse_name<Loss>(kNames, name, "loss");
}

void check_loss_output(Loss loss, Activation output) {
  if (loss == Loss::binary_cross_entropy && output != Activation::sigmoid)
    throw ConfigError("binary_cross_entropy needs a sigmoid output layer, found " +
                      std::string(to_string(output)));
  if (loss == Loss::softmax_cross_entropy && output != Activation::softmax)
    throw ConfigError("softmax_cross_entropy needs a softmax output layer, found " +
                      std::string(to_string(output)));
}

template <class T>
void detail::add_sample_loss(Loss loss, const T* z, const T* a, const T* y, Index K, double& sum) {
  switch (loss) {
    case Loss::mse:
      // L = 1/(N K) Σ (a - y)²
      for (Index k = 0; k < K; ++k) {
        const double d = double(a[k]) - double(y[k]);
        sum += d * d;
      }
      return;
    case Loss::binary_cross_entropy:
      // L = -1/(N K) Σ [y log σ(z) + (1 - y) log(1 - σ(z))]
      //   = 1/(N K) Σ [max(z, 0) - z y + log(1 + e^-|z|)]   (never overflows)
      for (Index k = 0; k < K; ++k) {
        const double zk = z[k], yk = y[k];
        sum += std::max(zk, 0.0) - zk * yk + std::log1p(std::exp(-std::abs(zk)));
      }
      return;
    case Loss::softmax_cross_entropy: {
      // L = -1/N Σ_n Σ_k y_nk log softmax(z_n)_k = 1/N Σ_n [logsumexp(z_n) - Σ_k y_nk z_nk]
      // (for targets whose rows sum to 1), with logsumexp(z) = m + log Σ e^(z - m), m = max z.
      double m = z[0];
      for (Index k = 1; k < K; ++k)
        m = std::max(m, double(z[k]));
      double e = 0, yz = 0;
      for (Index k = 0; k < K; ++k) {
        e += std::exp(double(z[k]) - m);
        yz += double(y[k]) * double(z[k]);
      }
      sum += m + std::log(e) - yz;
      return;
    }
  }
}

template <class T>
double loss_value(Loss loss, const Batch<T>& Z, const Batch<T>& A, const BatchView<T>& Y) {
  const Index N = A.rows(), K = A.cols();
  double sum = 0;
  for (Index n = 0; n < N; ++n)
    detail::add_sample_loss<T>(loss, Z.row(n).data(), A.row(n).data(), Y.row(n).data(), K, sum);
  return sum / detail::loss_count(loss, N, K);
}

template <class T>
void loss_gradient(Loss loss, const Batch<T>& A, const BatchView<T>& Y, Batch<T>& G) {
  // mse: ∂L/∂a = 2 (a - y) / (N K); bce: ∂L/∂z = (σ(z) - y) / (N K);
  // softmax cross-entropy: ∂L/∂z = (softmax(z) - y) / N
  G = (A - Y) * T(detail::gradient_factor(loss, A.rows(), A.cols()));
}

#define CHAINRULE_INSTANTIATE(T)                                                                \
  template void detail::add_sample_loss<T>(Loss, const T*, const T*, const T*, Index, double&); \
  template double loss_value<T>(Loss, const Batch<T>&, const Batch<T>&, const BatchView<T>&);   \
  template void loss_gradient<T>(Loss, const Batch<T>&, const BatchView<T>&, Batch<T>&);
CHAINRULE_INSTANTIATE(float)
CHAINRULE_INSTANTIATE(double)
#undef CHAINRULE_INSTANTIATE

}  // namespace chainrule
