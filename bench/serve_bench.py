#!/usr/bin/env python3
"""Side-by-side serving benchmark: `rankemb serve` vs Infinity vs a hand-written
sentence-transformers HTTP loop, plus raw encode throughput vs ONNX Runtime (float32 and int8).

What it measures (one run, one machine, loopback only, the same all-MiniLM-L6-v2 directory):

  serve (default mode): each server is started on 127.0.0.1 on a free port, waited for, loaded by
    N concurrent client threads (N = --levels, default 1,16,64), each thread on its own keep-alive
    http.client.HTTPConnection, sending requests of --texts-per-request STS-B test sentences
    (default 1) for --duration seconds (default 20) after --warmup seconds (default 3), then
    stopped with SIGTERM. Per level: requests/s, sentences/s, p50/p99 latency (ms), errors, and
    the CPU (in cores) used by the client, by the server, and by anything else on the machine
    during the measured window. On a small machine the client shares the cores with the server,
    so its CPU is reported; a single client process whose CPU nears one core is GIL-bound, and
    the run says so (then use --client-procs to spread the threads over processes).
      rankemb   BIN --threads T serve -m MODEL --port 0    POST /v1/embeddings (or /embed: TEI)
      infinity  infinity_emb v2 --model-id MODEL --engine torch --device cpu   POST /embeddings
      st        this script's --st-server mode: ThreadingHTTPServer + SentenceTransformer.encode
                under a lock, one request at a time (what a user writes by hand)
  --encode: raw encode throughput, no HTTP, on the first --encode-sentences (default 2,000)
    distinct STS-B test sentences, batch --batch (default 64), T intra-op threads for all:
      rankemb encode in float32 and with --int8 (--rankemb-variants; a subprocess each, its fixed
      start-up cost, measured on a one-sentence run, reported and subtracted), onnxruntime float32 on an ONNX export of the model and on two
      int8 dynamic quantizations of it, per-tensor (quantize_dynamic's defaults) and per-channel
      (tokenizers + numpy mean pooling + L2 normalisation, batches sorted by length and padded
      per batch), and SentenceTransformer.encode. Accuracy: worst and mean per-sentence cosine
      of each to rankemb float32 (and of ONNX float32 to sentence-transformers). The export is
      written once into .cache/bench-onnx/ (delete it to re-export).
  Infinity runs with --no-compile (its default torch.compile builds C++ kernels on the cores
  under test) and no BetterTransformer (needs optimum<2); --infinity-args=--compile turns it on.

Results: one JSON line per measurement appended to --out (default bench/results/serve.jsonl),
and a Markdown table on stdout.

Set-up (Python 3.11; no hub access needed, everything loads from the local model directory):
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install "infinity-emb[server,torch]==0.0.78" onnxruntime onnx
  (resolved here to torch 2.15.0 (PyPI's build; the CPU-only index was unreachable),
  sentence-transformers 3.4.1, transformers 4.57.6, tokenizers 0.22.2, numpy 1.26.4,
  onnxruntime 1.32.0, onnx 1.23.2; infinity-emb pins sentence-transformers<4 and numpy<2.)
Run (from the repository root, on an otherwise idle machine; about 5 and 3 minutes on 2 cores):
  .venv-bench/bin/python bench/serve_bench.py --rankemb build/bin/rankemb
  .venv-bench/bin/python bench/serve_bench.py --rankemb build/bin/rankemb --encode
Smoke test:
  .venv-bench/bin/python bench/serve_bench.py --rankemb build/bin/rankemb --duration 2 --warmup 1 \
      --levels 1,4 --out /tmp/serve-smoke.jsonl
"""
import argparse
import datetime
import http.client
import json
import math
import multiprocessing
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("RANKEMB_CACHE_DIR", os.path.join(REPO, ".cache"))
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
MODEL = os.path.join(CACHE, "assets", "all-MiniLM-L6-v2")
ONNX_DIR = os.path.join(CACHE, "bench-onnx")
VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Nothing may reach a model hub or send usage statistics: the machine has no such network.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
os.environ.update(OFFLINE_ENV)


# ---------------------------------------------------------------------------------------------
# Input and small helpers


