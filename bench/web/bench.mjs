// Times tinyc's model.js against onnxruntime-web (wasm execution provider) on
// the same inputs in this page, and posts per model to /report/<model>:
//   { tinyc: [ms...], ort: [ms...], threads, isolated, error } where error is
//   the largest difference of the first output, relative to onnxruntime-web's range.
// Query: ?threads=N&runs=R&models=a,b. With one thread, samples alternate
// between the engines (in turn first), so load from elsewhere hits both alike;
// with more, each engine runs back to back (onnxruntime-web's worker threads
// spin between runs and would take a core from tinyc's next run).
import * as ort from "./ort/ort.wasm.min.mjs";

const query = new URLSearchParams(location.search);
const threads = Number(query.get("threads") ?? 1);
const runs = Number(query.get("runs") ?? 20);
const post = (name, body) => fetch(`/report/${name}`, { method: "POST", body });

ort.env.wasm.numThreads = threads;
ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
ort.env.wasm.proxy = false;

async function engines(name) {
  const { Model } = await import(`./${name}/model.js`);
  const model = await Model.load();
  const [input] = model.inputs;
  const bytes = await (await fetch(`./${name}/input.bin`)).arrayBuffer();
  const data = new (Model.arrayFor(input.dtype))(bytes);
  const session = await ort.InferenceSession.create(`./${name}.onnx`, {
    executionProviders: ["wasm"], graphOptimizationLevel: "all",
  });
  const feed = { [input.name]: new ort.Tensor(input.dtype, data, input.shape) };
  const output = model.outputs[0].name;
  return {
    tinyc: async () => model.run({ [input.name]: data })[output],
    ort: async () => (await session.run(feed))[output].data,
  };
}

async function timed(run) {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function relativeError(got, want) {
  let diff = 0, scale = 1e-12;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

async function bench(name) {
  const run = await engines(name);
  const error = relativeError(await run.tinyc(), await run.ort());  // also the warm-up
  const ms = { tinyc: [], ort: [] };
  if (threads === 1) {
    for (let i = 0; i < runs; i++) {
      const order = i % 2 ? ["ort", "tinyc"] : ["tinyc", "ort"];
      for (const engine of order) ms[engine].push(await timed(run[engine]));
    }
  } else {
    for (const engine of ["ort", "tinyc"]) {
      for (let i = 0; i < runs; i++) ms[engine].push(await timed(run[engine]));
    }
  }
  return { ...ms, threads, isolated: globalThis.crossOriginIsolated === true, error };
}

try {
  for (const name of query.get("models").split(",")) {
    await post(name, JSON.stringify(await bench(name)));
  }
  await post("done", `${navigator.userAgent}; onnxruntime-web ${ort.env.versions?.web}`);
} catch (e) {
  await post("error", `${e.name}: ${e.message}\n${e.stack}`);
}
