// Internal: the number parsing the CSV reader is built on (number.cpp). Public functions of the
// same topic (format_number, is_missing) are declared in table.hpp.
#pragma once

#include <charconv>
#include <string_view>

namespace chainrule::detail {

/// The field without leading and trailing spaces and tabs.
std::string_view trim(std::string_view s);

/// std::from_chars for doubles, bit for bit, with a fast path for the common forms.
std::from_chars_result to_double(const char* p, const char* end, double& out);

enum class Parsed { number, missing, not_a_number, out_of_range };

/// One CSV field as a number: missing (NA, empty ...), a finite number (a leading '+' and spaces
/// allowed; too small for a double reads as 0), not a number, or out of range (1e999, inf).
Parsed parse_number(std::string_view field, double& out);

}  // namespace chainrule::detail
