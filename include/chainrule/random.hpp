// The one seeded random generator. It is passed explicitly to whatever draws numbers, so the same
// seed gives the same model on every run and every machine with the same libm.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>

namespace chainrule {

/// Seeded generator: std::mt19937_64 (its output sequence is fixed by the C++ standard) with our
/// own uniform/normal transforms (std:: distributions differ between standard libraries).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  /// Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Uniform on [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal N(0, 1) by the Box–Muller transform (one draw per call, no cached state).
  double normal();
  /// Uniform integer on [0, n) without modulo bias (Lemire's method); n > 0.
  std::uint64_t below(std::uint64_t n);

  std::mt19937_64& engine() { return engine_; }

  /// The generator's whole state as text (the standard's stream format of std::mt19937_64), and
  /// its restoration; set_state throws ConfigError on text that is not such a state.
  std::string state() const;
  void set_state(const std::string& text);

 private:
  std::mt19937_64 engine_;
};

/// Fisher–Yates shuffle of `items` from `rng`: every reshuffle of rows in chainrule is this one.
template <class T>
void shuffle(std::span<T> items, Rng& rng) {
  for (std::size_t i = items.size(); i > 1; --i)
    std::swap(items[i - 1], items[rng.below(i)]);
}

}  // namespace chainrule
