#include "chainrule/model.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include "temp_dir.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chainrule/error.hpp"
#include "chainrule/init.hpp"
#include "chainrule/model_json.hpp"

namespace chainrule {
namespace {

std::string temp_path(const std::string& name) {
  return chainrule::test::temp_file("model_test_" + name);
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
  m.training =
      TrainingSettings{.rows = 4, .seed = 1, .layers = {4}, .activation = Activation::relu};
  m.metrics =
      ModelMetrics{.train = {.loss = 0.5, .rows = 4, .metric = Metric::accuracy, .value = 0.75}};
  // The per-epoch history the report draws (one epoch without validation, one with).
  m.metrics->history = {EpochReport{.epoch = 1, .epochs = 2, .train_loss = 0.9, .lr = 0.01},
                        EpochReport{.epoch = 2,
                                    .epochs = 2,
                                    .train_loss = 0.5,
                                    .val_loss = 0.625,
                                    .val_metric = 0.75,
                                    .metric = Metric::accuracy,
                                    .lr = 0.005,
                                    .best = true}};
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
    EXPECT_EQ(back.metrics, m.metrics);
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

// The stored JSON of the typed metadata, written out by hand: keys sorted, names as the CLI
// spells them, "{}" for none (what files written before the structs hold).
TEST(ModelMetadata, JsonIsTheStoredForm) {
  const TrainingSettings t{.rows = 7,
                           .seed = 42,
                           .layers = {100, 5},
                           .activation = Activation::leaky_relu,
                           .init = std::nullopt,
                           .optimizer = OptimizerKind::adamw,
                           .lr = 0.001,
                           .momentum = 0,
                           .nesterov = false,
                           .weight_decay = 0.01,
                           .schedule = ScheduleKind::cosine,
                           .batch = 32,
                           .epochs = 200,
                           .shuffle = true,
                           .validation = 0.1,
                           .patience = 20,
                           .dropout = 0,
                           .dtype = Dtype::float64};
  const std::string want =
      R"({"activation":"leaky_relu","batch":32,"dropout":0.0,"dtype":"float64","epochs":200,)"
      R"("init":"from a model","layers":"100,5","lr":0.001,"momentum":0.0,"nesterov":false,)"
      R"("optimizer":"adamw","patience":20,"rows":7,"schedule":"cosine","seed":42,"shuffle":true,)"
      R"("val":0.1,"weight_decay":0.01})";
  EXPECT_EQ(nlohmann::json(t).dump(), want);
  EXPECT_EQ(nlohmann::json::parse(want).get<TrainingSettings>(), t);
  TrainingSettings he = t;
  he.init = Init::he;
  EXPECT_EQ(nlohmann::json(he).at("init"), "he");

  const ModelMetrics m{.train = {.loss = 0.25, .rows = 9, .metric = Metric::r2, .value = 0.5},
                       .validation = SplitMetrics{.loss = 1, .rows = 1, .metric = Metric::r2},
                       .epochs_run = 3,
                       .best_epoch = 2,
                       .stopped_early = true};
  const std::string want_m =
      R"({"best_epoch":2,"epochs_run":3,"stopped_early":true,"train":{"loss":0.25,"r2":0.5,)"
      R"("rows":9},"validation":{"loss":1.0,"r2":0.0,"rows":1}})";
  EXPECT_EQ(nlohmann::json(m).dump(), want_m);
  EXPECT_EQ(nlohmann::json::parse(want_m).get<ModelMetrics>(), m);
  // The history: wall times only when there are some (a model's are 0: the same seed gives the
  // same file), validation values only when measured.
  ModelMetrics h = m;
  h.history = {EpochReport{.epoch = 1, .epochs = 3, .train_loss = 2, .lr = 0.5},
               EpochReport{.epoch = 2,
                           .epochs = 3,
                           .train_loss = 1,
                           .val_loss = 0.5,
                           .val_metric = 0.25,
                           .metric = Metric::r2,
                           .lr = 0.5,
                           .best = true}};
  const std::string want_h =
      R"([{"best":false,"epoch":1,"epochs":3,"lr":0.5,"metric":"none","train_loss":2.0},)"
      R"({"best":true,"epoch":2,"epochs":3,"lr":0.5,"metric":"r2","train_loss":1.0,)"
      R"("val_loss":0.5,"val_metric":0.25}])";
  EXPECT_EQ(nlohmann::json(h).at("history").dump(), want_h);
  EXPECT_EQ(nlohmann::json(h).get<ModelMetrics>(), h);
  h.history[0].seconds = 1.5;
  EXPECT_EQ(nlohmann::json(h.history[0]).at("seconds"), 1.5);
  EXPECT_EQ(metadata_json(std::optional<ModelMetrics>()).dump(), "{}");
  EXPECT_FALSE(metadata_from<TrainingSettings>(nlohmann::json::object()));
  EXPECT_THROW(nlohmann::json::parse(R"({"activation":"swish"})").get<TrainingSettings>(),
               ConfigError);
  EXPECT_THROW(nlohmann::json::parse(R"({"layers":"10,x"})").get<TrainingSettings>(), ConfigError);
}

// A model without training settings or metrics (a checkpoint's) stores "{}" and reads it back
// as none.
TEST(ModelMetadata, NoneIsAnEmptyObject) {
  Model m = sample_model(Dtype::float32);
  m.training.reset();
  m.metrics.reset();
  const std::string path = temp_path("none.safetensors");
  save_model(m, path);
  const std::string bytes = slurp(path);
  EXPECT_NE(bytes.find(R"("metrics":"{}")"), std::string::npos);
  EXPECT_NE(bytes.find(R"("training":"{}")"), std::string::npos);
  const Model back = load_model(path);
  EXPECT_FALSE(back.training);
  EXPECT_FALSE(back.metrics);
}

// Every enum's names, written once in a table: to_string and parse are inverses, aliases parse,
// and the messages list the names as they did when each was written out by hand.
TEST(EnumNames, ToStringParseAndMessages) {
  const auto message = [](auto parse, const char* name) {
    try {
      parse(name);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (Activation a : {Activation::identity, Activation::sigmoid, Activation::tanh,
                       Activation::relu, Activation::leaky_relu, Activation::softmax})
    EXPECT_EQ(parse_activation(to_string(a)), a);
  EXPECT_EQ(to_string(Activation::leaky_relu), "leaky_relu");
  EXPECT_EQ(message(parse_activation, "gelu"),
            "unknown activation 'gelu': expected identity, sigmoid, tanh, relu, leaky_relu or "
            "softmax");
  EXPECT_EQ(parse_loss("bce"), Loss::binary_cross_entropy);
  EXPECT_EQ(parse_loss("cross_entropy"), Loss::softmax_cross_entropy);
  EXPECT_EQ(to_string(Loss::softmax_cross_entropy), "softmax_cross_entropy");
  EXPECT_EQ(message(parse_loss, "hinge"),
            "unknown loss 'hinge': expected mse, binary_cross_entropy or softmax_cross_entropy");
  EXPECT_EQ(parse_init("glorot"), Init::xavier);
  EXPECT_EQ(parse_init("kaiming"), Init::he);
  EXPECT_EQ(to_string(Init::he), "he");
  EXPECT_EQ(message(parse_init, "zeros"),
            "unknown initializer 'zeros': expected normal, xavier or he");
  EXPECT_EQ(to_string(OptimizerKind::rmsprop), "rmsprop");
  EXPECT_EQ(parse_optimizer("adamw"), OptimizerKind::adamw);
  EXPECT_EQ(message(parse_optimizer, "lbfgs"),
            "unknown optimizer 'lbfgs': expected sgd, adam, adamw or rmsprop");
  EXPECT_EQ(to_string(ScheduleKind::step), "step");
  EXPECT_EQ(parse_schedule("cosine"), ScheduleKind::cosine);
  EXPECT_EQ(message(parse_schedule, "linear"),
            "unknown schedule 'linear': expected constant, step or cosine");
  EXPECT_EQ(to_string(Scale::minmax), "minmax");
  EXPECT_EQ(parse_scale("none"), Scale::none);
  EXPECT_EQ(message(parse_scale, "log"),
            "unknown scaling 'log': expected standard, minmax or none");
  EXPECT_EQ(to_string(Task::regress), "regress");
  EXPECT_EQ(message(parse_task, "rank"), "unknown task 'rank': expected classify or regress");
  EXPECT_EQ(parse_dtype("f64"), Dtype::float64);
  EXPECT_EQ(to_string(Dtype::float32), "float32");
  EXPECT_EQ(message(parse_dtype, "f16"),
            "unknown dtype 'f16': expected float32, float64 or bfloat16");
  EXPECT_EQ(to_string(Metric::r2), "r2");
  EXPECT_EQ(parse_metric("accuracy"), Metric::accuracy);
  EXPECT_EQ(parse_metric("mystery"), Metric::none);
}

}  // namespace
}  // namespace chainrule
