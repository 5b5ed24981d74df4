#!/usr/bin/env bash
# The page end to end: build it, serve it locally, open it in headless
# Chromium (through chromedriver, with web/webdriver.json's options), wait
# for the Verify table, assert every row passes, and save a screenshot
# (web/screenshot.png, or $1).
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
python3 - "$dport" "http://127.0.0.1:$port/?verify" "$shot" <<'PY'
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
caps["goog:chromeOptions"]["args"].append("--window-size=1100,1600")
sid = call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
try:
    call("POST", f"/session/{sid}/url", {"url": url})
    state, start = None, time.time()
    while time.time() - start < 900:
        state = call("POST", f"/session/{sid}/execute/sync",
                     {"script": "return document.body.dataset.verify || null", "args": []})
        if state in ("pass", "fail", "error"):
            break
        time.sleep(1)
    info = call("POST", f"/session/{sid}/execute/sync", {"script":
        "return [document.getElementById('adapter').textContent, document.getElementById('status').textContent,"
        " document.body.dataset.rows, document.body.dataset.failed, document.body.dataset.error]", "args": []})
    png = base64.b64decode(call("GET", f"/session/{sid}/screenshot"))
    open(shot, "wb").write(png)
    print(info[0]); print(f"Verify: {state}: {info[1]} (screenshot {shot})")
    if state != "pass":
        print(f"page end to end: FAILED ({state}; {info[4] or ''} {info[3] or '?'} of {info[2] or '?'} rows failed)")
        sys.exit(1)
finally:
    call("DELETE", f"/session/{sid}")
PY
