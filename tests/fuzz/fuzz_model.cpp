// libFuzzer target: the model and checkpoint loader, then a forward pass of what it accepted.
// Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the loader skips its checksum so that
// mutations reach the parsing behind it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "chainrule/error.hpp"
#include "chainrule/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    const char* shm = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(shm) + "/chainrule_fuzz_model_" + std::to_string(::getpid());
  }();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  try {
    const chainrule::Model m = chainrule::load_model(path);
    if (m.params.size() < 100000) {  // run what loaded, within a fuzzer's memory budget
      chainrule::Network<float> net = m.network<float>();
      (void)net.forward(chainrule::Batch<float>::Ones(2, m.spec.inputs));
    }
    (void)chainrule::load_checkpoint(path);
  } catch (const chainrule::Error&) {
  }
  return 0;
}
