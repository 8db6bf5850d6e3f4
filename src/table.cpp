#include "chainrule/table.hpp"

#include <charconv>
#include <string>

namespace chainrule {

long Table::find(std::string_view name) const {
  for (std::size_t c = 0; c < columns.size(); ++c)
    if (columns[c].name == name) return long(c);
  std::size_t index = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (ec == std::errc() && end == name.data() + name.size() && index < columns.size())
    return long(index);
  return -1;
}

std::string Table::where(std::size_t row, const Column& column) const {
  if (row < lines.size())
    return source + ":" + std::to_string(lines[row]) + ":" + std::to_string(column.field);
  return source + ": row " + std::to_string(row + 1) + ", column '" + column.name + "'";
}

}  // namespace chainrule
