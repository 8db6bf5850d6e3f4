#include "chainrule/explain.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "chainrule/error.hpp"

namespace chainrule {

namespace {

std::string activation_symbol(Activation a) {
  switch (a) {
    case Activation::sigmoid:
      return "σ";
    case Activation::identity:
      return "id";
    default:
      return std::string(to_string(a));
  }
}

// The formula of da/dz for neuron z-name `z`, e.g. "σ'(z_h1)".
std::string derivative_formula(Activation a, const std::string& z) {
  if (a == Activation::identity) return "1";
  return activation_symbol(a) + "'(" + z + ")";
}

std::string join(const std::string& a, const std::string& b) {
  if (a == "1") return b;
  if (b == "1") return a;
  return a + "·" + b;
}

class Tracer {
 public:
  Tracer(const Network<double>& net, std::span<const double> x, std::span<const double> y,
         const ExplainOptions& options)
      : net_(net), y_(y.begin(), y.end()), last_(net.layers().size() - 1) {
    // Names: names_[0] are the inputs, names_[l + 1] layer l's neurons.
    names_.emplace_back();
    for (Index i = 0; i < net.inputs(); ++i)
      names_[0].push_back(options.input_names.size() == std::size_t(net.inputs())
                              ? options.input_names[i]
                              : "x" + std::to_string(i + 1));
    const std::size_t hidden = last_;
    for (std::size_t l = 0; l < net.layers().size(); ++l) {
      names_.emplace_back();
      const Index units = net.layers()[l].out();
      for (Index j = 0; j < units; ++j) {
        std::string n;
        if (l == last_)
          n = units == 1 ? "ŷ" : "ŷ" + std::to_string(j + 1);
        else if (hidden == 1)
          n = "h" + std::to_string(j + 1);
        else
          n = "h" + std::to_string(l + 1) + "." + std::to_string(j + 1);
        names_.back().push_back(std::move(n));
      }
    }
    // Forward pass, one sample.
    a_.emplace_back(x.begin(), x.end());
    Network<double> copy = net;
    Batch<double> X = Eigen::Map<const Batch<double>>(x.data(), 1, net.inputs());
    copy.forward(X);
    for (std::size_t l = 0; l < net.layers().size(); ++l) {
      const auto& Z = copy.pre_activation(l);
      const auto& A = copy.activation(l);
      z_.emplace_back(Z.data(), Z.data() + Z.size());
      a_.emplace_back(A.data(), A.data() + A.size());
    }
    backward();
  }

  bool passes_through_z(std::size_t l) const {
    return (l == last_ && is_fused(net_.spec().loss)) ||
           net_.layers()[l].activation() == Activation::softmax;
  }

  const std::string& name(std::size_t l, Index j) const { return names_[l + 1][j]; }
  double weight(std::size_t l, Index i, Index j) const {
    return net_.layers()[l].weight(net_.params().data())(i, j);
  }
  double act_derivative(std::size_t l, Index j) const {
    return scalar::derivative_from_output(net_.layers()[l].activation(), a_[l + 1][j]);
  }
  std::string weight_name(std::size_t l, Index i, Index j) const {
    Index before = 0;
    for (std::size_t k = 0; k < l; ++k)
      before += net_.layers()[k].in() * net_.layers()[k].out();
    return "w" + std::to_string(before + j * net_.layers()[l].in() + i + 1);
  }
  std::string bias_name(std::size_t l, Index j) const {
    Index before = 0;
    for (std::size_t k = 0; k < l; ++k)
      before += net_.layers()[k].out();
    return "b" + std::to_string(before + j + 1);
  }

  // Factors whose product is ∂L/∂z of neuron j in layer l.
  std::vector<Factor> chain_to_z(std::size_t l, Index j) const {
    const std::string& n = name(l, j);
    const Index K = net_.layers()[l].out();
    if (l == last_ && is_fused(net_.spec().loss)) {
      std::string y = K == 1 ? "y" : "y" + std::to_string(j + 1);
      std::string f = "(" + n + " − " + y + ")";
      if (net_.spec().loss == Loss::binary_cross_entropy && K > 1) f += "/" + std::to_string(K);
      return {{"∂L/∂z_" + n, f, gz_[l][j]}};
    }
    if (net_.layers()[l].activation() == Activation::softmax)
      return {{"∂L/∂z_" + n, n + "·(∂L/∂" + n + " − Σ_m a_m·∂L/∂a_m)", gz_[l][j]}};
    std::vector<Factor> c = chain_to_a(l, j);
    c.push_back({"∂" + n + "/∂z_" + n, derivative_formula(net_.layers()[l].activation(), "z_" + n),
                 act_derivative(l, j)});
    return c;
  }

