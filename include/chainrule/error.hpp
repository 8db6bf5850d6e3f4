// Errors thrown by the library. Only the CLI catches them and chooses exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace chainrule {

/// Base of every error the library throws; what() is one line a user can act on.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration or argument outside its allowed range (for example a layer of size 0).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A malformed or unusable input file; what() starts with "file:line:column:" where known.
class DataError : public Error {
 public:
  using Error::Error;
};

/// Training produced a NaN or infinite loss or weight.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

/// A model file that cannot be read or does not fit what it is used for.
class ModelError : public Error {
 public:
  using Error::Error;
};

/// A size over one of the limits that bound memory before anything is allocated (the input's
/// bytes, the categories of a column, the classes, a run's estimated memory). `limit` names the
/// option that raises it, in the library's terms (docs/errors.md lists them).
class LimitError : public DataError {
 public:
  LimitError(const std::string& what, std::string limit)
      : DataError(what), limit(std::move(limit)) {}
  std::string limit;
};

}  // namespace chainrule
