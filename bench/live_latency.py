#!/usr/bin/env python3
"""Alert latency of `tracehunt watch`, measured end to end.

Starts `tracehunt watch` on a followed file (--mode file) or its HTTP endpoint
(--mode http), sends --events events at a steady --rate (events/s), and reads
the watch's stdout: an event's latency is the time from just before it was
appended (file) or POSTed (http) to the moment its first detection line is
read from stdout, both taken with this process's monotonic clock. Every event
is a Sysmon process creation of `whoami /priv` on one of 50 hosts (2 SigmaHQ
detections each), numbered by a `bench_seq` field.

Prints events sent, events detected (the rest are lost), the achieved rate,
latency p50/p90/p99/max in ms and the watch's peak RSS (VmHWM).
"""
import argparse
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

SEQ = re.compile(rb'"bench_seq":(\d+)')


def event(seq):
    return json.dumps({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": f"WS{seq % 50:02d}",
        "Image": "C:\\Windows\\System32\\whoami.exe",
        "OriginalFileName": "whoami.exe",
        "CommandLine": "whoami /priv",
        "ParentImage": "C:\\Windows\\System32\\cmd.exe",
        "User": "CORP\\alice",
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bench_seq": seq,
    }, separators=(",", ":"))


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("TRACEHUNT_BIN", "target/release/tracehunt"))
    ap.add_argument("--mode", choices=["file", "http"], default="file")
    ap.add_argument("--rate", type=int, default=1000, help="events per second")
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--batch-ms", type=int, default=10, help="http: one POST per this many ms")
    ap.add_argument("rules", nargs="*", help="rule directories (-r each)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tracehunt-live-bench-")
    log = os.path.join(tmp, "events.ndjson")
    open(log, "w").close()
    token = "bench-token-0123456789abcdef"
    cmd = [a.bin, "watch"]
    for r in a.rules:
        cmd += ["-r", r]
    if a.mode == "file":
        cmd += [log, "--state", os.path.join(tmp, "state.json")]
        ready = "tracehunt watch: rules: "
    else:
        cmd += ["--listen", "127.0.0.1:0"]
        ready = "listening on http://"
    env = dict(os.environ, TRACEHUNT_TOKEN=token)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    addr = None
    started = time.monotonic()
    for line in proc.stderr:
        line = line.decode(errors="replace")
        if ready in line:
            if a.mode == "http":
                addr = line.split("http://", 1)[1].strip()
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    startup = time.monotonic() - started

    sent = [0] * a.events
    seen = {}

    def reader():
        for line in proc.stdout:
            if b'"kind":"detection"' not in line:
                continue
            m = SEQ.search(line)
            if m:
                s = int(m.group(1))
                if s not in seen:
                    seen[s] = time.perf_counter_ns()

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()

    t0 = time.perf_counter()
    if a.mode == "file":
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        n = 0
        while n < a.events:
            due = min(a.events, int((time.perf_counter() - t0) * a.rate) + 1)
            if due > n:
                data = "".join(event(i) + "\n" for i in range(n, due)).encode()
                now = time.perf_counter_ns()
                for i in range(n, due):
                    sent[i] = now
                os.write(fd, data)
                n = due
            time.sleep(0.0005)
        os.close(fd)
    else:
        host, port = addr.rsplit(":", 1)
        work = queue.Queue()
        errors = []

        def client():
            c = http.client.HTTPConnection(host, int(port), timeout=30)
            while True:
                item = work.get()
                if item is None:
                    return
                lo, hi = item
                body = "".join(event(i) + "\n" for i in range(lo, hi)).encode()
                now = time.perf_counter_ns()
                for i in range(lo, hi):
                    sent[i] = now
                c.request("POST", "/v1/events", body=body, headers={"Authorization": f"Bearer {token}"})
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)

        clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for c in clients:
            c.start()
        per = max(1, a.rate * a.batch_ms // 1000)
        n = 0
        while n < a.events:
            due_t = t0 + (n / a.rate)
            d = due_t - time.perf_counter()
            if d > 0:
                time.sleep(d)
            hi = min(a.events, n + per)
            work.put((n, hi))
            n = hi
        for _ in clients:
            work.put(None)
        for c in clients:
            c.join()
        if errors:
            print(f"HTTP errors: {len(errors)} (first {errors[0]})", file=sys.stderr)
    gen = time.perf_counter() - t0
    deadline = time.monotonic() + 15
    while len(seen) < a.events and time.monotonic() < deadline:
        time.sleep(0.05)
    rss = peak_rss_mb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    lat = sorted((seen[s] - sent[s]) / 1e6 for s in seen)
    print(
        f"{a.mode:4} {a.rate:>6} ev/s: {a.events} sent in {gen:.2f} s ({a.events / gen:,.0f} ev/s), "
        f"{len(seen)} detected, {a.events - len(seen)} lost; latency ms p50 {percentile(lat, 50):.2f} "
        f"p90 {percentile(lat, 90):.2f} p99 {percentile(lat, 99):.2f} max {lat[-1] if lat else float('nan'):.2f}; "
        f"peak RSS {rss:.0f} MB; start-up {startup:.2f} s"
    )


if __name__ == "__main__":
    main()
