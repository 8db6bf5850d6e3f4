#include "chainrule/model.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "chainrule/error.hpp"
#include "chainrule/model_json.hpp"
#include "crc.hpp"
#include "enum_names.hpp"
#include "model_file.hpp"

namespace chainrule {

using detail::ModelFile;
using nlohmann::json;

namespace {
constexpr detail::EnumName<Dtype> kDtypeNames[] = {
    {Dtype::float32, "float32"}, {Dtype::float64, "float64"}, {Dtype::bfloat16, "bfloat16"},
    {Dtype::float32, "f32"},     {Dtype::float64, "f64"},     {Dtype::bfloat16, "bf16"}};
}  // namespace

std::string_view to_string(Dtype d) {
  return detail::name_of<Dtype>(kDtypeNames, d);
}
Dtype parse_dtype(std::string_view s) {
  return detail::parse_name<Dtype>(kDtypeNames, s, "dtype");
}

template <class T>
Network<T> Model::network() const {
  Network<T> net(spec);
  if (params.size() != net.params().size())
    throw ModelError("the model holds " + std::to_string(params.size()) +
                     " parameters, its architecture needs " + std::to_string(net.params().size()));
  for (std::size_t i = 0; i < params.size(); ++i)
    net.params()[i] = T(params[i]);
  return net;
}

template <class T>
void Model::set_params(const Network<T>& net) {
  params.assign(net.params().begin(), net.params().end());
}

template Network<float> Model::network<float>() const;
template Network<double> Model::network<double>() const;
template void Model::set_params<float>(const Network<float>&);
template void Model::set_params<double>(const Network<double>&);

namespace {

json architecture_json(const Model& m) {
  json layers = json::array();
  for (const LayerSpec& l : m.spec.layers)
    layers.push_back({{"units", l.units}, {"activation", to_string(l.activation)}});
  return {{"inputs", m.spec.inputs},
          {"layers", layers},
          {"loss", to_string(m.spec.loss)},
          {"dtype", to_string(m.dtype)}};
}

json preprocessing_json(const Preprocessor& p) {
  json features = json::array();
  for (const Feature& f : p.features) {
    if (f.numeric)
      features.push_back({{"name", f.name},
                          {"type", "number"},
                          {"center", f.center},
                          {"scale", f.scale},
                          {"fill", f.fill}});
    else
      features.push_back({{"name", f.name}, {"type", "text"}, {"categories", f.categories}});
  }
  json j = {{"features", features},
            {"target", p.target},
            {"target_type", p.target_numeric ? "number" : "text"},
            {"task", to_string(p.task)},
            {"scale", to_string(p.scale)},
            {"impute", p.impute == Impute::mean ? "mean" : "none"}};
  if (p.task == Task::classify) {
    j["classes"] = p.classes;
    if (p.target_numeric) j["class_values"] = p.class_values;
  } else {
    j["target_center"] = p.target_center;
    j["target_scale"] = p.target_scale;
  }
  return j;
}

Preprocessor preprocessing_from(const json& j) {
  Preprocessor p;
  for (const json& f : j.at("features")) {
    Feature feat;
    feat.name = f.at("name").get<std::string>();
    feat.numeric = f.at("type") == "number";
    if (feat.numeric) {
      feat.center = f.at("center").get<double>();
      feat.scale = f.at("scale").get<double>();
      feat.fill = f.at("fill").get<double>();
      if (!(feat.scale != 0)) throw ConfigError("feature '" + feat.name + "' has scale 0");
    } else {
      feat.categories = f.at("categories").get<std::vector<std::string>>();
    }
    p.features.push_back(std::move(feat));
  }
  p.target = j.at("target").get<std::string>();
  p.target_numeric = j.at("target_type") == "number";
  p.task = parse_task(j.at("task").get<std::string>());
  p.scale = parse_scale(j.at("scale").get<std::string>());
  p.impute = j.at("impute") == "mean" ? Impute::mean : Impute::none;
  if (p.task == Task::classify) {
    p.classes = j.at("classes").get<std::vector<std::string>>();
    if (p.target_numeric) p.class_values = j.at("class_values").get<std::vector<double>>();
  } else {
    p.target_center = j.at("target_center").get<double>();
    p.target_scale = j.at("target_scale").get<double>();
  }
  return p;
}

// "crc32:xxxxxxxx" over the header (without its checksum entry, compact, keys sorted) followed by
// the tensor data: any flipped bit of a weight, a scale or a class label is caught.
std::string content_checksum(json header, std::string_view data) {
  header["__metadata__"].erase("checksum");
  const std::string h = header.dump();
  const std::uint32_t crc =
      detail::crc32_update(detail::crc32_update(0, h.data(), h.size()), data.data(), data.size());
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
  return std::string("crc32:") + buf;
}

// The header's size bound: a checkpoint's history of 100 000 epochs fits many times over.
constexpr std::uint64_t kMaxHeaderBytes = std::uint64_t(64) << 20;
// JSON nesting deeper than this is refused before parsing: chainrule's own is at most 4 deep, and
// a header of 50 000 '[' would otherwise overflow the stack in the recursive dump and destructor.
constexpr int kMaxJsonDepth = 32;
// Bytes after the tensor data read to be judged by the checksum, at most.
constexpr std::uint64_t kMaxTrailingBytes = std::uint64_t(1) << 20;

// Everything predict, eval, explain and training rely on, checked once at load time: a file with
// a valid checksum can still have been written by someone else.
void check_invariants(const Model& m, const ModelFile& f) {
  const auto finite = [](double v) { return std::isfinite(v); };
  for (std::size_t i = 0; i < m.params.size(); ++i)
    if (!finite(m.params[i]))
      throw f.bad("parameter " + std::to_string(i) + " of the flat buffer is " +
                  (std::isnan(m.params[i]) ? "NaN" : "infinite") + ": expected finite weights");
  std::set<std::string> names;
  for (const Feature& feat : m.prep.features) {
    if (!names.insert(feat.name).second) throw f.bad("feature '" + feat.name + "' appears twice");
    if (feat.numeric) {
      if (!finite(feat.center) || !finite(feat.scale) || !finite(feat.fill))
        throw f.bad("feature '" + feat.name + "' has a non-finite center, scale or fill");
      continue;
    }
    if (feat.categories.empty()) throw f.bad("feature '" + feat.name + "' has no categories");
    for (std::size_t k = 1; k < feat.categories.size(); ++k)
      if (!(feat.categories[k - 1] < feat.categories[k]))
        throw f.bad("the categories of feature '" + feat.name +
                    "' are not sorted and distinct: expected byte order");
  }
  const Preprocessor& p = m.prep;
  if (p.task == Task::classify) {
    if (p.classes.size() < 2) throw f.bad("a classifier with fewer than two classes");
    if (p.target_numeric && p.class_values.size() != p.classes.size())
      throw f.bad("the numeric class values do not match the class labels");
    for (std::size_t k = 1; k < p.classes.size(); ++k) {
      const bool sorted = p.target_numeric ? p.class_values[k - 1] < p.class_values[k]
                                           : p.classes[k - 1] < p.classes[k];
      if (!sorted) throw f.bad("the class labels are not sorted and distinct");
    }
    for (const double v : p.class_values)
      if (!finite(v)) throw f.bad("a numeric class value is not finite");
  } else if (!finite(p.target_center) || !finite(p.target_scale) || p.target_scale == 0) {
    throw f.bad("the target's center and scale must be finite, the scale not 0");
  }
  const LayerSpec& out = m.spec.layers.back();
  if (out.units != p.outputs())
    throw f.bad("the output layer has " + std::to_string(out.units) + " units, the " +
                (p.task == Task::classify ? std::to_string(p.classes.size()) + " classes need "
                                          : std::string("regression target needs ")) +
                std::to_string(p.outputs()));
  const Activation want = p.task == Task::regress ? Activation::identity
                          : p.classes.size() == 2 ? Activation::sigmoid
                                                  : Activation::softmax;
  if (out.activation != want)
    throw f.bad("the output activation is " + std::string(to_string(out.activation)) +
                ", the task needs " + std::string(to_string(want)));
  for (std::size_t l = 0; l + 1 < m.spec.layers.size(); ++l)
    if (m.spec.layers[l].activation == Activation::softmax)
      throw f.bad("hidden layer " + std::to_string(l) + " has a softmax activation");
}

// The architecture in the metadata `meta`; the parameter count it claims is checked against the
// file's size before anything of that size is allocated.
void read_architecture(Model& m, const json& meta, const ModelFile& f) {
  const json arch = detail::parse_bounded(meta.at("architecture").get<std::string>(), f);
  m.spec.inputs = arch.at("inputs").get<Index>();
  for (const json& l : arch.at("layers"))
    m.spec.layers.push_back(
        {l.at("units").get<Index>(), parse_activation(l.at("activation").get<std::string>())});
  m.spec.loss = parse_loss(arch.at("loss").get<std::string>());
  m.dtype = parse_dtype(arch.at("dtype").get<std::string>());
  if (m.dtype != weights_dtype(m.dtype))
    throw f.bad("the architecture's dtype is " + std::string(to_string(m.dtype)) +
                ": expected float32 or float64");
  const std::uint64_t width_bytes = m.dtype == Dtype::float32 ? 4 : 8;
  std::uint64_t count = 0, in = std::uint64_t(std::max<Index>(m.spec.inputs, 0));
  for (const LayerSpec& l : m.spec.layers) {
    const auto out = std::uint64_t(std::max<Index>(l.units, 0));
    if (in > (1ull << 32) || out > (1ull << 32)) throw f.bad("a layer size is out of range");
    count += in * out + out;
    if (count > f.data.size() / width_bytes)
      throw f.bad("the architecture needs more weights than the file holds");
    in = out;
  }
}

// The weights of every layer of `shape` (the model's architecture), checked against its shapes.
void read_params(Model& m, const Network<double>& shape, const ModelFile& f) {
  m.params.assign(std::size_t(shape.num_params()), 0.0);
  const std::size_t width = m.dtype == Dtype::float32 ? 4 : 8;
  const std::string dtype = m.dtype == Dtype::float32 ? "F32" : "F64";
  for (std::size_t l = 0; l < shape.layers().size(); ++l) {
    const auto& layer = shape.layers()[l];
    const auto read = [&](const std::string& name, Index first, Index count, const json& want) {
      const std::string_view bytes = f.tensor(name, dtype, std::uint64_t(count), width, &want);
      for (Index i = 0; i < count; ++i) {
        const char* p = bytes.data() + std::size_t(i) * width;
        if (width == 4) {
          float v;
          std::memcpy(&v, p, 4);
          m.params[std::size_t(first + i)] = v;
        } else {
          std::memcpy(&m.params[std::size_t(first + i)], p, 8);
        }
      }
    };
    const std::string prefix = "layers." + std::to_string(l);
    read(prefix + ".weight", layer.offset(), layer.in() * layer.out(),
         json{layer.out(), layer.in()});
    read(prefix + ".bias", layer.bias_offset(), layer.out(), json{layer.out()});
  }
}

}  // namespace

std::string detail::serialize(const Model& m, const json& extra_meta,
                              const std::vector<ExtraTensor>& extras) {
  const Network<double> shape(m.spec);  // validates the spec and gives the tensor offsets
  if (m.params.size() != std::size_t(shape.num_params()))
    throw Error("save_model: the parameter count does not match the architecture");
  const std::size_t width = m.dtype == Dtype::float32 ? 4 : 8;
  std::string data;
  data.reserve(m.params.size() * width);
  json header = json::object();
  for (std::size_t l = 0; l < shape.layers().size(); ++l) {
    const auto& layer = shape.layers()[l];
    const auto add = [&](const std::string& name, Index first, Index count, json shape_json) {
      const std::size_t begin = data.size();
      for (Index i = first; i < first + count; ++i) {
        if (m.dtype == Dtype::float32)
          append_le(data, float(m.params[std::size_t(i)]));
        else
          append_le(data, m.params[std::size_t(i)]);
      }
      header[name] = {{"dtype", m.dtype == Dtype::float32 ? "F32" : "F64"},
                      {"shape", shape_json},
                      {"data_offsets", {begin, data.size()}}};
    };
    const std::string prefix = "layers." + std::to_string(l);
    // Column-major (in, out) W is row-major (out, in): PyTorch's nn.Linear weight.
    add(prefix + ".weight", layer.offset(), layer.in() * layer.out(), {layer.out(), layer.in()});
    add(prefix + ".bias", layer.bias_offset(), layer.out(), {layer.out()});
  }
  for (const ExtraTensor& t : extras) {
    const std::size_t begin = data.size();
    data += t.bytes;
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  header["__metadata__"] = {
      {"format", "chainrule"},
      {"format_version", std::to_string(kModelFormatVersion)},
      {"architecture", architecture_json(m).dump()},
      {"preprocessing", preprocessing_json(m.prep).dump()},
      {"training", metadata_json(m.training).dump()},
      {"metrics", metadata_json(m.metrics).dump()},
  };
  header["__metadata__"].update(extra_meta);
  header["__metadata__"]["checksum"] = content_checksum(header, data);
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0)
    h += ' ';  // align the tensor data to 8 bytes
  std::string file;
  file.reserve(8 + h.size() + data.size());
  append_le(file, std::uint64_t(h.size()));
  file += h;
  file += data;
  return file;
}

json detail::parse_bounded(std::string_view text, const ModelFile& f) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw f.bad("its JSON is nested more than " + std::to_string(kMaxJsonDepth) +
                    " levels deep at byte " + std::to_string(i));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw f.bad(std::string("the header is not JSON (") + e.what() + ")");
  }
}