  // Factors whose product is ∂L/∂a of neuron j in layer l (l not fused into the loss).
  std::vector<Factor> chain_to_a(std::size_t l, Index j) const {
    const std::string& n = name(l, j);
    if (l == last_) {  // MSE: L = 1/K Σ (y_k - ŷ_k)²
      const Index K = net_.layers()[l].out();
      std::string f = K == 1 ? "−2(y − ŷ)"
                             : "2(" + n + " − y" + std::to_string(j + 1) + ")/" + std::to_string(K);
      return {{"∂L/∂" + n, f, ga_[l][j]}};
    }
    const auto& next = net_.layers()[l + 1];
    if (next.out() == 1) {  // one path to the loss: expand it
      const std::string& m = name(l + 1, 0);
      const std::string w = weight_name(l + 1, j, 0);
      if (passes_through_z(l + 1)) {
        std::vector<Factor> c = chain_to_z(l + 1, 0);
        c.push_back({"∂z_" + m + "/∂" + n, w, weight(l + 1, j, 0)});
        return c;
      }
      std::vector<Factor> c = chain_to_a(l + 1, 0);
      c.push_back({"∂" + m + "/∂" + n, join(w, derivative_formula(next.activation(), "z_" + m)),
                   weight(l + 1, j, 0) * act_derivative(l + 1, 0)});
      return c;
    }
    // Several paths: ∂L/∂a is a sum, shown as one factor (its terms are in the backward pass).
    std::string f;
    for (Index k = 0; k < next.out() && k < 4; ++k)
      f += (k ? " + " : "") + std::string("∂L/∂z_") + name(l + 1, k) + "·" +
           weight_name(l + 1, j, k);
    if (next.out() > 4) f += " + … (" + std::to_string(next.out()) + " terms)";
    return {{"∂L/∂" + n, f, ga_[l][j]}};
  }

  // The chain of parameter `which` = (layer l, source i or -1 for the bias, target j).
  std::vector<Factor> chain_to_param(std::size_t l, Index i, Index j) const {
    const std::string& n = name(l, j);
    const std::string p = i < 0 ? bias_name(l, j) : weight_name(l, i, j);
    const std::string in = i < 0 ? "1" : names_[l][i];
    const double in_value = i < 0 ? 1.0 : a_[l][i];
    if (passes_through_z(l)) {
      std::vector<Factor> c = chain_to_z(l, j);
      c.push_back({"∂z_" + n + "/∂" + p, in, in_value});
      return c;
    }
    std::vector<Factor> c = chain_to_a(l, j);
    c.push_back({"∂" + n + "/∂" + p,
                 join(in, derivative_formula(net_.layers()[l].activation(), "z_" + n)),
                 in_value * act_derivative(l, j)});
    return c;
  }

  // Backpropagation written out per neuron, independently of Network::backward.
  void backward() {
    const std::size_t L = net_.layers().size();
    ga_.resize(L);
    gz_.resize(L);
    for (std::size_t l = L; l-- > 0;) {
      const auto& layer = net_.layers()[l];
      const Index K = layer.out();
      ga_[l].assign(K, 0.0);
      gz_[l].assign(K, 0.0);
      if (l == last_) {
        for (Index k = 0; k < K; ++k) {
          const double d = a_[l + 1][k] - y_[k];
          switch (net_.spec().loss) {
            case Loss::mse:
              ga_[l][k] = 2 * d / double(K);
              break;
            case Loss::binary_cross_entropy:
              gz_[l][k] = d / double(K);
              break;
            case Loss::softmax_cross_entropy:
              gz_[l][k] = d;
              break;
          }
        }
        if (is_fused(net_.spec().loss)) continue;
      } else {
        for (Index j = 0; j < K; ++j)
          for (Index k = 0; k < net_.layers()[l + 1].out(); ++k)
            ga_[l][j] += gz_[l + 1][k] * weight(l + 1, j, k);
      }
      if (layer.activation() == Activation::softmax) {
        double dot = 0;
        for (Index k = 0; k < K; ++k)
          dot += a_[l + 1][k] * ga_[l][k];
        for (Index k = 0; k < K; ++k)
          gz_[l][k] = a_[l + 1][k] * (ga_[l][k] - dot);
      } else {
        for (Index k = 0; k < K; ++k)
          gz_[l][k] = ga_[l][k] * act_derivative(l, k);
      }
    }
  }

