// Internal: a model file's reading and writing (model.cpp), which checkpoints (checkpoint.cpp)
// extend with their training state. Not installed.
#pragma once

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/model.hpp"

namespace chainrule::detail {

using json = nlohmann::json;

// A model file read and checked as far as its layout, format, version and checksum.
struct ModelFile {
  std::string path, bytes;
  json header;
  std::string_view data;

  ModelError bad(const std::string& what) const {
    return ModelError(path + ": not a valid chainrule model: " + what);
  }
  // The bytes of tensor `name`, checked to be `dtype` of `count` elements of `width` bytes.
  std::string_view tensor(const std::string& name, const std::string& dtype, std::uint64_t count,
                          std::size_t width, const json* want_shape = nullptr) const {
    if (!header.contains(name)) throw bad("tensor '" + name + "' is missing");
    const json& t = header[name];
    if (t.at("dtype") != dtype)
      throw bad("tensor '" + name + "' has dtype " + t.at("dtype").dump() + ", expected " + dtype);
    if (want_shape && t.at("shape") != *want_shape)
      throw bad("tensor '" + name + "' has shape " + t.at("shape").dump() +
                ", the architecture says " + want_shape->dump());
    const auto begin = t.at("data_offsets").at(0).get<std::uint64_t>();
    const auto end = t.at("data_offsets").at(1).get<std::uint64_t>();
    if (begin > end || end > data.size() || count > data.size() / width ||
        end - begin != count * width)
      throw bad("tensor '" + name + "' has data offsets outside the file or of the wrong size");
    return data.substr(begin, end - begin);
  }
};

// A tensor stored beside the network's: name, safetensors dtype, shape and little-endian bytes.
struct ExtraTensor {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  std::string bytes;
};

/// Appends `v` as little-endian bytes (x86-64 and arm64 are little-endian, as safetensors is).
template <class T>
void append_le(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

/// The file's bytes: the network's tensors, `extras`, and the metadata with `extra_meta` added.
std::string serialize(const Model& m, const json& extra_meta,
                      const std::vector<ExtraTensor>& extras);

/// Parses JSON of a model file after checking its nesting depth (brackets outside strings).
json parse_bounded(std::string_view text, const ModelFile& f);

/// Reads a model file as far as its layout, format, version and checksum, never past the
/// bounds its header and the input limit set.
ModelFile read_model_file(const std::string& path);

/// The model in a file read by read_model_file, with every invariant checked.
Model model_from(const ModelFile& f);

}  // namespace chainrule::detail
