// Errors thrown by the library. Only the CLI catches them and chooses exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace chainrule {

/// Base of every error the library throws; what() is one line a user can act on, in the
/// library's terms. `option` names the library option that changes the outcome (for example
/// "impute", "max_classes"), empty if none: each front-end turns it into its own advice (the
/// command line into a flag, docs/errors.md).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string option = {})
      : std::runtime_error(what), option(std::move(option)) {}
  std::string option;
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
/// bytes, the categories of a column, the classes, a run's estimated memory). `option` names the
/// limit that raises it (docs/errors.md lists them).
class LimitError : public DataError {
 public:
  using DataError::DataError;
};

}  // namespace chainrule