  const Network<double>& net_;
  std::vector<double> y_;
  std::size_t last_;
  std::vector<std::vector<std::string>> names_;
  std::vector<std::vector<double>> z_, a_;  // a_[0] is the input, a_[l + 1] layer l's output
  std::vector<std::vector<double>> ga_, gz_;
};

std::string loss_formula(Loss loss, Index K) {
  switch (loss) {
    case Loss::mse:
      return K == 1 ? "(y − ŷ)²" : "1/K Σ_k (y_k − ŷ_k)²";
    case Loss::binary_cross_entropy:
      return K == 1 ? "−[y·log ŷ + (1 − y)·log(1 − ŷ)]"
                    : "−1/K Σ_k [y_k·log ŷ_k + (1 − y_k)·log(1 − ŷ_k)]";
    case Loss::softmax_cross_entropy:
      return "−Σ_k y_k·log ŷ_k";
  }
  return "";
}

std::string sign_reading(const std::string& p, double g) {
  if (g > 0) return "positive: raising " + p + " raises L, so gradient descent lowers " + p;
  if (g < 0) return "negative: raising " + p + " lowers L, so gradient descent raises " + p;
  return "zero: a small change of " + p + " leaves L unchanged for this sample";
}

}  // namespace

Explanation explain(const Network<double>& net, std::span<const double> x,
                    std::span<const double> y, const ExplainOptions& options) {
  if (x.size() != std::size_t(net.inputs()))
    throw ConfigError("explain: the sample has " + std::to_string(x.size()) +
                      " inputs, the network expects " + std::to_string(net.inputs()));
  if (y.size() != std::size_t(net.outputs()))
    throw ConfigError("explain: the target has " + std::to_string(y.size()) +
                      " values, the network has " + std::to_string(net.outputs()) + " outputs");
  if (!(options.fd_step > 0)) throw ConfigError("explain: the finite-difference step must be > 0");

  const Tracer t(net, x, y, options);
  Explanation e;
  e.input_names = t.names_[0];
  e.output_names = t.names_.back();
  e.x.assign(x.begin(), x.end());
  e.y.assign(y.begin(), y.end());
  e.loss = net.spec().loss;
  e.loss_formula = loss_formula(e.loss, net.outputs());
  e.fd_step = options.fd_step;

  const auto& layers = net.layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (Index j = 0; j < layers[l].out(); ++j) {
      NeuronTrace n;
      n.name = t.name(l, j);
      n.layer = l;
      n.index = j;
      n.activation = layers[l].activation();
      for (Index i = 0; i < layers[l].in(); ++i) {
        n.inputs.push_back(t.names_[l][i]);
        n.weights.push_back(t.weight_name(l, i, j));
        n.input_values.push_back(t.a_[l][i]);
        n.weight_values.push_back(t.weight(l, i, j));
      }
      n.bias = t.bias_name(l, j);
      n.bias_value = layers[l].bias(net.params().data())(j);
      n.z = t.z_[l][j];
      n.a = t.a_[l + 1][j];
      n.grad_a = t.ga_[l][j];
      n.grad_z = t.gz_[l][j];
      e.neurons.push_back(std::move(n));
    }
  }

  // Reference values: the network's own backward pass and the loss for finite differences.
  const Batch<double> X = Eigen::Map<const Batch<double>>(x.data(), 1, net.inputs());
  const Batch<double> Y = Eigen::Map<const Batch<double>>(y.data(), 1, net.outputs());
  Network<double> probe = net;
  probe.zero_grad();
  probe.forward(X);
  e.loss_value = probe.loss(Y);
  probe.backward(Y);
  const std::vector<double> backprop(probe.grads().begin(), probe.grads().end());
  auto loss_at = [&](Index flat, double value) {
    const double saved = probe.params()[flat];
    probe.params()[flat] = value;
    probe.forward(X);
    const double L = probe.loss(Y);
    probe.params()[flat] = saved;
    return L;
  };

