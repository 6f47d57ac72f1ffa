// Runs each case of cases.json through its folder's model.js in the page and
// posts the results to the test's server:
//   /report/<case>.<i>  output i's bytes
//   /report/<case>      JSON: [name, dtype] of each output, ms per run, and the
//                       message of a feed of the wrong TypedArray
//   /report/example     what the package's index.html showed (in an iframe)
//   /report/done        the end (or /report/error with a message)
const post = (name, body) => fetch(`/report/${name}`, { method: "POST", body });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function feedsOf(c, Model) {
  const feeds = {};
  for (const [name, [dtype, file]] of Object.entries(c.feeds)) {
    const response = await fetch(`${c.folder}/${file}`);
    feeds[name] = new (Model.arrayFor(dtype))(await response.arrayBuffer());
  }
  return feeds;
}

function refusal(model, feeds) {
  const [first] = model.inputs;
  const wrong = first.dtype === "float64" ? Float32Array : Float64Array;
  try {
    model.run({ ...feeds, [first.name]: new wrong(feeds[first.name].length) });
    return "no error";
  } catch (e) {
    return `${e.constructor.name}: ${e.message}`;
  }
}

async function runCase(c) {
  const { Model } = await import(`./${c.folder}/model.js`);
  const model = await Model.load();  // fetches model.wasm beside model.js
  const feeds = await feedsOf(c, Model);
  let out = model.run(feeds);  // warm up
  const start = performance.now();
  for (let i = 0; i < c.repeat; i++) out = model.run(feeds);
  const ms = (performance.now() - start) / c.repeat;
  for (const [i, t] of model.outputs.entries()) {
    const o = out[t.name];
    await post(`${c.name}.${i}`, new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
  }
  const outputs = model.outputs.map((t) => [t.name, t.dtype]);
  await post(c.name, JSON.stringify({ outputs, ms, refused: refusal(model, feeds) }));
}

async function examplePage(folder) {
  const frame = document.createElement("iframe");
  frame.src = `${folder}/index.html`;
  document.body.append(frame);
  for (let waited = 0; waited < 60000; waited += 50) {
    const result = frame.contentWindow?.tinycResult;
    if (result) return { ...result, text: frame.contentDocument.getElementById("log").textContent };
    await sleep(50);
  }
  return { ok: false, error: "index.html set no result in 60 s" };
}

try {
  const spec = await (await fetch("cases.json")).json();
  for (const c of spec.cases) await runCase(c);
  await post("example", JSON.stringify(await examplePage(spec.example)));
  await post("done", navigator.userAgent);
} catch (e) {
  await post("error", `${e.name}: ${e.message}\n${e.stack}`);
}
