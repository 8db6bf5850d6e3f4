// Errors thrown by the library. Only the CLI catches them and chooses exit codes.
#pragma once

#include <stdexcept>
#include <string>

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

}  // namespace chainrule
