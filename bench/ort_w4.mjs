// W4 in ONNX Runtime (onnxruntime-node, from the npm registry; bench/run installs it): inference
// on the Fashion-MNIST test images with W2's network, exported by `chainrule export --onnx`, at
// batch 1 (10,000 single images) and batch 1024 (100 batches), as chainrule_bench w4 times it.
//   ORT_NODE_MODULES=DIR node ort_w4.mjs MODEL.onnx TEST_IMAGES.gz THREADS
// Prints one JSON object per batch size. The graph is the whole exported model: the scaling of
// the inputs, the network and its softmax; only the probabilities are fetched.
import { createRequire } from "node:module";
import fs from "node:fs";
import zlib from "node:zlib";

const require = createRequire(process.env.ORT_NODE_MODULES + "/");
const ort = require("onnxruntime-node");
const [modelPath, imagesPath, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg);

const raw = zlib.gunzipSync(fs.readFileSync(imagesPath));
const count = raw.readUInt32BE(4), width = raw.readUInt32BE(8) * raw.readUInt32BE(12);
const pixels = Float32Array.from(raw.subarray(16, 16 + count * width));

const session = await ort.InferenceSession.create(modelPath, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const input = session.inputNames[0];
const fetch = session.outputNames.includes("probabilities") ? ["probabilities"] : undefined;

for (const batch of [1, 1024]) {
  const n = batch === 1 ? 10000 : 100 * 1024;
  const tensor = (first) =>
    new ort.Tensor("float32", pixels.subarray(first * width, (first + batch) * width), [batch, width]);
  await session.run({ [input]: tensor(0) }, fetch);  // warm up
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let first = 0; first < n; first += batch) {
    const out = await session.run({ [input]: tensor(first % (count - batch + 1)) }, fetch);
    sink += out[fetch ? fetch[0] : session.outputNames[0]].data[0];
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({
    workload: "w4", peer: "ONNX Runtime", threads, batch, seconds, samples_per_s: n / seconds,
    cores: (used.user + used.system) / 1e6 / seconds, check: sink,
  }));
}
