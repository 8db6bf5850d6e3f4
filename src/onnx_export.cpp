// ONNX export: a model as a standard ONNX graph (opset 13, plus the ai.onnx.ml LabelEncoder for
// text features) computing what predict computes, preprocessing included. docs/deploy.md
// describes the inputs and outputs. Its own target (chainrule::onnx): protobuf and ONNX stay out
// of the core library; the command line and the Python package link it.
#include "chainrule/onnx_export.hpp"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "chainrule/error.hpp"

namespace chainrule {

namespace {

class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto* g, int elem) : g_(g), elem_(elem) {}

  // A constant tensor of the model's element type.
  std::string constant(const std::string& name, const std::vector<double>& values,
                       const std::vector<std::int64_t>& dims) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(elem_);
    for (auto d : dims)
      t->add_dims(d);
    for (double v : values) {
      if (elem_ == onnx::TensorProto::FLOAT)
        t->add_float_data(float(v));
      else
        t->add_double_data(v);
    }
    return name;
  }

  std::string int64s(const std::string& name, const std::vector<std::int64_t>& values) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(std::int64_t(values.size()));
    for (auto v : values)
      t->add_int64_data(v);
    return name;
  }

  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, const std::string& out,
                        const std::string& domain = "") {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(out);
    if (!domain.empty()) n->set_domain(domain);
    for (const auto& i : in)
      n->add_input(i);
    n->add_output(out);
    return n;
  }

  static void attr(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  void io(onnx::ValueInfoProto* v, const std::string& name, int elem,
          std::vector<std::int64_t> dims, const std::string& doc) {
    v->set_name(name);
    v->set_doc_string(doc);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    auto* shape = t->mutable_shape();
    for (auto d : dims) {
      if (d < 0)
        shape->add_dim()->set_dim_param("N");
      else
        shape->add_dim()->set_dim_value(d);
    }
  }

  onnx::GraphProto* g_;
  int elem_;
};

// The model's header: producer, opsets (ai.onnx.ml for text features' LabelEncoder).
void describe_model(onnx::ModelProto& model, const Preprocessor& p, bool text_features) {
  model.set_ir_version(8);
  model.set_producer_name("chainrule");
  model.set_producer_version("0.1.0");
  model.set_doc_string("chainrule model: " + p.target + " (" + std::string(to_string(p.task)) +
                       ")");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  if (text_features) {
    auto* ml = model.add_opset_import();
    ml->set_domain("ai.onnx.ml");
    ml->set_version(2);
  }
}

// The numeric features together as one input, filled (--impute mean), centered and scaled.
// Returns the scaled tensor's name.
std::string add_numeric_input(GraphBuilder& b, const Preprocessor& p,
                              const std::vector<const Feature*>& numeric) {
  const std::string in = "numeric_features";
  std::string doc = "the numeric columns, in this order:";
  for (const Feature* f : numeric)
    doc += " " + f->name;
  b.io(b.g_->add_input(), in, b.elem_, {-1, std::int64_t(numeric.size())}, doc);
  std::vector<double> center, scale, fill;
  for (const Feature* f : numeric) {
    center.push_back(f->center);
    scale.push_back(f->scale);
    fill.push_back(f->fill);
  }
  std::string x = in;
  if (p.impute == Impute::mean) {  // a NaN becomes the training mean
    b.node("IsNaN", {x}, "numeric_missing");
    b.node("Where",
           {"numeric_missing", b.constant("numeric_fill", fill, {std::int64_t(fill.size())}), x},
           "numeric_filled");
    x = "numeric_filled";
  }
  b.node("Sub", {x, b.constant("numeric_center", center, {std::int64_t(center.size())})},
         "numeric_centered");
  b.node("Div",
         {"numeric_centered", b.constant("numeric_scale", scale, {std::int64_t(scale.size())})},
         "numeric_scaled");
  return "numeric_scaled";
}

