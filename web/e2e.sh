#!/usr/bin/env bash
# The page end to end: build it, serve it locally, open it in headless
# Chromium (through chromedriver, with web/webdriver.json's options) with
# all three parts running, and assert: every Verify row passes; Train
# (the MLP on a slice of Fashion-MNIST, sizes below) ends with a falling
# loss and a test accuracy above chance on both devices; the Benchmark
# table has every row, each GPU product agreeing with the CPU's. Saves a
# screenshot (web/screenshot.png, or $1).
# The Train slice and the square benchmark are kept small for SwiftShader:
# E2E_TRAIN_N (training examples), E2E_TEST_N, E2E_EPOCHS, E2E_BIG.
set -euo pipefail
cd "$(dirname "$0")/.."
bash web/build.sh
shot=${1:-web/screenshot.png}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory web/www "$port" >/dev/null 2>&1 &
server=$!
/usr/bin/chromedriver --port="$dport" >/dev/null 2>&1 &
driver=$!
trap 'kill $server $driver 2>/dev/null || true' EXIT
query="verify&train&bench&train_n=${E2E_TRAIN_N:-4096}&test_n=${E2E_TEST_N:-1000}&epochs=${E2E_EPOCHS:-5}&big=${E2E_BIG:-1024}"
python3 - "$dport" "http://127.0.0.1:$port/?$query" "$shot" <<'PY'
import base64, json, sys, time, urllib.request
dport, url, shot = sys.argv[1:]
base = f"http://127.0.0.1:{dport}"

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["value"]

for _ in range(100):  # chromedriver starting
    try:
        call("GET", "/status"); break
    except OSError:
        time.sleep(0.1)
caps = json.load(open("web/webdriver.json"))
caps["goog:chromeOptions"]["args"].append("--window-size=1700,1600")
sid = call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
try:
    call("POST", f"/session/{sid}/url", {"url": url})

    def js(expr):
        return call("POST", f"/session/{sid}/execute/sync", {"script": f"return {expr}", "args": []})

    # Verify, then Train, then Benchmark: each part's state ends in
    # pass/done, fail or error.
    start, states = time.time(), {}
    for part in ("verify", "train", "bench"):
        t = time.time()
        while time.time() - start < 1200:
            states[part] = js(f"document.body.dataset.{part} || null")
            if states[part] in ("pass", "done", "fail", "error"):
                break
            time.sleep(1)
        print(f"{part}: {states[part]} after {time.time() - t:.0f} s")
    d = js("Object.assign({}, document.body.dataset)")
    text = js("[document.getElementById('adapter').textContent, document.getElementById('status').textContent,"
              " document.getElementById('train-status').textContent, document.getElementById('bench-status').textContent,"
              " [...document.querySelectorAll('#bench-table tbody tr')].map(tr => tr.innerText.replace(/\\t/g, ' | '))]")
    png = base64.b64decode(call("GET", f"/session/{sid}/screenshot"))
    open(shot, "wb").write(png)
    print(text[0])
    print(f"Verify: {states['verify']}: {text[1]}")
    print(f"Train: {states['train']}: {text[2]}")
    for key in ("trainLoss", "trainCpuLoss", "trainAccuracy", "trainCpuAccuracy"):
        print(f"  {key}: {d.get(key)}")
    print(f"Benchmark: {states['bench']}: {text[3]}")
    for row in text[4]:
        print(f"  {row}")
    print(f"(screenshot {shot})")

    failures = []
    if states["verify"] != "pass":
        failures.append(f"Verify {states['verify']}: {d.get('error', '')} {d.get('failed', '?')} of {d.get('rows', '?')} rows failed")
    if states["train"] != "done":
        failures.append(f"Train {states['train']}: {d.get('trainError', '')}")
    else:
        for dev, loss, acc in (("GPU", "trainLoss", "trainAccuracy"), ("CPU", "trainCpuLoss", "trainCpuAccuracy")):
            l, a = json.loads(d[loss]), json.loads(d[acc])
            if not (len(l) >= 2 and l[-1] < l[0]):
                failures.append(f"Train: the {dev} training loss did not fall: {l}")
            # Ten classes: chance is 0.1.
            if not (len(a) >= 2 and a[-1] > 0.5):
                failures.append(f"Train: the {dev} test accuracy is not above chance: {a}")
        # The same run on both devices: each epoch's loss within the
        # browser tests' 1e-3 relative.
        gl, cl = json.loads(d["trainLoss"]), json.loads(d["trainCpuLoss"])
        if len(gl) != len(cl) or any(abs(g - c) > 1e-3 * abs(c) + 1e-6 for g, c in zip(gl, cl)):
            failures.append(f"Train: GPU and CPU losses differ: {gl} vs {cl}")
    rows = int(d.get("benchRows") or 0)
    if states["bench"] != "done" or rows < 6:
        failures.append(f"Benchmark {states['bench']} with {rows} rows: {d.get('benchError', '')}")
    if failures:
        print("page end to end: FAILED\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("page end to end: pass")
finally:
    call("DELETE", f"/session/{sid}")
PY
