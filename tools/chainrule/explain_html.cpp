#include "explain_html.hpp"

#include <fmt/core.h>

#include "html.hpp"

namespace chainrule::cli {

namespace {

constexpr std::string_view kDiagramStyle = R"css(
#diagram { border: 1px solid #e3e3e3; border-radius: 4px; background: #fcfcfc; }
#diagram .edge { stroke: #adb5bd; stroke-width: 1.6; }
#diagram .edge.explained { cursor: pointer; }
#diagram .edge.chain { stroke: #e8590c; stroke-width: 4; }
#diagram .edge.selected { stroke: #c92a2a; stroke-width: 5; }
#diagram .neuron { fill: #fff; stroke: #343a40; stroke-width: 1.5; }
#diagram .neuron.input { fill: #f1f3f5; }
#diagram .neuron.on-chain { stroke: #e8590c; stroke-width: 3; }
#diagram .bias { fill: #fff4e6; stroke: #868e96; cursor: pointer; }
#diagram .bias.selected { fill: #ffc9c9; stroke: #c92a2a; stroke-width: 2.5; }
#diagram .plabel { font-size: 11px; cursor: pointer; }
#diagram .plabel .g { fill: #1864ab; }
#diagram .name { font-weight: 600; font-size: 13px; }
#diagram .val { font-size: 11px; fill: #495057; }
#panel { border: 1px solid #ddd; border-radius: 4px; padding: 0.6em 1em; margin: 0.8em 0;
  min-height: 6em; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; }
#panel .line { white-space: pre-wrap; }
#params tr { cursor: pointer; }
#params tr.selected { background: #fff0f0; }
#params td { font-variant-numeric: tabular-nums; }
.samples button { margin: 0 0.3em 0.3em 0; padding: 0.25em 0.8em; }
.samples button.current { background: #1c7ed6; color: #fff; border: 1px solid #1c7ed6; }
)css";

constexpr std::string_view kDiagramScript = R"js(
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('explain-data').textContent);
  var S = data.strings, samples = data.samples;
  var NS = 'http://www.w3.org/2000/svg';
  var current = data.start, selected = null;

  function num(v) {  // as chainrule explain prints numbers
    if (v === 0) return '0';
    if (Math.abs(v) < 1e-4) return v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2');
    var s = v.toFixed(6).replace(/0+$/, '').replace(/\.$/, '');
    return s === '-0' ? '0' : s;
  }
  function exp1(v) { return v.toExponential(1).replace(/e([+-])(\d)$/, 'e$10$2'); }  // C's %.1e
  function paren(v) { return v < 0 ? '(' + num(v) + ')' : num(v); }
  function svg(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function h(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // The network's structure, the same for every sample.
  var first = samples[0].explanation;
  var layers = [[]];  // names per column: inputs, then each layer's neurons
  var neuronOf = {};
  first.neurons.forEach(function (n) {
    if (n.layer === 0 && layers[0].length === 0) layers[0] = n.inputs.slice();
    while (layers.length < n.layer + 2) layers.push([]);
    layers[n.layer + 1].push(n.name);
    neuronOf[n.name] = n;
  });
  var edges = [];  // every weight: {from, to, param}
  first.neurons.forEach(function (n) {
    n.inputs.forEach(function (input, i) { edges.push({from: input, to: n.name, param: n.weights[i], i: i}); });
  });
  var explained = {};
  first.parameters.forEach(function (p) { explained[p.name] = p; });
  // Edges downstream of a neuron: every path from it to the outputs.
  function chainOf(name) {
    var p = explained[name], chain = {}, todo = [p.to], seen = {};
    if (p.tensor.indexOf('weight') >= 0) chain[name] = true;
    while (todo.length) {
      var at = todo.pop();
      if (seen[at]) continue;
      seen[at] = true;
      edges.forEach(function (e) { if (e.from === at) { chain[e.param] = true; todo.push(e.to); } });
    }
    return chain;
  }
  // Which neurons to draw: all of a column of at most 24, else those the explained chains use.
  var MAX = 24, used = {};
  first.parameters.forEach(function (p) { used[p.from] = true; used[p.to] = true; });
  var shown = layers.map(function (col, c) {
    if (col.length <= MAX || c === layers.length - 1) return col;
    return col.filter(function (n) { return used[n]; }).slice(0, MAX);
  });
  var isShown = {};
  shown.forEach(function (col) { col.forEach(function (n) { isShown[n] = true; }); });
  var hidden = layers.reduce(function (a, col, c) { return a + col.length - shown[c].length; }, 0);
  var drawn = edges.filter(function (e) { return isShown[e.from] && isShown[e.to]; });
  var small = first.parameters.length <= 24 && drawn.length <= 24;

  var W = 980, rowH = small ? 150 : 44;
  var tallest = Math.max.apply(null, shown.map(function (c) { return c.length; }));
  var H = Math.max(320, 90 + rowH * tallest);
  var pos = {};
  shown.forEach(function (col, c) {
    col.forEach(function (name, i) {
      pos[name] = {x: 110 + (W - 240) * c / (shown.length - 1), y: H / 2 + (i - (col.length - 1) / 2) * rowH};
    });
  });

  function render() {
    var e = samples[current].explanation;
    var byName = {}, grads = {};
    e.neurons.forEach(function (n) { byName[n.name] = n; });
    e.parameters.forEach(function (p) { grads[p.name] = p; });
    var inputValue = {};
    e.neurons.forEach(function (n) { if (n.layer === 0) n.inputs.forEach(function (x, i) { inputValue[x] = n.input_values[i]; }); });
    var weightValue = {};
    e.neurons.forEach(function (n) { n.weights.forEach(function (w, i) { weightValue[w] = n.weight_values[i]; }); });

    var root = document.getElementById('diagram');
    while (root.firstChild) root.removeChild(root.firstChild);
    root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    root.setAttribute('height', H);
    var gEdges = svg('g', {}, root), gLabels = svg('g', {}, root), gNodes = svg('g', {}, root);
    drawn.forEach(function (d) {
      var a = pos[d.from], b = pos[d.to];
      var line = svg('line', {'class': 'edge' + (explained[d.param] ? ' explained' : ''), 'data-param': d.param,
        x1: a.x + 24, y1: a.y, x2: b.x - 24, y2: b.y}, gEdges);
      var tip = d.param + ' = ' + num(weightValue[d.param]);
      if (grads[d.param]) tip += '\n∂L/∂' + d.param + ' = ' + num(grads[d.param].gradient);
      line.setAttribute('data-tip', tip);
      if (small && grads[d.param]) {
        var t = 0.3, x = a.x + 24 + (b.x - a.x - 48) * t, y = a.y + (b.y - a.y) * t - 6;
        var label = svg('text', {'class': 'plabel', 'data-param': d.param, x: x, y: y, 'text-anchor': 'middle'}, gLabels);
        svg('tspan', {}, label, d.param + ' = ' + num(weightValue[d.param]));
        svg('tspan', {'class': 'g', x: x, dy: 13, 'data-gradient': grads[d.param].gradient}, label,
            '∂L/∂' + d.param + ' = ' + num(grads[d.param].gradient));
      }
    });
    shown.forEach(function (col, c) {
      col.forEach(function (name) {
        var p = pos[name], n = byName[name];
        svg('circle', {'class': 'neuron' + (c === 0 ? ' input' : ''), 'data-neuron': name, cx: p.x, cy: p.y, r: 22}, gNodes);
        svg('text', {'class': 'name', x: p.x, y: p.y + 5, 'text-anchor': 'middle'}, gNodes,
            name.length > 8 ? name.slice(0, 7) + '…' : name);
        if (c === 0) {
          svg('text', {'class': 'val', x: p.x - 28, y: p.y + 4, 'text-anchor': 'end', 'data-value': inputValue[name]}, gNodes,
              name + ' = ' + num(inputValue[name]));
          return;
        }
        var v = svg('text', {'class': 'val', x: p.x, y: p.y - 42, 'text-anchor': 'middle', 'data-z': n.z, 'data-a': n.a}, gNodes);
        svg('tspan', {}, v, 'z = ' + num(n.z));
        svg('tspan', {x: p.x, dy: 13}, v, S.activation + ' = ' + num(n.a));
        v.setAttribute('data-tip', '∂L/∂' + name + ' = ' + num(n.dL_da) + '\n∂L/∂z_' + name + ' = ' + num(n.dL_dz));
        var b = svg('rect', {'class': 'bias', 'data-param': n.bias, x: p.x - 14, y: p.y + 27, width: 28, height: 16, rx: 4}, gNodes);
        b.setAttribute('data-tip', n.bias + ' = ' + num(n.bias_value) + (grads[n.bias] ? '\n∂L/∂' + n.bias + ' = ' + num(grads[n.bias].gradient) : ''));
        svg('text', {'class': 'plabel', 'data-param': n.bias, x: p.x, y: p.y + 39, 'text-anchor': 'middle'}, gNodes,
            n.bias.length > 5 ? 'b' : n.bias);
        if (small && grads[n.bias])
          svg('text', {'class': 'plabel', 'data-param': n.bias, x: p.x, y: p.y + 56, 'text-anchor': 'middle'}, gNodes)
            .appendChild(svg('tspan', {'class': 'g', 'data-gradient': grads[n.bias].gradient}, null,
                             '∂L/∂' + n.bias + ' = ' + num(grads[n.bias].gradient)));
      });
    });
    if (hidden > 0)
      svg('text', {'class': 'val', x: 10, y: H - 8}, root, S.hidden.replace('{}', hidden));

    document.getElementById('loss').textContent = 'L = ' + e.loss.formula + ' = ' + num(e.loss.value);
    document.getElementById('loss').setAttribute('data-value', e.loss.value);

    var table = document.getElementById('params');
    while (table.rows.length > 1) table.deleteRow(1);
    e.parameters.forEach(function (p) {
      var tr = h('tr', {'data-param': p.name}, table.tBodies[0] || table);
      h('td', {'class': 'l'}, tr, p.name);
      h('td', {'data-value': p.value}, tr, num(p.value));
      var f = h('td', {'class': 'l factors'}, tr);
      p.factors.forEach(function (x, i) {
        if (i) f.appendChild(document.createTextNode(' × '));
        h('span', {'class': 'factor', 'data-value': x.value, title: x.symbol + ' = ' + x.formula}, f, paren(x.value));
      });
      h('td', {'class': 'gradient', 'data-value': p.gradient}, tr, num(p.gradient));
      h('td', {'class': 'fd', 'data-value': p.finite_difference}, tr, num(p.finite_difference));
      h('td', {'class': 'rel', 'data-value': p.relative_error}, tr, exp1(p.relative_error));
    });
    document.querySelectorAll('.samples button').forEach(function (b, i) {
      b.className = i === current ? 'current' : '';
    });
    document.getElementById('slider').value = current;
    document.getElementById('sample-label').textContent = samples[current].label;
    if (selected) select(selected); else clearPanel();
  }

  function clearPanel() {
    var panel = document.getElementById('panel');
    panel.textContent = S.hint;
    panel.removeAttribute('data-param');
  }

  function select(name) {
    if (!explained[name]) return;
    selected = name;
    var p = null;
    samples[current].explanation.parameters.forEach(function (q) { if (q.name === name) p = q; });
    var chain = chainOf(name);
    document.querySelectorAll('#diagram .edge').forEach(function (e) {
      var k = e.getAttribute('data-param');
      e.classList.toggle('chain', !!chain[k]);
      e.classList.toggle('selected', k === name);
    });
    document.querySelectorAll('#diagram .bias').forEach(function (e) {
      e.classList.toggle('selected', e.getAttribute('data-param') === name);
    });
    var onChain = {};
    onChain[p.to] = true;
    edges.forEach(function (e) { if (chain[e.param]) { onChain[e.to] = true; } });
    document.querySelectorAll('#diagram .neuron').forEach(function (n) {
      n.classList.toggle('on-chain', !!onChain[n.getAttribute('data-neuron')]);
    });
    document.querySelectorAll('#params tr[data-param]').forEach(function (r) {
      r.classList.toggle('selected', r.getAttribute('data-param') === name);
    });
    var panel = document.getElementById('panel');
    panel.setAttribute('data-param', name);
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    var lhs = '∂L/∂' + name, pad = ' '.repeat(lhs.length + 1);
    h('div', {'class': 'line'}, panel, lhs + ' = ' + p.factors.map(function (f) { return f.symbol; }).join(' · '));
    h('div', {'class': 'line'}, panel, pad + '= ' + p.factors.map(function (f) { return f.formula; }).join(' · '));
    var values = h('div', {'class': 'line'}, panel, pad + '= ');
    p.factors.forEach(function (f, i) {
      if (i) values.appendChild(document.createTextNode(' × '));
      h('span', {'class': 'factor', 'data-value': f.value}, values, paren(f.value));
    });
    var result = h('div', {'class': 'line'}, panel, pad + '= ');
    h('span', {'class': 'gradient', 'data-value': p.gradient}, result, num(p.gradient));
    result.appendChild(document.createTextNode('   ' + S.fd + ' '));
    h('span', {'class': 'fd', 'data-value': p.finite_difference}, result, num(p.finite_difference));
    result.appendChild(document.createTextNode(' (' + S.rel + ' ' + exp1(p.relative_error) + ')'));
    h('div', {'class': 'line reading'}, panel, pad + '  ' + p.reading);
  }

  var buttons = document.querySelector('.samples');
  samples.forEach(function (s, i) {
    var b = h('button', {type: 'button', 'data-sample': i}, buttons, s.label);
    b.addEventListener('click', function () { current = i; render(); });
  });
  var slider = document.getElementById('slider');
  slider.max = samples.length - 1;
  slider.addEventListener('input', function () { current = +slider.value; render(); });
  if (samples.length < 2) document.getElementById('stepper').style.display = 'none';
  function onParam(ev) {
    var t = ev.target.closest ? ev.target.closest('[data-param]') : null;
    if (t && explained[t.getAttribute('data-param')]) select(t.getAttribute('data-param'));
  }
  document.getElementById('diagram').addEventListener('mouseover', onParam);
  document.getElementById('diagram').addEventListener('click', onParam);
  document.getElementById('params').addEventListener('click', onParam);
  render();
})();
)js";

}  // namespace

