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
  if (const std::size_t line = line_of(row); line > 0)
    return source + ":" + std::to_string(line) + ":" + std::to_string(column.field);
  return source + ": row " + std::to_string(row + 1) + ", column '" + column.name + "'";
}

}  // namespace chainrule
