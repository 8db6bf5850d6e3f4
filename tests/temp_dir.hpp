// A directory of this test program's own under the test temporary directory (gtest's TempDir(),
// /tmp unless TEST_TMPDIR or TMPDIR say otherwise), created on first use and removed with
// everything in it when the program ends, so that a test run leaves no files behind.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace chainrule::test {

inline const std::filesystem::path& temp_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir()
        : path(std::filesystem::path(::testing::TempDir()) /
               ("chainrule_test_" + std::to_string(::getpid()))) {
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Dir dir;
  return dir.path;
}

/// `name` in temp_dir().
inline std::string temp_file(const std::string& name) {
  return (temp_dir() / name).string();
}

}  // namespace chainrule::test
