# Sync throughput of the site hierarchy: N usage records recorded at a child P01 while its parent
# CEN is down, then the time until CEN holds them all; and the size of one 5,000-record batch.
# Usage: python3 crates/tally/benches/hierarchy_sync.py target/release/tally 100000
import gzip, json, os, socket, subprocess, sys, time, urllib.request, shutil
BIN = sys.argv[1]; N = int(sys.argv[2]); ROOT = os.environ.get("TMPDIR", "/tmp") + "/tally-hierarchy-sync"
shutil.rmtree(ROOT, ignore_errors=True)
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def start(code, extra):
    p = port()
    proc = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{p}", "--data-dir", f"{ROOT}/{code}",
                             "--site-code", code] + extra, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    token = None
    for line in proc.stdout:
        if line.startswith("Admin token (shown once, keep it): "): token = line.split(": ", 1)[1].strip()
        if line.startswith("Stop with"): break
    return proc, f"http://127.0.0.1:{p}", token
def cli(url, token, *args):
    out = subprocess.run([BIN, *args, "--format", "json"], env={**os.environ, "TALLY_URL": url, "TALLY_TOKEN": token},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
def post(url, path, body, auth=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    if auth: req.add_header("authorization", "Bearer " + auth)
    return json.loads(urllib.request.urlopen(req).read() or b"null")
cen, cen_url, cen_token = start("CEN", [])
secret = cli(cen_url, cen_token, "sites", "invite", "--code", "P01", "--name", "P01")[0]["secret"]
p01, p01_url, p01_token = start("P01", ["--parent-url", cen_url, "--parent-token", secret, "--sync-interval-secs", "1"])
enrol = cli(p01_url, p01_token, "enrollment", "create", "--name", "bench")[0]["token"]
agent = post(p01_url, "/api/v1/agent/enroll", {"enrollment_token": enrol, "host_name": "pc", "machine_id": "m1"})
creds = agent["agent_id"] + "." + agent["agent_secret"]
def record(i):
    s = 1780300800 + i * 60
    t = lambda x: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(x))
    return {"meter_data_id": f"r-{i}", "file": {"file_name": "code", "original_file_name": "code", "version": "1.95.0",
            "product_name": "Code", "publisher": "Microsoft", "language": 65535}, "user": {"account": f"user{i % 500}"},
            "start_time": t(s), "start_time_offset": 60, "end_time": t(s + 59), "end_time_offset": 60, "started": True,
            "still_running": False, "start_not_captured": False, "end_not_captured": False, "in_ts_session": False}
batch = [record(i) for i in range(5000)]
raw = json.dumps({"usage": [{"device": {"key": "machine:m1", "site_code": "P01", "host_name": "pc", "machine_id": "m1"}, "records": batch}]}).encode()
print(f"one 5,000-record batch: {len(raw)} bytes JSON, {len(gzip.compress(raw, 1))} bytes gzip level 1 "
      f"({len(gzip.compress(raw, 1)) / 5000:.0f} bytes/record)")
# CEN stopped while the child records N: then measure the catch-up alone.
cen.terminate(); cen.wait()
for start_i in range(0, N, 10000):
    post(p01_url, "/api/v1/agent/usage", {"batch_id": f"b{start_i}", "records": [record(i) for i in range(start_i, min(N, start_i + 10000))]}, creds)
cen = subprocess.Popen([BIN, "server", "--listen", cen_url.split("//")[1], "--data-dir", f"{ROOT}/CEN", "--site-code", "CEN"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t0 = time.time()
while True:
    try:
        rows = cli(cen_url, cen_token, "sites")
        got = next((r["records"] for r in rows if r["code"] == "P01"), 0)
    except Exception:
        got = 0
    if got >= N: break
    time.sleep(0.5)
dt = time.time() - t0
print(f"{N} records from P01 to CEN in {dt:.1f} s after CEN came back: {N / dt:.0f} records/s (SQLite both sides)")
for p in (cen, p01): p.terminate(); p.wait()
