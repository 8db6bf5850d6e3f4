#include "chainrule/model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"

namespace chainrule {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/model_test_" + std::to_string(::getpid()) + "_" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Model sample_model(Dtype dtype) {
  const Table t =
      parse_csv("name,age,color,y\na,10,red,x\nb,20,blue,z\nc,35,red,w\nd,41,blue,x\n", "s.csv");
  Model m;
  m.dtype = dtype;
  m.prep = Preprocessor::fit(t, all_rows(4), {.drop = {"name"}});
  m.spec = {.inputs = m.prep.inputs(),
            .layers = {{4, Activation::relu}, {3, Activation::softmax}},
            .loss = Loss::softmax_cross_entropy};
  Network<double> net(m.spec);
  Rng rng(1);
  initialize(net, Init::normal, rng);
  m.set_params(net);
  if (dtype == Dtype::float32)
    for (double& p : m.params)
      p = float(p);
  m.training = R"({"seed":1})";
  m.metrics = R"({"train":{"accuracy":0.75}})";
  return m;
}

TEST(ModelFile, RoundTripIsExact) {
  for (Dtype dtype : {Dtype::float32, Dtype::float64}) {
    const Model m = sample_model(dtype);
    const std::string path = temp_path("round.safetensors");
    save_model(m, path);
    const Model back = load_model(path);
    EXPECT_EQ(back.params, m.params);
    EXPECT_EQ(back.dtype, dtype);
    EXPECT_EQ(back.spec.layers.size(), 2u);
    EXPECT_EQ(back.spec.layers[1].activation, Activation::softmax);
    EXPECT_EQ(back.prep.classes, m.prep.classes);
    EXPECT_EQ(back.prep.features[1].categories, m.prep.features[1].categories);
    EXPECT_EQ(back.prep.features[0].center, m.prep.features[0].center);
    EXPECT_EQ(back.prep.features[0].scale, m.prep.features[0].scale);
    EXPECT_EQ(back.training, m.training);
    // The same model writes the same bytes.
    const std::string again = temp_path("again.safetensors");
    save_model(back, again);
    EXPECT_EQ(slurp(path), slurp(again));
  }
}

TEST(ModelFile, SafetensorsLayout) {
  const Model m = sample_model(Dtype::float32);
  const std::string path = temp_path("layout.safetensors");
  save_model(m, path);
  const std::string bytes = slurp(path);
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);  // tensor data aligned
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find(R"("layers.0.weight":{"data_offsets":[0,48],"dtype":"F32","shape":[4,3]})"),
            std::string::npos)
      << header;
  // layers.0.weight[j][i] is W(i, j): the first float is W(0, 0), the second W(1, 0).
  float w01;
  std::memcpy(&w01, bytes.data() + 8 + n + 4, 4);
  EXPECT_EQ(double(w01), m.params[1]);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * m.params.size());
}

std::string error_of(const std::string& path) {
  try {
    load_model(path);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModelFile, DamagedFilesAreClearErrors) {
  const std::string good = temp_path("good.safetensors");
  save_model(sample_model(Dtype::float64), good);
  const std::string bytes = slurp(good);
  const std::string bad = temp_path("bad.safetensors");
  auto write = [&](const std::string& b) { std::ofstream(bad, std::ios::binary) << b; };

  write(bytes.substr(0, 5));
  EXPECT_NE(error_of(bad).find("shorter than the 8-byte header length"), std::string::npos);
  write(bytes.substr(0, bytes.size() - 8));
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos) << error_of(bad);
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x10;
  write(flipped);
  EXPECT_NE(error_of(bad).find("do not match their checksum"), std::string::npos);
  std::string scale = bytes;  // a flipped bit in the header: a feature's scale
  const auto at = scale.find("scale\\\":");
  ASSERT_NE(at, std::string::npos);
  scale[at + 9] ^= 0x01;
  write(scale);
  EXPECT_NE(error_of(bad).find("do not match their checksum"), std::string::npos) << error_of(bad);
  std::string huge = bytes;
  huge[6] = 1;  // header length ~2^48
  write(huge);
  EXPECT_NE(error_of(bad).find("runs past the end of the file"), std::string::npos);
  std::string version = bytes;
  version.replace(version.find("\"format_version\":\"1\""), 20, "\"format_version\":\"9\"");
  write(version);
  EXPECT_NE(error_of(bad).find("format version 9"), std::string::npos) << error_of(bad);
  EXPECT_NE(error_of(temp_path("missing")).find("cannot open the model file"), std::string::npos);
}

