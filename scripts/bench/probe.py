"""Latency probe: GET a URL at a steady, light rate over one keep-alive
connection and print the p50 and p99 in milliseconds. Unlike wrk it does not
itself load the machine, so it shows what a user sees while something else
(a login flood) keeps the server busy."""
import http.client
import sys
import time
from urllib.parse import urlparse

url = urlparse(sys.argv[1])
seconds = float(sys.argv[2])
interval = 1 / float(sys.argv[3]) if len(sys.argv) > 3 else 0.01

conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
samples = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    started = time.perf_counter()
    conn.request("GET", url.path)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"unexpected status {response.status}")
    samples.append((time.perf_counter() - started) * 1000)
    time.sleep(max(0.0, interval - (time.perf_counter() - started)))
samples.sort()
pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(f"{pick(0.50):.2f} {pick(0.99):.2f} {len(samples)}")
if len(sys.argv) > 4:
    print("p90 %.2f p95 %.2f p99 %.2f p99.5 %.2f max %.2f" % (pick(0.9), pick(0.95), pick(0.99), pick(0.995), samples[-1]), file=sys.stderr)
