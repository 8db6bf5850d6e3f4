#include "chainrule/model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

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

}  // namespace
}  // namespace chainrule
