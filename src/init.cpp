#include "chainrule/init.hpp"

#include <cmath>
#include <string>

#include "chainrule/error.hpp"
#include "enum_names.hpp"

namespace chainrule {

namespace {
constexpr detail::EnumName<Init> kNames[] = {{Init::normal, "normal"},
                                             {Init::xavier, "xavier"},
                                             {Init::he, "he"},
                                             {Init::xavier, "glorot"},
                                             {Init::he, "kaiming"}};
}  // namespace

std::string_view to_string(Init i) {
  return detail::name_of<Init>(kNames, i);
}

Init parse_init(std::string_view name) {
  return detail::parse_name<Init>(kNames, name, "initializer");
}

template <class T>
void initialize(Network<T>& net, Init init, Rng& rng) {
  T* p = net.params().data();
  for (const Dense<T>& layer : net.layers()) {
    auto W = layer.weight(p);
    auto b = layer.bias(p);
    const double in = double(layer.in()), out = double(layer.out());
    // Column-major W: this walks the buffer in order, like PyTorch's (out, in) weight row by row.
    for (Index j = 0; j < W.cols(); ++j)
      for (Index i = 0; i < W.rows(); ++i) {
        switch (init) {
          case Init::normal:
            W(i, j) = T(rng.normal());
            break;
          case Init::xavier: {
            const double r = std::sqrt(6.0 / (in + out));
            W(i, j) = T(rng.uniform(-r, r));
            break;
          }
          case Init::he:
            W(i, j) = T(rng.normal() * std::sqrt(2.0 / in));
            break;
        }
      }
    for (Index j = 0; j < b.size(); ++j)
      b(j) = init == Init::normal ? T(rng.normal()) : T(0);
  }
}

template void initialize<float>(Network<float>&, Init, Rng&);
template void initialize<double>(Network<double>&, Init, Rng&);

}  // namespace chainrule