// Text feature number `t` as its own string input, one-hot encoded by a LabelEncoder (an
// unseen category: all zeros). Returns the one-hot tensor's name.
std::string add_text_input(GraphBuilder& b, const Feature& f, std::size_t t) {
  b.io(b.g_->add_input(), f.name, onnx::TensorProto::STRING, {-1, 1},
       "the text column '" + f.name + "' (one-hot over " + std::to_string(f.categories.size()) +
           " categories; an unseen one encodes as all zeros)");
  const std::string id = "text" + std::to_string(t);
  onnx::NodeProto* enc = b.node("LabelEncoder", {f.name}, id + "_index", "ai.onnx.ml");
  auto* keys = enc->add_attribute();
  keys->set_name("keys_strings");
  keys->set_type(onnx::AttributeProto::STRINGS);
  auto* values = enc->add_attribute();
  values->set_name("values_int64s");
  values->set_type(onnx::AttributeProto::INTS);
  std::vector<std::int64_t> range;
  for (std::size_t k = 0; k < f.categories.size(); ++k) {
    keys->add_strings(f.categories[k]);
    values->add_ints(std::int64_t(k));
    range.push_back(std::int64_t(k));
  }
  GraphBuilder::attr(enc, "default_int64", std::int64_t(-1));
  b.node("Equal", {id + "_index", b.int64s(id + "_range", range)}, id + "_hot");
  GraphBuilder::attr(b.node("Cast", {id + "_hot"}, id + "_onehot"), "to", std::int64_t(b.elem_));
  return id + "_onehot";
}

// The preprocessing: the numeric features together, each text feature on its own, concatenated
// in that order. Returns the network input's name; `order` gets the network input index of each
// column of the concatenation (the numeric inputs, then each text feature's categories).
std::string add_inputs(GraphBuilder& b, const Preprocessor& p, std::vector<Index>& order) {
  std::vector<const Feature*> numeric, text;
  for (const Feature& f : p.features)
    (f.numeric ? numeric : text).push_back(&f);
  const std::vector<InputColumn> layout = p.input_layout();
  for (const bool numeric_pass : {true, false})
    for (const InputColumn& in : layout)
      if ((in.category < 0) == numeric_pass) order.push_back(in.offset);
  std::set<std::string> names;
  std::vector<std::string> parts;  // pieces of the network input, in the order of `order`
  if (!numeric.empty()) {
    names.insert("numeric_features");
    parts.push_back(add_numeric_input(b, p, numeric));
  }
  for (std::size_t t = 0; t < text.size(); ++t) {
    if (!names.insert(text[t]->name).second)
      throw ConfigError("cannot export: two ONNX inputs would be named '" + text[t]->name + "'");
    parts.push_back(add_text_input(b, *text[t], t));
  }
  if (parts.size() == 1) return parts.front();
  GraphBuilder::attr(b.node("Concat", parts, "network_input"), "axis", std::int64_t(1));
  return "network_input";
}

// The activation node of layer `name` on `z`; returns its output (`z` itself for identity).
std::string add_activation(GraphBuilder& b, Activation act, const std::string& z,
                           const std::string& name) {
  const std::string a = name + ".a";
  switch (act) {
    case Activation::identity:
      return z;
    case Activation::sigmoid:
      b.node("Sigmoid", {z}, a);
      break;
    case Activation::tanh:
      b.node("Tanh", {z}, a);
      break;
    case Activation::relu:
      b.node("Relu", {z}, a);
      break;
    case Activation::leaky_relu:
      GraphBuilder::attr(b.node("LeakyRelu", {z}, a), "alpha", float(kLeakySlope));
      break;
    case Activation::softmax:
      GraphBuilder::attr(b.node("Softmax", {z}, a), "axis", std::int64_t(1));
      break;
  }
  return a;
}

