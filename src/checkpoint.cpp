// Checkpoints: a model file with the training state added (docs/model-format.md).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/model.hpp"
#include "chainrule/model_json.hpp"
#include "chainrule/random.hpp"
#include "model_file.hpp"

namespace chainrule {

using detail::append_le;
using detail::ExtraTensor;
using detail::json;
using detail::ModelFile;
using detail::parse_bounded;

namespace {

template <class T>
std::string le_bytes(const std::vector<T>& values, Dtype dtype) {
  std::string out;
  for (const T v : values)
    if (dtype == Dtype::float32)
      append_le(out, float(v));
    else
      append_le(out, v);
  return out;
}

std::vector<double> values_of(std::string_view bytes, Dtype dtype) {
  const std::size_t width = dtype == Dtype::float32 ? 4 : 8;
  std::vector<double> v(bytes.size() / width);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (width == 4) {
      float x;
      std::memcpy(&x, bytes.data() + i * 4, 4);
      v[i] = x;
    } else {
      std::memcpy(&v[i], bytes.data() + i * 8, 8);
    }
  }
  return v;
}

// The optimizer's `buffers` tensors, each empty or of `n` values (one per weight).
std::vector<std::vector<double>> optimizer_buffers(const ModelFile& f, std::size_t buffers,
                                                   std::size_t n, Dtype d) {
  const std::string dt = d == Dtype::float32 ? "F32" : "F64";
  const std::size_t width = d == Dtype::float32 ? 4 : 8;
  if (buffers > 8) throw f.bad("the optimizer state has too many buffers");
  std::vector<std::vector<double>> out;
  for (std::size_t i = 0; i < buffers; ++i) {
    const std::string name = "checkpoint.optimizer." + std::to_string(i);
    if (!f.header.contains(name)) throw f.bad("tensor '" + name + "' is missing");
    const auto len = f.header[name].at("shape").at(0).get<std::uint64_t>();
    if (len != 0 && len != n) throw f.bad("tensor '" + name + "' does not match the weights");
    out.push_back(values_of(f.tensor(name, dt, len, width), d));
  }
  return out;
}

// The row order of the epoch in progress, checked to be a permutation of the rows.
std::vector<Index> row_order(const ModelFile& f) {
  if (!f.header.contains("checkpoint.order")) throw f.bad("tensor 'checkpoint.order' is missing");
  const auto rows = f.header["checkpoint.order"].at("shape").at(0).get<std::uint64_t>();
  const std::string_view order = f.tensor("checkpoint.order", "I64", rows, 8);
  std::vector<Index> out(rows);
  std::vector<bool> seen(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    std::int64_t v;
    std::memcpy(&v, order.data() + i * 8, 8);
    if (v < 0 || std::uint64_t(v) >= rows || seen[std::size_t(v)])
      throw f.bad("tensor 'checkpoint.order' is not a permutation of the rows");
    seen[std::size_t(v)] = true;
    out[i] = Index(v);
  }
  return out;
}

}  // namespace

void save_checkpoint(const Checkpoint& c, const std::string& path) {
  const TrainState& s = c.state;
  const Dtype d = c.model.dtype;
  const std::string dt = d == Dtype::float32 ? "F32" : "F64";
  Model m = c.model;
  m.params = s.params;
  std::vector<ExtraTensor> extras;
  // Without a patience the trainer keeps no best weights: the file holds the weights themselves
  // in their place (a resumed run without a patience never reads them).
  const std::vector<double>& best = s.best_params.empty() ? s.params : s.best_params;
  extras.push_back({"checkpoint.best_params", dt, {best.size()}, le_bytes(best, d)});
  for (std::size_t i = 0; i < s.optimizer.buffers.size(); ++i)
    extras.push_back({"checkpoint.optimizer." + std::to_string(i),
                      dt,
                      {s.optimizer.buffers[i].size()},
                      le_bytes(s.optimizer.buffers[i], d)});
  std::string order;
  for (const Index i : s.order)
    append_le(order, std::int64_t(i));
  extras.push_back({"checkpoint.order", "I64", {s.order.size()}, order});
  json state = {{"epoch", s.epoch},
                {"batch", s.batch},
                {"loss_sum", s.loss_sum},
                {"since_best", s.since_best},
                {"best_epoch", s.result.best_epoch},
                {"history", s.result.history},
                {"optimizer_steps", s.optimizer.steps},
                {"optimizer_buffers", s.optimizer.buffers.size()},
                {"rng", s.rng},
                {"data_crc", c.data_crc},
                {"settings", json::parse(c.settings)}};
  if (s.best) state["best"] = *s.best;
  write_file_atomically(path, detail::serialize(m, {{"checkpoint", state.dump()}}, extras));
}

Checkpoint load_checkpoint(const std::string& path) {
  const ModelFile f = detail::read_model_file(path);
  Checkpoint c;
  c.model = detail::model_from(f);
  TrainState& s = c.state;
  const Dtype d = c.model.dtype;
  const std::string dt = d == Dtype::float32 ? "F32" : "F64";
  const std::size_t width = d == Dtype::float32 ? 4 : 8;
  try {
    const json& meta = f.header.at("__metadata__");
    if (!meta.contains("checkpoint"))
      throw ModelError(path + ": a model file, not a checkpoint: it holds no training state");
    const json j = parse_bounded(meta.at("checkpoint").get<std::string>(), f);
    s.epoch = j.at("epoch").get<int>();
    s.batch = j.at("batch").get<Index>();
    s.loss_sum = j.at("loss_sum").get<double>();
    if (j.contains("best")) s.best = j.at("best").get<double>();
    s.since_best = j.at("since_best").get<int>();
    s.result.best_epoch = j.at("best_epoch").get<int>();
    s.result.history = j.at("history").get<std::vector<EpochReport>>();
    s.optimizer.steps = j.at("optimizer_steps").get<std::int64_t>();
    s.rng = j.at("rng").get<std::string>();
    c.data_crc = j.at("data_crc").get<std::uint32_t>();
    c.settings = j.at("settings").dump();
    s.params = c.model.params;
    const std::size_t n = s.params.size();
    s.best_params = values_of(f.tensor("checkpoint.best_params", dt, n, width), d);
    s.optimizer.buffers = optimizer_buffers(f, j.at("optimizer_buffers").get<std::size_t>(), n, d);
    s.order = row_order(f);
    try {
      Rng(0).set_state(s.rng);
    } catch (const ConfigError&) {
      throw f.bad("the saved random generator state is not one");
    }
    if (s.epoch < 0 || s.batch < 0 || s.since_best < 0 || s.optimizer.steps < 0)
      throw f.bad("the training state holds a negative count");
  } catch (const json::exception& e) {
    throw f.bad(std::string("its training state is incomplete (") + e.what() + ")");
  }
  return c;
}

}  // namespace chainrule
