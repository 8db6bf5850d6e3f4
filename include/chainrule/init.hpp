// Weight initializers. Each draws from the one seeded generator, in flat-buffer order.
#pragma once

#include <string_view>

#include "chainrule/network.hpp"
#include "chainrule/random.hpp"

namespace chainrule {

enum class Init {
  normal,  ///< every weight AND bias from N(0, 1): the tutorial's
  xavier,  ///< Glorot/Xavier uniform: W ~ U(-r, r), r = sqrt(6 / (in + out)); b = 0
  he,      ///< He/Kaiming normal (fan_in): W ~ N(0, 2 / in); b = 0
};

/// The name used on the command line and in model files.
std::string_view to_string(Init i);
/// Inverse of to_string; throws ConfigError naming the allowed values.
Init parse_init(std::string_view name);

/// Overwrites every parameter of `net` as `init` says, drawing from `rng`.
template <class T>
void initialize(Network<T>& net, Init init, Rng& rng);

}  // namespace chainrule