std::string explain_html(Lang lang, const std::vector<DiagramSample>& samples, std::size_t start,
                         const std::string& about) {
  nlohmann::json data = {{"start", start}, {"samples", nlohmann::json::array()}};
  for (const DiagramSample& s : samples)
    data["samples"].push_back({{"label", s.label}, {"explanation", s.explanation}});
  data["strings"] = {
      {"hint",
       tr(lang, "Hover or click a weight or bias: its chain lights up and its factors show here.")},
      {"fd", tr(lang, "finite difference")},
      {"rel", tr(lang, "relative error")},
      {"activation", tr(lang, "a")},
      {"hidden", tr(lang, "{} neurons off the explained chains are not drawn")}};
  const std::string title = tr(lang, "Backpropagation is the chain rule");
  std::string body = fmt::format("<style>{}</style><h1>{}</h1>", kDiagramStyle, html::esc(title));
  body += fmt::format("<p class=\"note\">{}</p>", html::esc(about));
  body += fmt::format(
      "<div id=\"stepper\" class=\"noprint\"><span>{}: <b id=\"sample-label\"></b></span> "
      "<div class=\"samples\"></div><input type=\"range\" id=\"slider\" min=\"0\" value=\"0\" "
      "step=\"1\" aria-label=\"{}\"></div>",
      html::esc(tr(lang, "Sample")), html::esc(tr(lang, "Sample")));
  body += "<svg id=\"diagram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\"></svg>";
  body += "<p id=\"loss\"></p><div id=\"panel\"></div>";
  body += fmt::format(
      "<h2>{}</h2><table id=\"params\"><tr><th class=\"l\">{}</th><th>{}</th><th "
      "class=\"l\">{}</th>"
      "<th>∂L/∂p</th><th>{}</th><th>{}</th></tr></table>",
      html::esc(tr(lang, "Every explained parameter")), html::esc(tr(lang, "parameter")),
      html::esc(tr(lang, "value")), html::esc(tr(lang, "chain-rule factors")),
      html::esc(tr(lang, "finite difference")), html::esc(tr(lang, "relative error")));
  body += "<script type=\"application/json\" id=\"explain-data\">" + html::script_json(data) +
          "</script>";
  return html::page(lang, title, body, 0, kDiagramScript);
}

}  // namespace chainrule::cli