ModelFile detail::read_model_file(const std::string& path) {
  ModelFile f;
  f.path = path;
  std::unique_ptr<InputFile> in;
  try {
    in = std::make_unique<InputFile>(path);
  } catch (const DataError&) {
    throw ModelError(path + ": cannot open the model file: " + std::strerror(errno));
  }
  char len[8];
  if (in->read(len, 8) < 8) throw f.bad("the file is shorter than the 8-byte header length");
  std::uint64_t hlen;
  std::memcpy(&hlen, len, 8);
  if (in->regular() && hlen > in->size() - 8)
    throw f.bad("the header length (" + std::to_string(hlen) +
                " bytes) runs past the end of the file (" + std::to_string(in->size()) + " bytes)");
  if (hlen > kMaxHeaderBytes)
    throw f.bad("the header length (" + std::to_string(hlen) + " bytes) is over the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes");
  // The header, then the tensor data its offsets promise: nothing is allocated or read past
  // what the header says, and nothing is parsed before its nesting depth is checked.
  const Bytes head = in->read_up_to(hlen);
  if (head.size() < hlen)
    throw f.bad("the header length (" + std::to_string(hlen) +
                " bytes) runs past the end of the file (" + std::to_string(8 + head.size()) +
                " bytes)");
  f.header = parse_bounded(head.view(), f);
  std::uint64_t data_end = 0;
  if (!f.header.is_object()) throw f.bad("the header is not a JSON object");
  for (const auto& [name, t] : f.header.items()) {
    if (name == "__metadata__") continue;
    const json* offsets =
        t.is_object() && t.contains("data_offsets") ? &t["data_offsets"] : nullptr;
    if (offsets == nullptr || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[1].is_number_unsigned())
      throw f.bad("tensor '" + name + "' has no valid data_offsets");
    data_end = std::max(data_end, (*offsets)[1].get<std::uint64_t>());
  }
  // Offsets past the data or past the input limit are reported tensor by tensor below (and a
  // short file by its checksum); the read itself never goes past either.
  const Bytes data = in->read_up_to(std::min(data_end, default_max_input_bytes()));
  f.bytes.assign(data.data(), data.size());
  // Bytes past the promised data are kept for the checksum to judge, up to a bound (a header
  // followed by an endless device is not read to the memory limit).
  if (data.size() == data_end) {
    const Bytes rest = in->read_up_to(kMaxTrailingBytes + 1);
    if (rest.size() > kMaxTrailingBytes)
      throw f.bad("the file goes on past the " + std::to_string(data_end) +
                  " bytes of tensor data its header promises");
    f.bytes.append(rest.data(), rest.size());
  }
  try {
    in->check_unchanged();
  } catch (const DataError& e) {
    throw ModelError(e.what());
  }
  f.data = f.bytes;
  try {
    const json& meta = f.header.at("__metadata__");
    if (!meta.is_object() || meta.value("format", "") != "chainrule")
      throw f.bad("its metadata does not say format 'chainrule'");
    const std::string version = meta.at("format_version").get<std::string>();
    if (version != std::to_string(kModelFormatVersion))
      throw f.bad("format version " + version + ", this chainrule reads version " +
                  std::to_string(kModelFormatVersion));
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzzers mutate past the checksum
    if (meta.at("checksum").get<std::string>() != content_checksum(f.header, f.data))
      throw f.bad("its header and tensor data do not match their checksum (the file is damaged)");
#endif
  } catch (const json::exception& e) {
    throw f.bad(std::string("its header is incomplete (") + e.what() + ")");
  }
  return f;
}

Model detail::model_from(const ModelFile& f) {
  Model m;
  try {
    const json& meta = f.header.at("__metadata__");
    read_architecture(m, meta, f);
    m.prep = preprocessing_from(parse_bounded(meta.at("preprocessing").get<std::string>(), f));
    m.training =
        metadata_from<TrainingSettings>(parse_bounded(meta.at("training").get<std::string>(), f));
    m.metrics =
        metadata_from<ModelMetrics>(parse_bounded(meta.at("metrics").get<std::string>(), f));
    const Network<double> shape(m.spec);
    if (m.prep.inputs() != m.spec.inputs)
      throw f.bad("the preprocessing does not fit the network's inputs");
    read_params(m, shape, f);
  } catch (const json::exception& e) {
    throw f.bad(std::string("its header is incomplete (") + e.what() + ")");
  } catch (const ConfigError& e) {
    throw f.bad(e.what());
  }
  check_invariants(m, f);
  return m;
}

void save_model(const Model& m, const std::string& path) {
  write_file_atomically(path, detail::serialize(m, json::object(), {}));
}

Model load_model(const std::string& path) {
  return detail::model_from(detail::read_model_file(path));
}

}  // namespace chainrule