TEST(ModelFile, FailedWriteLeavesTheOldFile) {
  const std::string path = temp_path("keep.safetensors");
  save_model(sample_model(Dtype::float32), path);
  const std::string before = slurp(path);
  Model broken = sample_model(Dtype::float32);
  broken.params.pop_back();  // does not fit its architecture
  EXPECT_THROW(save_model(broken, path), Error);
  EXPECT_EQ(slurp(path), before);
  EXPECT_THROW(save_model(sample_model(Dtype::float32), "/nonexistent/dir/m.safetensors"), Error);
}

// A checkpoint keeps every field of the training state exactly, and reads as a model too.
TEST(CheckpointFile, RoundTripIsExact) {
  for (Dtype dtype : {Dtype::float32, Dtype::float64}) {
    Checkpoint c;
    c.model = sample_model(dtype);
    TrainState& s = c.state;
    s.epoch = 3;
    s.batch = 2;
    s.order = {2, 0, 3, 1};
    s.loss_sum = 0.1 + 0.2;  // a double that needs all 17 digits
    s.best = 1.0 / 3;
    s.since_best = 1;
    s.result.best_epoch = 2;
    for (int e = 1; e <= 3; ++e) {
      EpochReport r{.epoch = e, .epochs = 9, .train_loss = 1.0 / e, .lr = 0.1};
      r.metric = Metric::accuracy;
      r.val_loss = 2.0 / (e + 0.7);
      r.val_metric = 0.25 * e;
      r.best = e != 3;
      s.result.history.push_back(r);
    }
    s.params = c.model.params;
    s.best_params = c.model.params;
    std::reverse(s.best_params.begin(), s.best_params.end());
    std::vector<double> moment(s.params.size());
    for (std::size_t i = 0; i < moment.size(); ++i)
      moment[i] = float(0.001 * double(i) + 1e-9);  // exact in float32
    s.optimizer = {.steps = 12, .buffers = {moment, {}}};
    Rng rng(5);
    rng.normal();
    s.rng = rng.state();
    c.data_crc = 0xdeadbeef;
    c.settings = R"({"lr":0.5,"layers":"4"})";
    const std::string path = temp_path("state.ckpt");
    save_checkpoint(c, path);

    const Checkpoint back = load_checkpoint(path);
    const TrainState& b = back.state;
    EXPECT_EQ(b.epoch, 3);
    EXPECT_EQ(b.batch, 2);
    EXPECT_EQ(b.order, s.order);
    EXPECT_EQ(b.loss_sum, s.loss_sum);
    EXPECT_EQ(b.best, s.best);
    EXPECT_EQ(b.since_best, 1);
    EXPECT_EQ(b.result.best_epoch, 2);
    ASSERT_EQ(b.result.history.size(), 3u);
    EXPECT_EQ(b.result.history[2].val_loss, s.result.history[2].val_loss);
    EXPECT_EQ(b.result.history[1].train_loss, 0.5);
    EXPECT_EQ(b.result.history[2].best, false);
    EXPECT_EQ(b.result.history[0].metric, Metric::accuracy);
    EXPECT_EQ(b.params, s.params);
    EXPECT_EQ(b.best_params, s.best_params);
    EXPECT_EQ(b.optimizer.steps, 12);
    EXPECT_EQ(b.optimizer.buffers, s.optimizer.buffers);
    Rng again(0);
    again.set_state(b.rng);
    EXPECT_EQ(again.normal(), rng.normal());
    EXPECT_EQ(back.data_crc, 0xdeadbeefu);
    EXPECT_EQ(nlohmann::json::parse(back.settings), nlohmann::json::parse(c.settings));
    EXPECT_EQ(load_model(path).params, c.model.params);  // a checkpoint is a model file
  }
  // A model file is not a checkpoint; a damaged checkpoint is caught by the checksum.
  const std::string model = temp_path("plain.safetensors");
  save_model(sample_model(Dtype::float32), model);
  try {
    load_checkpoint(model);
    ADD_FAILURE() << "a model file loaded as a checkpoint";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not a checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chainrule
