"""`make bench-embedded`'s start-up probe: execs `poison-pill serve` on an
existing data folder and times how long until `/ready` answers 200 (polled
every millisecond over fresh connections, as an orchestrator would), then
lets it idle and reads its resident memory from /proc. Prints one JSON line
per run: {"ready_ms": …, "idle_rss_kib": …}."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time

binary, port, idle_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


def ready() -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.2)
        conn.request("GET", "/ready")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


started = time.perf_counter()
server = subprocess.Popen([binary, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while not ready():
        if server.poll() is not None:
            sys.exit(f"the server exited ({server.returncode}) before it was ready")
        if time.perf_counter() - started > 15:
            sys.exit("the server was not ready within 15 s")
        time.sleep(0.001)
    ready_ms = (time.perf_counter() - started) * 1000
    time.sleep(idle_seconds)
    with open(f"/proc/{server.pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    print(json.dumps({"ready_ms": round(ready_ms, 1), "idle_rss_kib": rss}))
finally:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
