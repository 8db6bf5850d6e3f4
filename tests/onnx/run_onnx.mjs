// Runs an exported chainrule model in ONNX Runtime (onnxruntime-node) and compares its outputs
// with what `chainrule predict` printed. Usage: node run_onnx.mjs MODEL.onnx CASE.json
// CASE: {numeric: [[...]] (rows), text: {column: [...]}, dtype, probabilities | value, tolerance}
import { createRequire } from "node:module";
import fs from "node:fs";

const require = createRequire(process.env.ORT_NODE_MODULES + "/");
const ort = require("onnxruntime-node");
const [modelPath, casePath] = process.argv.slice(2);
const c = JSON.parse(fs.readFileSync(casePath, "utf8"));
const session = await ort.InferenceSession.create(modelPath);

const feeds = {};
const rows = c.rows;
if (c.numeric) {
  const width = c.numeric.length / rows;
  const Array_ = c.dtype === "float64" ? Float64Array : Float32Array;
  const values = Array_.from(c.numeric, (v) => (v === null ? NaN : v));  // null: a missing value
  feeds["numeric_features"] = new ort.Tensor(c.dtype, values, [rows, width]);
}
for (const [name, values] of Object.entries(c.text || {}))
  feeds[name] = new ort.Tensor("string", values, [rows, 1]);
const out = await session.run(feeds);

let worst = 0, failures = 0;
const check = (got, want, what) => {
  const d = Math.abs(got - want);
  worst = Math.max(worst, d);
  if (!(d <= c.tolerance)) {
    if (failures++ < 5) console.error(`${what}: onnx ${got}, chainrule ${want}`);
  }
};
if (c.value) {
  for (let i = 0; i < rows; ++i) check(out.value.data[i], c.value[i], `row ${i}`);
} else {
  const k = c.probabilities.length / rows;
  for (let i = 0; i < rows * k; ++i) check(out.probabilities.data[i], c.probabilities[i], `row ${Math.floor(i / k)}`);
  for (let i = 0; i < rows; ++i)
    if (Number(out.label.data[i]) !== c.label[i] && failures++ < 5)
      console.error(`row ${i}: onnx label ${out.label.data[i]}, chainrule ${c.label[i]}`);
}
console.log(`${rows} rows, largest difference ${worst.toExponential(2)}`);
process.exit(failures ? 1 : 0);
