// The tests' one way to read an error: what f() throws (a chainrule::Error), or "(no error)".
#pragma once

#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace chainrule