  std::vector<char> selected;
  if (!options.params.empty()) {
    selected.assign(std::size_t(net.num_params()), 0);
    for (Index p : options.params) {
      if (p < 0 || p >= net.num_params())
        throw ConfigError("explain: parameter index out of range");
      selected[std::size_t(p)] = 1;
    }
  }
  const auto wanted = [&](Index flat) { return selected.empty() || selected[std::size_t(flat)]; };

  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& layer = layers[l];
    auto add = [&](Index i, Index j) {  // i < 0: the bias of neuron j
      ParamTrace p;
      p.name = i < 0 ? t.bias_name(l, j) : t.weight_name(l, i, j);
      p.tensor = "layers." + std::to_string(l) + (i < 0 ? ".bias" : ".weight");
      p.row = j;
      p.col = i;
      p.flat = i < 0 ? layer.bias_offset() + j : layer.offset() + j * layer.in() + i;
      p.from = i < 0 ? "1" : t.names_[l][i];
      p.to = t.name(l, j);
      p.value = net.params()[p.flat];
      p.factors = t.chain_to_param(l, i, j);
      p.chain = 1;
      for (const Factor& f : p.factors)
        p.chain *= f.value;
      p.backprop = backprop[p.flat];
      const double h = options.fd_step;
      p.finite_difference = (loss_at(p.flat, p.value + h) - loss_at(p.flat, p.value - h)) / (2 * h);
      // Below about 10·ε·|L|/h a central difference cannot resolve a gradient: that is the floor.
      const double resolution = 10 * 2.2e-16 * std::max(1.0, std::abs(e.loss_value)) / h;
      const double scale = std::max({std::abs(p.chain), std::abs(p.finite_difference), resolution});
      p.relative_error = std::abs(p.chain - p.finite_difference) / scale;
      p.reading = sign_reading(p.name, p.chain);
      e.params.push_back(std::move(p));
    };
    for (Index j = 0; j < layer.out(); ++j)
      for (Index i = 0; i < layer.in(); ++i)
        if (wanted(layer.offset() + j * layer.in() + i)) add(i, j);
    for (Index j = 0; j < layer.out(); ++j)
      if (wanted(layer.bias_offset() + j)) add(-1, j);
  }
  return e;
}

Index find_param(const Network<double>& net, std::string_view name) {
  const auto& layers = net.layers();
  const auto number = [](std::string_view s, Index& out) {
    if (s.empty()) return false;
    out = 0;
    for (char c : s) {
      if (c < '0' || c > '9' || out > (Index(1) << 40)) return false;
      out = out * 10 + (c - '0');
    }
    return true;
  };
  Index k = 0;
  if ((name.starts_with("w") || name.starts_with("b")) && number(name.substr(1), k) && k >= 1) {
    --k;  // w1 is the first weight; b1 the first bias
    for (const auto& layer : layers) {
      const Index count = name[0] == 'w' ? layer.in() * layer.out() : layer.out();
      if (k < count) return (name[0] == 'w' ? layer.offset() : layer.bias_offset()) + k;
      k -= count;
    }
  } else if (name.starts_with("layers.")) {
    const auto dot = name.find('.', 7), open = name.find('['), close = name.find(']');
    Index l = 0, row = 0, col = 0;
    if (dot != std::string_view::npos && open != std::string_view::npos &&
        close == name.size() - 1 && number(name.substr(7, dot - 7), l) &&
        l < Index(layers.size())) {
      const auto& layer = layers[std::size_t(l)];
      const std::string_view kind = name.substr(dot + 1, open - dot - 1);
      const std::string_view index = name.substr(open + 1, close - open - 1);
      const auto comma = index.find(',');
      if (kind == "weight" && comma != std::string_view::npos &&
          number(index.substr(0, comma), row) && number(index.substr(comma + 1), col) &&
          row < layer.out() && col < layer.in())
        return layer.offset() + row * layer.in() + col;
      if (kind == "bias" && number(index, row) && row < layer.out())
        return layer.bias_offset() + row;
    }
  }
  Index biases = 0;
  for (const auto& layer : layers)
    biases += layer.out();
  throw ConfigError("no parameter '" + std::string(name) + "': expected w1 to w" +
                    std::to_string(net.num_params() - biases) + ", b1 to b" +
                    std::to_string(biases) + ", or layers.L.weight[row,col] / layers.L.bias[row]");
}

std::vector<Index> largest_gradients(const Network<double>& net, std::span<const double> x,
                                     std::span<const double> y, std::size_t k) {
  Network<double> probe = net;
  probe.zero_grad();
  probe.forward(Eigen::Map<const Batch<double>>(x.data(), 1, net.inputs()));
  probe.backward(Eigen::Map<const Batch<double>>(y.data(), 1, net.outputs()));
  std::vector<Index> order(std::size_t(net.num_params()));
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = Index(i);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                    [&](Index a, Index b) {
                      return std::abs(probe.grads()[a]) > std::abs(probe.grads()[b]) ||
                             (std::abs(probe.grads()[a]) == std::abs(probe.grads()[b]) && a < b);
                    });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace chainrule
