// libFuzzer target: the IDX reader (images, and labels). The first byte splits the input into
// an images file and a labels file; both go through real files, as read_idx reads paths.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "chainrule/error.hpp"
#include "chainrule/table.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::string dir = [] {
    const char* shm = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(shm) + "/chainrule_fuzz_idx_" + std::to_string(::getpid());
  }();
  const std::size_t split = std::size_t(data[0]) * (size - 1) / 255;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::string images = dir + "_images", labels = dir + "_labels";
  std::ofstream(images, std::ios::binary).write(bytes, std::streamsize(split));
  std::ofstream(labels, std::ios::binary).write(bytes + split, std::streamsize(size - 1 - split));
  try {
    (void)chainrule::read_idx(images, (data[0] & 1) ? labels : "");
  } catch (const chainrule::Error&) {
  }
  return 0;
}