// Layers: Gemm with the (out, in) weight and transB = 1, then the activation. The first layer's
// columns follow the concatenation `order`. Returns the last layer's output.
std::string add_layers(GraphBuilder& b, const Model& m, const std::vector<Index>& order,
                       std::string x) {
  const Network<double> net = m.network<double>();
  for (std::size_t l = 0; l < net.layers().size(); ++l) {
    const auto& layer = net.layers()[l];
    const auto W = layer.weight(net.params().data());  // (in, out)
    std::vector<double> w;
    for (Index j = 0; j < layer.out(); ++j)
      for (Index i = 0; i < layer.in(); ++i)
        w.push_back(W(l == 0 ? order[std::size_t(i)] : i, j));
    const auto bias = layer.bias(net.params().data());
    const std::string name = "layers." + std::to_string(l);
    auto* gemm = b.node(
        "Gemm",
        {x, b.constant(name + ".weight", w, {layer.out(), layer.in()}),
         b.constant(name + ".bias", std::vector<double>(bias.data(), bias.data() + bias.size()),
                    {layer.out()})},
        name + ".z");
    GraphBuilder::attr(gemm, "transB", std::int64_t(1));
    x = add_activation(b, layer.activation(), name + ".z", name);
  }
  return x;
}

// Outputs: the value in the target's units, or the class probabilities and the label.
void add_outputs(GraphBuilder& b, const Preprocessor& p, const std::string& x) {
  if (p.task == Task::regress) {
    b.node("Mul", {x, b.constant("target_scale", {p.target_scale}, {1})}, "value_scaled");
    b.node("Add", {"value_scaled", b.constant("target_center", {p.target_center}, {1})}, "value");
    b.io(b.g_->add_output(), "value", b.elem_, {-1, 1}, "the predicted " + p.target);
    return;
  }
  if (p.classes.size() == 2) {
    b.node("Sub", {b.constant("one", {1.0}, {1}), x}, "p_first");
    GraphBuilder::attr(b.node("Concat", {"p_first", x}, "probabilities"), "axis", std::int64_t(1));
  } else {
    b.node("Identity", {x}, "probabilities");
  }
  auto* argmax = b.node("ArgMax", {"probabilities"}, "label");
  GraphBuilder::attr(argmax, "axis", std::int64_t(1));
  GraphBuilder::attr(argmax, "keepdims", std::int64_t(0));
  b.io(b.g_->add_output(), "probabilities", b.elem_, {-1, std::int64_t(p.classes.size())},
       "one probability per class, in the order of the 'classes' metadata");
  b.io(b.g_->add_output(), "label", onnx::TensorProto::INT64, {-1},
       "the index of the predicted class in the 'classes' metadata");
}

// Metadata: the target, the task, the feature names of each input kind, the classes.
void add_metadata(onnx::ModelProto& model, const Preprocessor& p) {
  const auto meta = [&](const std::string& key, const std::string& value) {
    auto* prop = model.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  };
  nlohmann::json numeric_names = nlohmann::json::array(), text_names = nlohmann::json::array();
  for (const Feature& f : p.features)
    (f.numeric ? numeric_names : text_names).push_back(f.name);
  meta("target", p.target);
  meta("task", std::string(to_string(p.task)));
  meta("numeric_features", numeric_names.dump());
  meta("text_features", text_names.dump());
  if (p.task == Task::classify) meta("classes", nlohmann::json(p.classes).dump());
}

}  // namespace

std::string export_onnx(const Model& m) {
  const Preprocessor& p = m.prep;
  const int elem = m.dtype == Dtype::float64 ? onnx::TensorProto::DOUBLE : onnx::TensorProto::FLOAT;
  onnx::ModelProto model;
  describe_model(model, p, std::any_of(p.features.begin(), p.features.end(), [](const Feature& f) {
                   return !f.numeric;
                 }));
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("chainrule");
  GraphBuilder b(g, elem);
  std::vector<Index> order;  // network input index of each column of the concatenation
  const std::string x = add_inputs(b, p, order);
  add_outputs(b, p, add_layers(b, m, order, x));
  add_metadata(model, p);

  try {
    onnx::checker::check_model(model);
  } catch (const onnx::checker::ValidationError& e) {
    throw Error(std::string("the exported graph fails ONNX's checker: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("cannot serialize the ONNX model");
  return bytes;
}

}  // namespace chainrule
