// The page: adapter info, the Verify table, and a small GPU-vs-CPU
// training run. The wasm module is built by web/build.sh into ./pkg.
// document.body.dataset.verify is "pass", "fail" or "error" when Verify ends
// (what web/e2e.sh waits for).
import init, { adapter, verify, train } from "./pkg/wgpu_train_web.js";

const $ = (id) => document.getElementById(id);
const status = (s) => { $("status").textContent = s; };

function fmt(x, digits) {
  if (!isFinite(x)) return String(x);
  return x === 0 ? "0" : x.toExponential(digits);
}

async function showAdapter() {
  const a = JSON.parse(await adapter());
  $("adapter").textContent =
    `adapter: ${a.name || "(unnamed)"}  backend ${a.backend}  type ${a.device_type}` +
    `${a.software ? " (software/fallback)" : ""}  driver ${a.driver} ${a.driver_info}\n` +
    `timestamp queries: ${a.timestamps}  max storage binding: ${a.max_storage_buffer_binding_size} B` +
    `  user agent: ${navigator.userAgent}`;
}

async function runVerify() {
  const body = document.body;
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
      for (const [v, cls] of [
        [r.family], [r.kernel], [r.shape],
        [fmt(r.worst_error, 2), "num"],
        [r.pass ? "pass" : "FAIL"],
        [r.gpu_ms.toFixed(2), "num"], [r.cpu_ms.toFixed(2), "num"],
      ]) {
        const td = document.createElement("td");
        td.textContent = v;
        if (cls) td.className = cls;
        if (v === "pass") td.className = "pass";
        if (v === "FAIL") td.className = "failtxt";
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    $("table").hidden = false;
    const failed = rows.filter((r) => !r.pass).length;
    status(`${rows.length - failed} of ${rows.length} cases pass` +
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

function plot(canvas, series, colours, label) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, h);
  const all = series.flat();
  const lo = Math.min(...all), hi = Math.max(...all);
  const n = series[0].length;
  ctx.fillStyle = "#222";
  ctx.fillText(`${label}: ${hi.toFixed(3)} → ${lo.toFixed(3)}`, pad, 14);
  series.forEach((s, k) => {
    ctx.strokeStyle = colours[k];
    ctx.setLineDash(k ? [5, 4] : []);
    ctx.beginPath();
    s.forEach((v, i) => {
      const x = pad + (i / Math.max(1, n - 1)) * (w - 2 * pad);
      const y = h - pad - ((v - lo) / Math.max(1e-12, hi - lo)) * (h - 2 * pad);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  });
}

async function runTrain() {
  status("training…");
  $("train").disabled = true;
  try {
    const r = JSON.parse(await train(30));
    const out = $("train-out");
    out.innerHTML = "";
    const c = document.createElement("canvas");
    c.width = 520; c.height = 200;
    out.appendChild(c);
    plot(c, [r.gpu_losses, r.cpu_losses], ["#06c", "#c60"], "training loss (GPU solid, CPU dashed)");
    const p = document.createElement("p");
    const n = r.gpu_losses.length;
    p.textContent = `${n} steps of the MLP 784-128-128-10 (sigmoid, Adam, batch 128, synthetic data): ` +
      `GPU ${r.gpu_ms.toFixed(0)} ms, CPU (wasm, one thread) ${r.cpu_ms.toFixed(0)} ms; ` +
      `final loss GPU ${r.gpu_losses[n - 1].toFixed(5)}, CPU ${r.cpu_losses[n - 1].toFixed(5)}`;
    out.appendChild(p);
    status("trained");
  } catch (e) {
    status(`error: ${e}`);
  } finally {
    $("train").disabled = false;
  }
}

await init();
$("verify").onclick = runVerify;
$("train").onclick = runTrain;
try {
  await showAdapter();
} catch (e) {
  $("adapter").textContent = `no WebGPU adapter: ${e}. Chrome/Edge 113+ has WebGPU on; ` +
    "on Linux start it with --enable-unsafe-webgpu; Firefox 141+ (Windows) and Safari 26 have it on.";
  document.body.dataset.verify = "error";
  document.body.dataset.error = String(e);
}
if (new URLSearchParams(location.search).has("verify")) await runVerify();
