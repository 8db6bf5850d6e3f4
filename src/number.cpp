// Numbers and missing values as CSV files write them: a correctly rounded fast path for the common
// forms, the missing-value spellings, and the shortest text that reads back as the same double.
#include "number.hpp"

#include "chainrule/table.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace chainrule {

std::string format_number(double v) {
  char buf[32];
  if (v == std::floor(v) && std::abs(v) < 1e15) {  // whole numbers as integers: 10, not 1e+01
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

bool is_missing(std::string_view field) {
  const std::string_view s = detail::trim(field);
  if (s.empty()) return true;
  if (s.size() > 4) return false;  // the spellings below are short: no copy for the common case
  char lower[4];
  for (std::size_t i = 0; i < s.size(); ++i)
    lower[i] = char(std::tolower(static_cast<unsigned char>(s[i])));
  const std::string_view l(lower, s.size());
  return l == "na" || l == "nan" || l == "n/a" || l == "null";
}

namespace detail {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// std::from_chars for the numbers CSV files are made of, several times faster: at most 19
// significant digits and a decimal exponent within ±22 give a mantissa and a power of ten that
// are both exact doubles, so one multiplication or division is correctly rounded (Clinger's fast
// path) and the result is from_chars's, bit for bit. Anything else goes to from_chars itself.
std::from_chars_result to_double(const char* p, const char* end, double& out) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* q = p;
  const bool negative = q < end && *q == '-';
  q += negative;
  std::uint64_t m = 0;
  int digits = 0, exponent = 0;
  const char* first_digit = q;
  while (q < end && unsigned(*q - '0') < 10) {
    m = m * 10 + unsigned(*q - '0');
    ++q;
  }
  digits = int(q - first_digit);
  if (q < end && *q == '.') {
    const char* f = ++q;
    while (q < end && unsigned(*q - '0') < 10) {
      m = m * 10 + unsigned(*q - '0');
      ++q;
    }
    exponent = -int(q - f);
    digits += int(q - f);
  }
  if (digits == 0 || digits > 19) return std::from_chars(p, end, out);
  if (q < end && (*q == 'e' || *q == 'E')) {
    const char* e = q + 1;
    const bool eneg = e < end && *e == '-';
    e += e < end && (*e == '-' || *e == '+');
    int x = 0;
    const char* ed = e;
    while (e < end && unsigned(*e - '0') < 10 && e - ed < 4) {
      x = x * 10 + int(*e - '0');
      ++e;
    }
    if (e == ed || (e < end && unsigned(*e - '0') < 10)) return std::from_chars(p, end, out);
    exponent += eneg ? -x : x;
    q = e;
  }
  if (m > (std::uint64_t(1) << 53) || exponent < -22 || exponent > 22)
    return std::from_chars(p, end, out);
  double v = double(m);
  v = exponent < 0 ? v / kPow10[-exponent] : v * kPow10[exponent];
  out = negative ? -v : v;
  return {q, std::errc()};
}

Parsed parse_number(std::string_view field, double& out) {
  std::string_view s = trim(field);
  if (is_missing(s)) return Parsed::missing;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return Parsed::not_a_number;
  const auto [end, ec] = to_double(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range && end == s.data() + s.size()) {
    // Too small for a double (1e-400) is the nearest double, 0 (as strtod and pandas read it);
    // too large (1e999) is an error.
    const std::string copy(s);
    const double v = std::strtod(copy.c_str(), nullptr);
    if (std::abs(v) < 1) {
      out = v;
      return Parsed::number;
    }
    return Parsed::out_of_range;
  }
  if (ec == std::errc::result_out_of_range) return Parsed::out_of_range;
  if (ec != std::errc() || end != s.data() + s.size()) return Parsed::not_a_number;
  if (!std::isfinite(out)) return Parsed::out_of_range;  // "inf", "infinity"
  return Parsed::number;
}

}  // namespace detail

}  // namespace chainrule