def stsb_sentences(limit=None):
    """Distinct STS-B test sentences (sentence1, sentence2 of each row), in file order."""
    seen, out = set(), []
    with open(os.path.join(DATA, "stsb", "stsb-test.tsv"), encoding="utf-8") as f:
        next(f)  # header
        for row in f:
            cols = row.rstrip("\n").split("\t")
            for s in (cols[5], cols[6]):
                if s and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out[:limit] if limit else out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def pkg_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def rankemb_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip().removeprefix("rankemb ").strip()


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def append_records(path, records):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc: who used the cores during a measured window


def proc_cpu_seconds(pid):
    """utime + stime of one process (all its threads), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(pid):
    """pid and every process below it (Infinity or a shell may run the real server as a child)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def machine_busy_seconds():
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # minus idle and iowait; guest time is inside user


class CpuSampler:
    """CPU used between start() and stop() by the client processes, the server tree, the rest."""

    def __init__(self, client_pids, server_pid):
        self.client_pids, self.server_pid = client_pids, server_pid

    def _sample(self):
        server = sum(proc_cpu_seconds(p) for p in descendants(self.server_pid)) if self.server_pid else 0.0
        client = sum(proc_cpu_seconds(p) for p in self.client_pids)
        return time.monotonic(), client, server, machine_busy_seconds()

    def start(self):
        self.a = self._sample()

    def stop(self):
        b = self._sample()
        wall = b[0] - self.a[0]
        client, server, busy = (b[i] - self.a[i] for i in (1, 2, 3))
        return {"client_cpu_cores": round(client / wall, 3), "server_cpu_cores": round(server / wall, 3),
                "other_cpu_cores": round(max(0.0, busy - client - server) / wall, 3)}


# ---------------------------------------------------------------------------------------------
# The hand-written sentence-transformers server (run as `--st-server PORT`, a subprocess)


