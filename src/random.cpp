#include "chainrule/random.hpp"

#include <cmath>
#include <numbers>
#include <sstream>

#include "chainrule/error.hpp"

namespace chainrule {

std::string Rng::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Rng::set_state(const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail() || !(in >> std::ws).eof())
    throw ConfigError("not the state of a std::mt19937_64 generator");
  engine_ = engine;
}

double Rng::normal() {
  // Box–Muller: for u1 in (0, 1] and u2 in [0, 1), sqrt(-2 ln u1) cos(2π u2) ~ N(0, 1).
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Rng::below(std::uint64_t n) {
  // Lemire, "Fast random integer generation in an interval" (2019): multiply-shift with rejection.
  __extension__ typedef unsigned __int128 u128;
  u128 m = static_cast<u128>(engine_()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = -n % n;
    while (low < threshold) {
      m = static_cast<u128>(engine_()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

}  // namespace chainrule
