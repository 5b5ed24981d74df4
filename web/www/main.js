// The page: adapter info, the Verify table, the Train part (the MLP on
// Fashion-MNIST, GPU and CPU side by side) and the Benchmark table. The wasm
// module is built by web/build.sh into ./pkg.
// What web/e2e.sh waits for, on document.body.dataset: verify, train and
// bench become "pass"/"done", "fail" or "error" when each part ends; train
// also leaves trainLoss and trainAccuracy (JSON, the GPU's per epoch) and
// bench benchRows. ?verify, ?train and ?bench in the address run the parts
// at once, in that order; train_n, test_n, epochs and big set the controls.
import init, { adapter, verify, train_fashion, bench_cases, bench_matmul } from "./pkg/wgpu_train_web.js";

const $ = (id) => document.getElementById(id);
const status = (s) => { $("status").textContent = s; };
const body = document.body;
const params = new URLSearchParams(location.search);

function fmt(x, digits) {
  if (!isFinite(x)) return String(x);
  return x === 0 ? "0" : x.toExponential(digits);
}

function cell(tr, v, cls) {
  const td = document.createElement("td");
  td.textContent = v;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// Lets the browser draw before the next piece of work.
const frame = () => new Promise((r) => setTimeout(r, 0));

async function showAdapter() {
  const a = JSON.parse(await adapter());
  $("adapter").textContent =
    `adapter: ${a.name || "(unnamed)"}  backend ${a.backend}  type ${a.device_type}` +
    `${a.software ? " (software/fallback)" : ""}  driver ${a.driver} ${a.driver_info}\n` +
    `timestamp queries: ${a.timestamps}  max storage binding: ${a.max_storage_buffer_binding_size} B` +
    `  user agent: ${navigator.userAgent}`;
  return a;
}

// ------------------------------------------------------------------ Verify

async function runVerify() {
  body.dataset.verify = "running";
  status("verifying…");
  $("verify").disabled = true;
  try {
    const seed = Math.floor(Math.random() * 2 ** 32);
    const t = performance.now();
    const rows = JSON.parse(await verify(seed));
    const tbody = $("table").querySelector("tbody");
    tbody.innerHTML = "";
    for (const r of rows) {
      const tr = document.createElement("tr");
      if (!r.pass) tr.className = "fail";
      tr.title = r.detail;
      cell(tr, r.family); cell(tr, r.kernel); cell(tr, r.shape);
      cell(tr, fmt(r.worst_error, 2), "num");
      cell(tr, r.pass ? "pass" : "FAIL", r.pass ? "pass" : "failtxt");
      cell(tr, r.gpu_ms.toFixed(2), "num"); cell(tr, r.cpu_ms.toFixed(2), "num");
      tbody.appendChild(tr);
    }
    $("table").hidden = false;
    const failed = rows.filter((r) => !r.pass).length;
    const families = new Set(rows.map((r) => r.family)).size;
    status(`${rows.length - failed} of ${rows.length} cases pass, ${families} kernel families` +
      ` (seed ${seed}, ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    body.dataset.rows = rows.length;
    body.dataset.failed = failed;
    body.dataset.verify = failed === 0 && rows.length > 0 ? "pass" : "fail";
  } catch (e) {
    status(`error: ${e}`);
    body.dataset.error = String(e);
    body.dataset.verify = "error";
  } finally {
    $("verify").disabled = false;
  }
}

// ------------------------------------------------------------------- Train

// series: [{points: [[x, y], …], colour, dash, width, label}]
function plot(canvas, title, series, yRange) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const left = 44, right = 10, top = 22, bottom = 62;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#222";
  ctx.fillText(title, left, 14);
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = 0, x1 = Math.max(1, ...xs);
  let [y0, y1] = yRange || [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - right);
  const Y = (y) => h - bottom - ((y - y0) / (y1 - y0)) * (h - top - bottom);
  ctx.strokeStyle = "#999";
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  ctx.strokeRect(left, top, w - left - right, h - top - bottom);
  ctx.fillStyle = "#555";
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    ctx.fillText(y.toFixed(2), 4, Y(y) + 4);
  }
  const step = Math.max(1, Math.ceil(x1 / 10));
  for (let x = 0; x <= x1; x += step) ctx.fillText(String(x), X(x) - 3, h - bottom + 13);
  ctx.fillText("epoch", left + (w - left - right) / 2 - 14, h - bottom + 26);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = s.width || 2;
    ctx.setLineDash(s.dash ? [5, 4] : []);
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    // Legend, two per line under the axis.
    const lx = left + (k % 2) * 150, ly = h - 18 + Math.floor(k / 2) * 13;
    ctx.beginPath(); ctx.moveTo(lx, ly - 4); ctx.lineTo(lx + 22, ly - 4); ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.fillText(s.label, lx + 26, ly);
  });
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
}

const GPU = "#0366d6", CPU = "#d96c00";
let datasetBytes = null;

// The four IDX files, fetched once. A missing or unreadable file is an
// error naming it and saying how the server should expose the dataset.
async function fetchDataset(setStatus) {
  if (datasetBytes) return datasetBytes;
  const files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
  const hint = "The page expects Fashion-MNIST's four IDX files under data/ beside it: " +
    "web/build.sh links them there from $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist.";
  const out = [];
  for (const f of files) {
    const url = `data/${f}`;
    setStatus(`fetching ${url}…`);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 120000);
    let resp;
    try {
      resp = await fetch(url, { signal: abort.signal });
      if (!resp.ok) throw new Error(`HTTP ${resp.status} ${resp.statusText}`);
      out.push(new Uint8Array(await resp.arrayBuffer()));
    } catch (e) {
      throw new Error(`${url}: ${abort.signal.aborted ? "no answer in 120 s" : e.message}. ${hint}`);
    } finally {
      clearTimeout(timer);
    }
  }
  datasetBytes = { files, bytes: out };
  return datasetBytes;
}

async function runTrain() {
  body.dataset.train = "running";
  $("train-error").hidden = true;
  const st = (s) => { $("train-status").textContent = s; };
  $("train").disabled = true;
  const tbody = $("train-table").querySelector("tbody");
  tbody.innerHTML = "";
  const gpu = { loss: [], acc: [], testLoss: [], testAcc: [] };
  const cpu = { loss: [], acc: [], testLoss: [], testAcc: [] };
  const redraw = () => {
    plot($("loss-plot"), "cross-entropy loss", [
      { points: gpu.loss, colour: GPU, label: "GPU train" },
      { points: cpu.loss, colour: CPU, dash: true, label: "CPU train" },
      { points: gpu.testLoss, colour: GPU, width: 1, label: "GPU test" },
      { points: cpu.testLoss, colour: CPU, dash: true, width: 1, label: "CPU test" },
    ]);
    plot($("acc-plot"), "accuracy", [
      { points: gpu.testAcc, colour: GPU, label: "GPU test" },
      { points: cpu.testAcc, colour: CPU, dash: true, label: "CPU test" },
      { points: gpu.acc, colour: GPU, width: 1, label: "GPU train" },
      { points: cpu.acc, colour: CPU, dash: true, width: 1, label: "CPU train" },
    ], [0, 1]);
  };
  const rows = [];
  const t0 = performance.now();
  try {
    const data = await fetchDataset(st);
    const trainN = Number($("train-n").value), testN = Number($("test-n").value);
    const epochs = Number($("epochs").value);
    st("parsing and uploading…");
    await frame();
    let setup = null;
    const onEvent = async (json) => {
      const ev = JSON.parse(json);
      if (ev.setup) {
        setup = ev.setup;
        $("train-setup").textContent =
          `The MLP 784-128-128-10 of the main job (sigmoid, Adam lr 0.001, batch 128, seed 0), ` +
          `${setup.fused ? "fused" : "unfused"} GPU step, on the first ${setup.train_examples} of ` +
          `${setup.train_available} training images of Fashion-MNIST (${setup.steps_per_epoch} steps an epoch) ` +
          `and the first ${setup.test_examples} of ${setup.test_available} test images (held out; test accuracy ` +
          `after every epoch), on the GPU and on the CPU (wasm, one thread) from the same initial weights ` +
          `and data order. The files come from data/ beside this page.`;
        $("train-table").hidden = false;
        return;
      }
      const e = ev.epoch, side = e.device === "gpu" ? gpu : cpu;
      side.testLoss.push([e.epoch, e.test_loss]);
      side.testAcc.push([e.epoch, e.test_accuracy]);
      if (e.loss !== null) {
        side.loss.push([e.epoch, e.loss]);
        side.acc.push([e.epoch, e.accuracy]);
      }
      let tr = rows[e.epoch];
      if (!tr) {
        tr = rows[e.epoch] = document.createElement("tr");
        cell(tr, String(e.epoch));
        for (let i = 0; i < 6; i++) cell(tr, "", "num");
        tbody.appendChild(tr);
      }
      const c = tr.children, base = e.device === "gpu" ? 1 : 4;
      c[base].textContent = e.loss === null ? "—" : e.loss.toFixed(4);
      c[base + 1].textContent = e.test_accuracy.toFixed(4);
      c[base + 2].textContent = (e.ms / 1000).toFixed(2);
      st(`${e.device.toUpperCase()} epoch ${e.epoch} of ${setup.epochs}: test accuracy ${e.test_accuracy.toFixed(4)}`);
      redraw();
      await frame();
    };
    await train_fashion(data.bytes[0], data.bytes[1], data.bytes[2], data.bytes[3], data.files.map((f) => `data/${f}`),
      trainN, testN, epochs, onEvent);
    const last = (s) => s[s.length - 1][1];
    const secs = (side) => rows.slice(1).reduce((a, tr) => a + Number(tr.children[side].textContent), 0);
    st(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s: test accuracy GPU ${last(gpu.testAcc).toFixed(4)}, ` +
      `CPU ${last(cpu.testAcc).toFixed(4)}; training loss GPU ${last(gpu.loss).toFixed(4)}, CPU ${last(cpu.loss).toFixed(4)}; ` +
      `GPU ${secs(3).toFixed(1)} s, CPU ${secs(6).toFixed(1)} s`);
    body.dataset.trainLoss = JSON.stringify(gpu.loss.map((p) => p[1]));
    body.dataset.trainCpuLoss = JSON.stringify(cpu.loss.map((p) => p[1]));
    body.dataset.trainAccuracy = JSON.stringify(gpu.testAcc.map((p) => p[1]));
    body.dataset.trainCpuAccuracy = JSON.stringify(cpu.testAcc.map((p) => p[1]));
    body.dataset.train = "done";
  } catch (e) {
    st("failed");
    $("train-error").textContent = `Train: ${e}`;
    $("train-error").hidden = false;
    body.dataset.trainError = String(e);
    body.dataset.train = "error";
  } finally {
    $("train").disabled = false;
  }
}

// --------------------------------------------------------------- Benchmark

async function runBench() {
  body.dataset.bench = "running";
  const st = (s) => { $("bench-status").textContent = s; };
  $("bench").disabled = true;
  const tbody = $("bench-table").querySelector("tbody");
  tbody.innerHTML = "";
  $("bench-table").hidden = false;
  try {
    const big = Number($("big").value);
    const n = bench_cases();
    let timer = "";
    for (let i = 0; i < n; i++) {
      st(`case ${i + 1} of ${n}…`);
      await frame();
      const r = JSON.parse(await bench_matmul(i, big));
      timer = r.gpu_timer;
      const tr = document.createElement("tr");
      tr.title = `${r.what}; GPU ${r.gpu_runs} runs of ${r.gpu_reps}, CPU ${r.cpu_runs} runs of ${r.cpu_reps}`;
      if (!r.agrees) tr.className = "fail";
      cell(tr, r.shape);
      cell(tr, r.what);
      cell(tr, r.kernel);
      cell(tr, r.gpu_ms.toFixed(3), "num"); cell(tr, r.gpu_gflops.toFixed(2), "num");
      cell(tr, r.cpu_ms.toFixed(3), "num"); cell(tr, r.cpu_gflops.toFixed(2), "num");
      cell(tr, `${(r.gpu_gflops / r.cpu_gflops).toFixed(2)}×`, "num");
      cell(tr, r.agrees ? "yes" : "NO", r.agrees ? "pass" : "failtxt");
      tbody.appendChild(tr);
      body.dataset.benchRows = tbody.children.length;
    }
    const how = timer === "timestamp"
      ? "GPU times are from timestamp queries written around the pass (device time; browsers round them, to 100 µs in Chrome)"
      : "this adapter has no timestamp queries: GPU times are the wall clock from submit until the device reports the work done";
    st(`done: ${how}`);
    body.dataset.benchTimer = timer;
    const bad = [...tbody.children].filter((tr) => tr.className === "fail").length;
    body.dataset.bench = bad === 0 ? "done" : "fail";
  } catch (e) {
    st(`error: ${e}`);
    body.dataset.benchError = String(e);
    body.dataset.bench = "error";
  } finally {
    $("bench").disabled = false;
  }
}

await init();
$("verify").onclick = runVerify;
$("train").onclick = runTrain;
$("bench").onclick = runBench;
for (const [param, id] of [["train_n", "train-n"], ["test_n", "test-n"], ["epochs", "epochs"], ["big", "big"]]) {
  if (params.has(param)) $(id).value = params.get(param);
}
let haveAdapter = true;
try {
  await showAdapter();
} catch (e) {
  haveAdapter = false;
  $("adapter").textContent = `no WebGPU adapter: ${e}. Chrome/Edge 113+ has WebGPU on; ` +
    "on Linux start it with --enable-unsafe-webgpu; Firefox 141+ (Windows) and Safari 26 have it on.";
  for (const part of ["verify", "train", "bench"]) body.dataset[part] = "error";
  body.dataset.error = String(e);
}
if (haveAdapter) {
  if (params.has("verify")) await runVerify();
  if (params.has("train")) await runTrain();
  if (params.has("bench")) await runBench();
}