def st_server_main(port, model_dir, threads):
    import torch
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device="cpu")
    lock = threading.Lock()  # one encode at a time: the model is not shared across requests

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive; the default HTTP/1.0 closes every connection

        def log_message(self, *args):
            pass

        def reply(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.reply(200 if self.path == "/health" else 404, {})

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            texts = req["input"] if isinstance(req["input"], list) else [req["input"]]
            with lock:
                emb = model.encode(texts, batch_size=max(1, len(texts)), convert_to_numpy=True)
            data = [{"object": "embedding", "index": i, "embedding": e.tolist()} for i, e in enumerate(emb)]
            self.reply(200, {"object": "list", "data": data, "model": req.get("model", "st")})

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # 64 clients connect at once; the default backlog of 5 drops SYNs

    srv = Server(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly, exit 0, like the others
    print(f"st-server: listening on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    srv.serve_forever()


# ---------------------------------------------------------------------------------------------
# Starting, probing and stopping the servers


class Peer:
    """One server under test: how to start it, where to send requests, and in which JSON shape."""

    def __init__(self, name, version, cmd, path, shape, port=None, env=None):
        self.name, self.version, self.cmd, self.path, self.shape = name, version, cmd, path, shape
        self.port, self.env, self.proc, self.log_path = port, env or {}, None, None

    def body(self, texts):
        if self.shape == "tei":
            return json.dumps({"inputs": texts}).encode()
        return json.dumps({"input": texts, "model": "all-MiniLM-L6-v2"}).encode()

    def parse(self, raw):
        obj = json.loads(raw)
        if self.shape == "tei":
            return obj
        return [d["embedding"] for d in sorted(obj["data"], key=lambda d: d["index"])]


def make_peers(args):
    model, t = args.model, str(args.threads)
    peers = []
    if "rankemb" in args.peers:
        path, shape = ("/embed", "tei") if args.rankemb_endpoint == "tei" else ("/v1/embeddings", "openai")
        cmd = [args.rankemb, "--threads", t, "serve", "-m", model, "--port", "0"] + shlex.split(args.rankemb_args)
        peers.append(Peer("rankemb", rankemb_version(args.rankemb), cmd, path, shape))
    if "infinity" in args.peers:
        port = free_port()
        extra = shlex.split(args.infinity_args)
        cmd = [os.path.join(VENV_BIN, "infinity_emb"), "v2", "--model-id", model, "--engine", "torch",
               "--device", "cpu", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        # Infinity's default torch.compile(dynamic=True) makes inductor build C++ kernels with gcc
        # on the first batches, on the cores under test; off unless --infinity-args asks for it.
        # BetterTransformer needs optimum<2 (not installed), so it is off either way. Infinity's
        # options repeat per model, so a default is left out when the extra args name either form.
        for on, off in (("--compile", "--no-compile"), ("--bettertransformer", "--no-bettertransformer")):
            if on not in extra and off not in extra:
                cmd.append(off)
        cmd += extra
        ver = f"{pkg_version('infinity-emb')} (torch {pkg_version('torch')})"
        peers.append(Peer("infinity", ver, cmd, "/embeddings", "openai", port, {"OMP_NUM_THREADS": t}))
    if "st" in args.peers:
        port = free_port()
        cmd = [sys.executable, os.path.abspath(__file__), "--st-server", str(port), "--model", model, "--threads", t]
        ver = f"sentence-transformers {pkg_version('sentence-transformers')} (torch {pkg_version('torch')})"
        peers.append(Peer("st-loop", ver, cmd, "/v1/embeddings", "openai", port, {"OMP_NUM_THREADS": t}))
    return peers


def start(peer, log_dir, timeout):
    """Start the server with its output in a log file; rankemb's port is read from that log."""
    peer.log_path = os.path.join(log_dir, f"{peer.name}.log")
    log = open(peer.log_path, "wb")
    peer.proc = subprocess.Popen(peer.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, **peer.env})
    deadline = time.monotonic() + timeout
    while peer.port is None:
        m = re.search(r"listening on http://[^:]+:(\d+)", open(peer.log_path, errors="replace").read())
        if m:
            peer.port = int(m.group(1))
        elif peer.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{peer.name} did not start; see {peer.log_path}:\n{log_tail(peer)}")
        else:
            time.sleep(0.1)


def log_tail(peer, n=3000):
    try:
        return open(peer.log_path, errors="replace").read()[-n:]
    except OSError:
        return ""


def wait_ready(peer, probe, timeout):
    """Poll with a real embedding request until it answers 200; returns the probe embeddings."""
    deadline = time.monotonic() + timeout
    while True:
        if peer.proc.poll() is not None:
            raise RuntimeError(f"{peer.name} exited with {peer.proc.returncode}; "
                               f"see {peer.log_path}:\n{log_tail(peer)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=60)
            conn.request("POST", peer.path, peer.body(probe), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
            if resp.status == 200:
                return peer.parse(raw)
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{peer.name} not ready after {timeout} s; see {peer.log_path}")
        time.sleep(0.5)


def stop(peer):
    if peer.proc and peer.proc.poll() is None:
        peer.proc.send_signal(signal.SIGTERM)
        try:
            peer.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            peer.proc.kill()
            peer.proc.wait()
    return peer.proc.returncode if peer.proc else None


# ---------------------------------------------------------------------------------------------
# Load generator


def client_thread(port, path, bodies, first, t_start, t_stop, out):
    """One keep-alive connection sending requests back to back; appends (done, latency, ok)."""
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    # http.client sends headers and body in two writes; with Nagle's algorithm on, the body waits
    # for the server's delayed ACK (40 ms) and every server looks 40 ms slow. curl and httpx set
    # TCP_NODELAY; so does this client.
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    i = first
    time.sleep(max(0.0, t_start - time.monotonic()))  # all threads (and processes) start together
    while time.monotonic() < t_stop:
        body = bodies[i % len(bodies)]
        i += 1
        t = time.monotonic()
        try:
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            resp.read()  # the whole body, so that the connection can be reused
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()  # http.client reconnects on the next request
        done = time.monotonic()
        out.append((done, done - t, ok))
        if not ok:
            time.sleep(0.01)  # a refusing server must not turn the loop into a busy spin
    conn.close()


def run_clients(port, path, bodies, n_threads, offset, t_start, t_stop):
    """n_threads client threads in this process; returns all their (done, latency, ok) records."""
    outs = [[] for _ in range(n_threads)]
    threads = [threading.Thread(target=client_thread, daemon=True,
                                args=(port, path, bodies, (offset + k) * 37, t_start, t_stop, outs[k]))
               for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return [r for o in outs for r in o]


def run_level(peer, bodies, n_clients, args):
    """One concurrency level. time.monotonic() is system-wide on Linux, so client processes
    forked here share the same clock and the same measured window."""
    procs = max(1, min(args.client_procs, n_clients))
    split = [n_clients // procs + (1 if k < n_clients % procs else 0) for k in range(procs)]
    t_start = time.monotonic() + 0.5  # time for the workers to start
    t_measure = t_start + args.warmup
    t_stop = t_measure + args.duration
    jobs = [(peer.port, peer.path, bodies, n, sum(split[:k]), t_start, t_stop) for k, n in enumerate(split)]
    pool, result = None, {}
    if procs == 1:
        th = threading.Thread(target=lambda: result.setdefault("r", run_clients(*jobs[0])), daemon=True)
        th.start()
        client_pids = [os.getpid()]
    else:
        pool = multiprocessing.get_context("fork").Pool(procs)
        async_res = pool.starmap_async(run_clients, jobs)
        client_pids = [p.pid for p in pool._pool]  # the workers: whose CPU is the client's
    sampler = CpuSampler(client_pids, peer.proc.pid)
    time.sleep(max(0.0, t_measure - time.monotonic()))
    sampler.start()
    time.sleep(max(0.0, t_stop - time.monotonic()))
    cpu = sampler.stop()
    if pool:
        records = [r for part in async_res.get() for r in part]
        pool.close()
        pool.join()
    else:
        th.join()
        records = result["r"]
    return summarize(records, t_measure, t_stop, n_clients, procs, cpu, args)


def summarize(records, t_measure, t_stop, n_clients, procs, cpu, args):
    """Only requests that completed inside the measured window count (warm-up ones do not)."""
    window = [r for r in records if t_measure <= r[0] <= t_stop]
    lat = sorted(r[1] * 1000 for r in window if r[2])
    errors = sum(1 for r in window if not r[2])
    dur = t_stop - t_measure
    rec = {"clients": n_clients, "client_procs": procs, "requests": len(lat), "errors": errors,
           "requests_per_s": round(len(lat) / dur, 2),
           "sentences_per_s": round(len(lat) * args.texts_per_request / dur, 2),
           "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
           "mean_ms": round(statistics.fmean(lat), 2) if lat else None, **cpu}
    # A Python client process is GIL-bound near one core; then the numbers measure the client.
    per_proc = cpu["client_cpu_cores"] / procs
    rec["client_gil_bound"] = per_proc >= 0.85
    return rec


# ---------------------------------------------------------------------------------------------
# Serve mode


def cosine_rows(a, b):
    import numpy as np
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def bench_peer(peer, texts, reference, log_dir, args, records):
    """Start one server, check it embeds like the reference, load it at each level (appending to
    records), and return the reference embeddings. The caller stops the server."""
    tpr = args.texts_per_request
    t0 = time.monotonic()
    start(peer, log_dir, args.startup_timeout)
    emb = wait_ready(peer, texts[:16], args.startup_timeout)
    # Same model everywhere: the probe's embeddings must agree with the first server's.
    reference = reference if reference is not None else emb
    common = {"bench": "serve", "tool": peer.name, "version": peer.version, "endpoint": peer.path,
              "texts_per_request": tpr, "duration_s": args.duration, "warmup_s": args.warmup,
              "threads": args.threads, "startup_s": round(time.monotonic() - t0, 2), "dim": len(emb[0]),
              "probe_min_cos_vs_first": round(float(cosine_rows(emb, reference).min()), 6),
              "nproc": os.cpu_count(), "cmd": peer.cmd}
    # Request bodies made up front: JSON encoding in the client would compete for its GIL.
    bodies = [peer.body([texts[(j + k) % len(texts)] for k in range(tpr)]) for j in range(0, len(texts), tpr)]
    for n in args.levels:
        r = {"ts": now_iso(), "level": n, **run_level(peer, bodies, n, args), **common, "loadavg": os.getloadavg()}
        print(f"   {n:3d} clients: {r['requests_per_s']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
              f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  CPU cores: client {r['client_cpu_cores']} "
              f"server {r['server_cpu_cores']} other {r['other_cpu_cores']}", file=sys.stderr, flush=True)
        records.append(r)
        append_records(args.out, [r])
        if peer.proc.poll() is not None:
            raise RuntimeError(f"{peer.name} died during the run; see {peer.log_path}:\n{log_tail(peer)}")
    return reference


def bench_serve(args):
    texts = stsb_sentences()
    records, reference = [], None
    log_dir = tempfile.mkdtemp(prefix="serve-bench-")
    for peer in make_peers(args):
        print(f"== {peer.name} {peer.version}: {' '.join(peer.cmd)}", file=sys.stderr, flush=True)
        try:
            reference = bench_peer(peer, texts, reference, log_dir, args, records)
        except RuntimeError as e:
            print(f"   {peer.name} FAILED: {e}", file=sys.stderr)
        finally:
            rc = stop(peer)
            print(f"   stopped, exit {rc}; log {peer.log_path}", file=sys.stderr, flush=True)
    print_serve_table(records)


def print_serve_table(records):
    print("| server | version | clients | req/s | sentences/s | p50 ms | p99 ms | errors "
          "| client CPU | server CPU | other CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in records:
        gil = " (GIL-bound)" if r["client_gil_bound"] else ""
        print(f"| {r['tool']} | {r['version']} | {r['clients']} | {r['requests_per_s']:,.1f} | "
              f"{r['sentences_per_s']:,.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | "
              f"{r['client_cpu_cores']:.2f}{gil} | {r['server_cpu_cores']:.2f} | {r['other_cpu_cores']:.2f} |")
    if any(r["client_gil_bound"] for r in records):
        print("\nWarning: a client process used about one core (GIL-bound): those rows measure the client;"
              " rerun them with --client-procs 2 or more.")
    if any(r["other_cpu_cores"] > 0.2 for r in records):
        print("\nWarning: something else used the CPU during the run (other CPU > 0.2 cores).")


# ---------------------------------------------------------------------------------------------
# Encode mode: raw throughput, no HTTP


def timed(fn, repeats):
    """Median wall time of `repeats` calls (after the caller's own warm-up) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, result


def encode_rankemb(args, text_file, n, tmp, variant):
    import numpy as np

    def run(path, npy):
        cmd = [args.rankemb, "--threads", str(args.threads), "-q", "encode", "-m", args.model, path, "-o", npy,
               "--batch", str(args.batch)] + (["--int8"] if variant == "int8" else [])
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)

    one = os.path.join(tmp, "one.txt")
    with open(one, "w", encoding="utf-8") as f:
        f.write(stsb_sentences(1)[0] + "\n")
    npy = os.path.join(tmp, f"rankemb-{variant}.npy")
    # Start-up (process, libtorch, model load, one tiny batch): the Python peers exclude theirs.
    startup_s, _, _ = timed(lambda: run(one, os.path.join(tmp, "one.npy")), 3)
    median_s, times, _ = timed(lambda: run(text_file, npy), args.repeats)
    emb = np.load(npy)
    assert emb.shape[0] == n, emb.shape
    net = max(1e-9, median_s - startup_s)
    rec = {"tool": "rankemb encode", "variant": variant, "version": rankemb_version(args.rankemb),
           "median_s": round(median_s, 4), "times_s": [round(t, 4) for t in times],
           "startup_s": round(startup_s, 4), "sentences_per_s": round(n / net, 1),
           "sentences_per_s_incl_startup": round(n / median_s, 1)}
    return rec, emb


# int8 dynamic quantizations of the float32 export: quantize_dynamic's defaults (int8 weights,
# one scale per tensor), and one scale per output channel, which keeps much more accuracy on CPUs
# without VNNI (there ORT's u8s8 kernels saturate; see the cosines this reports).
INT8_VARIANTS = {"int8 dynamic": ("model-int8.onnx", {}),
                 "int8 dynamic per-channel": ("model-int8-per-channel.onnx", {"per_channel": True})}


def export_onnx(model_dir):
    """ONNX float32 export of the BERT body (token embeddings out) and its int8 dynamic
    quantizations, made once; pooling stays outside the graph, in numpy, as for most ORT users.
    Returns {variant: path}."""
    fp32 = os.path.join(ONNX_DIR, "model.onnx")
    os.makedirs(ONNX_DIR, exist_ok=True)
    if not os.path.exists(fp32):
        import torch
        from transformers import AutoModel, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model_dir)
        bert = AutoModel.from_pretrained(model_dir).eval()
        sample = tok(["a short one", "and a somewhat longer second sentence"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {k: {0: "batch", 1: "seq"} for k in names}
        axes["last_hidden_state"] = {0: "batch", 1: "seq"}
        with torch.no_grad():  # dynamo=False: the TorchScript exporter, no onnxscript needed
            torch.onnx.export(bert, tuple(sample[k] for k in names), fp32, input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                              do_constant_folding=True, dynamo=False)
        print(f"exported {fp32}", file=sys.stderr)
    paths = {"float32": fp32}
    for variant, (name, options) in INT8_VARIANTS.items():
        paths[variant] = os.path.join(ONNX_DIR, name)
        if not os.path.exists(paths[variant]):
            from onnxruntime.quantization import QuantType, quantize_dynamic
            quantize_dynamic(fp32, paths[variant], weight_type=QuantType.QInt8, **options)
            print(f"quantized {paths[variant]}", file=sys.stderr)
    return paths


class OrtEncoder:
    """tokenizers + onnxruntime + numpy mean pooling and L2 normalisation."""

    def __init__(self, onnx_path, model_dir, threads, max_length=256):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.sess.get_inputs()}
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.enable_truncation(max_length)  # sentence-transformers' max_seq_length for this model
        self.tok.enable_padding()  # to the longest in each batch

    def encode_batch(self, texts):
        import numpy as np
        enc = self.tok.encode_batch(texts)
        feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
        hidden = self.sess.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(self, texts, batch):
        """Longest first, as rankemb and sentence-transformers batch; rows back in input order."""
        import numpy as np
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows = np.concatenate([self.encode_batch([texts[i] for i in order[s:s + batch]])
                               for s in range(0, len(order), batch)])
        out = np.empty_like(rows)
        out[order] = rows
        return out


def encode_python_peers(args, texts):
    """ONNX Runtime float32 and int8, then sentence-transformers; (record, embeddings) each."""
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(args.threads)
    out = []
    for variant, path in export_onnx(args.model).items():
        enc = OrtEncoder(path, args.model, args.threads)
        enc.encode(texts[:args.batch], args.batch)  # warm-up: first-run allocations
        median_s, times, emb = timed(lambda: enc.encode(texts, args.batch), args.repeats)
        out.append(({"tool": "onnxruntime", "variant": variant, "version": onnxruntime.__version__,
                     "onnx_file": os.path.relpath(path, REPO), "median_s": round(median_s, 4),
                     "times_s": [round(t, 4) for t in times], "sentences_per_s": round(len(texts) / median_s, 1)}, emb))
    st = SentenceTransformer(args.model, device="cpu")
    st.encode(texts[:args.batch], batch_size=args.batch)
    median_s, times, emb = timed(lambda: st.encode(texts, batch_size=args.batch, convert_to_numpy=True), args.repeats)
    out.append(({"tool": "sentence-transformers", "variant": "float32",
                 "version": f"{pkg_version('sentence-transformers')} (torch {torch.__version__})",
                 "median_s": round(median_s, 4), "times_s": [round(t, 4) for t in times],
                 "sentences_per_s": round(len(texts) / median_s, 1)}, emb))
    return out


def bench_encode(args):
    texts = stsb_sentences(args.encode_sentences)
    results = []
    with tempfile.TemporaryDirectory(prefix="serve-bench-encode-") as tmp:
        text_file = os.path.join(tmp, "sentences.txt")
        with open(text_file, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        if args.rankemb:
            for variant in args.rankemb_variants.split(","):
                print(f"== rankemb encode {variant}", file=sys.stderr, flush=True)
                results.append(encode_rankemb(args, text_file, len(texts), tmp, variant))
        print("== onnxruntime, sentence-transformers", file=sys.stderr, flush=True)
        results += encode_python_peers(args, texts)
    st_emb = results[-1][1]
    ref_name, ref = ((f"rankemb {results[0][0]['variant']}", results[0][1]) if args.rankemb else ("sentence-transformers", st_emb))
    records = []
    for rec, emb in results:
        cos = cosine_rows(emb, ref)
        rec.update({"ts": now_iso(), "bench": "encode", "level": "encode", "sentences": len(texts),
                    "batch": args.batch, "threads": args.threads, "reference": ref_name,
                    "min_cos_vs_reference": round(float(cos.min()), 6),
                    "mean_cos_vs_reference": round(float(cos.mean()), 6),
                    "nproc": os.cpu_count(), "loadavg": os.getloadavg()})
        if rec["tool"] == "onnxruntime" and rec["variant"] == "float32":
            c = cosine_rows(emb, st_emb)
            rec.update({"min_cos_vs_st": round(float(c.min()), 6), "mean_cos_vs_st": round(float(c.mean()), 6)})
        records.append(rec)
    append_records(args.out, records)
    print_encode_table(records)


def print_encode_table(records):
    ref = records[0]["reference"]
    print(f"| implementation | version | sentences/s | median s | worst cos vs {ref} | mean cos vs {ref} | notes |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in records:
        notes = []
        if "startup_s" in r:
            notes.append(f"start-up {r['startup_s']:.2f} s subtracted "
                         f"({r['sentences_per_s_incl_startup']:,.1f}/s with it)")
        if "min_cos_vs_st" in r:
            notes.append(f"vs sentence-transformers: worst {r['min_cos_vs_st']:.6f}, mean {r['mean_cos_vs_st']:.6f}")
        print(f"| {r['tool']} {r['variant']} | {r['version']} | {r['sentences_per_s']:,.1f} | {r['median_s']:.3f} | "
              f"{r['min_cos_vs_reference']:.6f} | {r['mean_cos_vs_reference']:.6f} | {'; '.join(notes)} |")


# ---------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rankemb", help="path to the rankemb binary (without it: peers only)")
    p.add_argument("--model", default=MODEL, help="sentence-transformers model directory")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for every implementation")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "serve.jsonl"), help="JSONL to append to")
    p.add_argument("--peers", default="rankemb,infinity,st", help="servers to run, in order: rankemb,infinity,st")
    p.add_argument("--levels", default="1,16,64", help="concurrent clients, comma-separated")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--client-procs", type=int, default=1, help="spread the client threads over this many processes")
    p.add_argument("--rankemb-endpoint", choices=["openai", "tei"], default="openai",
                   help="/v1/embeddings (same JSON as the peers) or TEI /embed")
    p.add_argument("--rankemb-args", default="", help="extra arguments for rankemb serve")
    p.add_argument("--infinity-args", default="", help="extra arguments for infinity_emb v2, e.g. '--compile'")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--encode", action="store_true", help="raw encode throughput instead of serving")
    p.add_argument("--encode-sentences", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64, help="encode mode: sentences per batch")
    p.add_argument("--repeats", type=int, default=3, help="encode mode: timed passes (median reported)")
    p.add_argument("--rankemb-variants", default="float32,int8",
                   help="encode mode: rankemb's precisions, the first the reference for cosines (float32, int8)")
    p.add_argument("--st-server", type=int, metavar="PORT", help=argparse.SUPPRESS)  # internal: the st peer
    args = p.parse_args()
    args.levels = [int(x) for x in args.levels.split(",") if x]
    args.peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    if args.rankemb:
        args.rankemb = os.path.abspath(args.rankemb)
        if not os.access(args.rankemb, os.X_OK):
            p.error(f"{args.rankemb} is not an executable")
    elif "rankemb" in args.peers:
        args.peers.remove("rankemb")
    return args


def main():
    args = parse_args()
    if args.st_server is not None:
        return st_server_main(args.st_server, args.model, args.threads)
    if args.encode:
        return bench_encode(args)
    return bench_serve(args)


if __name__ == "__main__":
    main()
