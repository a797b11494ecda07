#!/usr/bin/env python3
"""Serving benchmark (run by hand): aggregate tokens/s, p50/p99 request latency and time to first token at 1, 4 and
16 concurrent streaming clients, autoregressive vs speculative, against `linspec serve` on 127.0.0.1.

Usage: bench/serve/run.py --linspec build/bin/linspec --checkpoint out/quickstart/serve.h5
                          [--weights f32|bf16|int8] [--clients 1,4,16] [--modes off,heads] [--max-tokens 64]
                          [--requests-per-client 2] [--out bench/results/serve/results.json]
Each mode starts its own server (--max-batch = the largest client count); every client sends its requests one
after another (greedy, a different prompt each, streamed with include_usage), so `c` clients keep c requests in
flight. Besides wall-clock rates it reports tokens per server CPU-second, which a loaded machine does not distort.
Standard library only.
"""
import argparse, json, os, signal, socket, statistics, subprocess, sys, threading, time, urllib.request

PROMPTS = [
    "The history of the Python programming language", "Write a short story about a robot who", "The capital of France is",
    "In computer science, a linked list is", "Once upon a time in a small village", "The main reasons for the",
    "Explain how a hash table works:", "The best way to learn a new language is", "def fibonacci(n):",
    "The weather today is", "A recipe for chocolate cake:", "The theory of relativity states that",
    "My favourite book is", "To install the package, run", "The three laws of motion are", "Dear hiring manager,",
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(a, mode, max_batch):
    port = free_port()
    cmd = [a.linspec, "serve", "--checkpoint", a.checkpoint, "--port", str(port), "--weights", a.weights,
           "--max-batch", str(max_batch), "--speculative", mode]
    log = open(os.path.join(a.log_dir, f"server-{mode}.log"), "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if p.poll() is not None:
            sys.exit(f"server exited {p.returncode}; see {log.name}")
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return p, base
        except OSError:
            time.sleep(0.1)
    p.kill()
    sys.exit("server did not start")


def one_request(base, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    ttft, tokens = None, 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text") and ttft is None:
                ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    total = time.perf_counter() - t0
    return {"latency_s": total, "ttft_s": ttft if ttft is not None else total, "tokens": tokens}


def cpu_seconds(pid):
    """The server's user + system CPU time so far. On a machine shared with other work, wall-clock rates measure the
    neighbours as much as the server; tokens per server CPU-second measure the server alone."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def step_counters(base):
    """The server's step counters (/metrics): target steps, accepted draft tokens, and engine steps over the
    speculative sequences with and without drafting."""
    out = {}
    for line in urllib.request.urlopen(base + "/metrics").read().decode().splitlines():
        for name, key in (("linspec_steps_total ", "steps"), ("linspec_accepted_draft_tokens_total ", "accepted"),
                          ('linspec_speculative_engine_steps_total{drafted="yes"} ', "drafted_steps"),
                          ('linspec_speculative_engine_steps_total{drafted="no"} ', "plain_steps")):
            if line.startswith(name):
                out[key] = float(line[len(name):])
    return out


def run_level(base, clients, a, pid):
    results, lock = [], threading.Lock()
    cpu0 = cpu_seconds(pid)
    counters0 = step_counters(base)

    def client(i):
        for k in range(a.requests_per_client):
            r = one_request(base, PROMPTS[(i + k * clients) % len(PROMPTS)], a.max_tokens)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    lat, ttft = [r["latency_s"] for r in results], [r["ttft_s"] for r in results]
    tokens = sum(r["tokens"] for r in results)
    counters = {k: v - counters0.get(k, 0) for k, v in step_counters(base).items()}
    return {"clients": clients, "requests": len(results), "tokens": tokens, "wall_s": round(wall, 3),
            "tokens_per_s": round(tokens / wall, 2), "server_cpu_s": round(cpu, 2),
            "tokens_per_server_cpu_s": round(tokens / max(cpu, 1e-9), 2),
            "latency_p50_s": round(statistics.median(lat), 3), "latency_p99_s": round(pct(lat, 99), 3),
            "ttft_p50_s": round(statistics.median(ttft), 3), "ttft_p99_s": round(pct(ttft, 99), 3),
            "step_counters": counters}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--linspec", default="build/bin/linspec")
    ap.add_argument("--checkpoint", default="out/quickstart/serve.h5")
    ap.add_argument("--weights", default="f32")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--modes", default="off,heads")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--out", default="bench/results/serve/results.json")
    a = ap.parse_args()
    # A SIGTERM (e.g. from `timeout`) unwinds through the finally blocks, so no server is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a.log_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(a.log_dir, exist_ok=True)
    levels = [int(c) for c in a.clients.split(",")]
    report = {"checkpoint": a.checkpoint, "weights": a.weights, "max_tokens": a.max_tokens,
              "requests_per_client": a.requests_per_client, "cpus": os.cpu_count(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_average_at_start": os.getloadavg(),
              "runs": []}
    for mode in a.modes.split(","):
        p, base = start_server(a, mode, max(levels))
        try:
            one_request(base, PROMPTS[0], 8)  # warm-up (first-touch allocations, oneDNN primitive cache)
            for c in levels:
                r = run_level(base, c, a, p.pid)
                r["speculative"] = mode
                print(json.dumps(r), flush=True)
                report["runs"].append(r)
            metrics = urllib.request.urlopen(base + "/metrics").read().decode()
            report.setdefault("metrics", {})[mode] = {
                l.split()[0]: float(l.split()[1]) for l in metrics.splitlines()
                if l.startswith(("linspec_mean_accepted_tokens_per_step", "linspec_mean_batch_size"))}
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=120)
    for mode in a.modes.split(","):
        runs = {r["clients"]: r for r in report["runs"] if r["speculative"] == mode}
        if 1 in runs and max(levels) in runs:
            report.setdefault("scaling", {})[mode] = {
                key: round(runs[max(levels)][key] / runs[1][key], 2) for key in ("tokens_per_s", "tokens_per_server_cpu_s")}
    report["load_average_at_end"] = os.getloadavg()
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
