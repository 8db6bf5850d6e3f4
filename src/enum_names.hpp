// One table of names per enum: to_string and parse_* of every option enum are written with it,
// so that each name is spelled once. Internal to the library (not installed).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chainrule/error.hpp"

namespace chainrule::detail {

/// A value and one of its names. In a table, a value's first row is its name (to_string and
/// files); later rows of the same value are aliases that parse accepts.
template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

template <class E>
std::string_view name_of(std::span<const EnumName<E>> table, E value) {
  for (const EnumName<E>& row : table)
    if (row.value == value) return row.name;
  return "?";
}

template <class E>
std::optional<E> find_name(std::span<const EnumName<E>> table, std::string_view name) {
  for (const EnumName<E>& row : table)
    if (row.name == name) return row.value;
  return std::nullopt;
}

/// "a, b or c": the names (not the aliases) of a table, for messages.
template <class E>
std::string names_of(std::span<const EnumName<E>> table) {
  std::vector<std::string_view> names;
  for (const EnumName<E>& row : table)
    if (name_of(table, row.value) == row.name) names.push_back(row.name);
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += i + 1 == names.size() ? " or " : ", ";
    list += names[i];
  }
  return list;
}

/// The value named `name`; ConfigError "unknown <what> '<name>': expected a, b or c" otherwise.
template <class E>
E parse_name(std::span<const EnumName<E>> table, std::string_view name, std::string_view what) {
  if (const std::optional<E> v = find_name(table, name)) return *v;
  throw ConfigError("unknown " + std::string(what) + " '" + std::string(name) + "': expected " +
                    names_of(table));
}

}  // namespace chainrule::detail
