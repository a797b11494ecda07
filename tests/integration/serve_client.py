#!/usr/bin/env python3
"""Drives `linspec serve` on a checkpoint with curl and the official openai client (test_serve.sh runs it).

Usage: serve_client.py LINSPEC CHECKPOINT
Every check raises AssertionError; the servers it starts are killed on exit. All traffic goes to 127.0.0.1.
"""
import json, os, re, signal, socket, subprocess, sys, threading, time, urllib.request

import openai

LINSPEC, CKPT = sys.argv[1], sys.argv[2]
SERVERS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(*flags):
    port = free_port()
    log = open(f"server-{port}.log", "w")
    p = subprocess.Popen([LINSPEC, "serve", "--checkpoint", CKPT, "--port", str(port), *flags],
                         stdout=log, stderr=subprocess.STDOUT)
    SERVERS.append(p)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        assert p.poll() is None, f"server exited {p.returncode}: {open(log.name).read()}"
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    return p, base
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not come up: " + open(log.name).read())


def curl(base, path, body=None, key=None, raw=None, stream=False):
    """(status, body text) of one request made with curl."""
    cmd = ["curl", "-sS", "--max-time", "120", "-o", "-", "-w", "\n%{http_code}", base + path]
    if stream:
        cmd.insert(1, "-N")
    if body is not None or raw is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    out = subprocess.run(cmd, input=data.encode() if data is not None else None, capture_output=True, check=True).stdout
    text, _, status = out.decode().rpartition("\n")
    return int(status), text


def canon(text):
    """The random tiny model emits bytes that are not UTF-8. JSON carries them as U+FFFD, and Python's decoder and
    the server's JSON writer may disagree on how many. So every text is compared with runs of U+FFFD collapsed:
    the valid characters and where the invalid runs sit must match."""
    return re.sub("\ufffd+", "\ufffd", text)


def generate(prompt, max_new, *flags):
    """What `linspec generate` prints for a greedy run, canonicalised."""
    out = subprocess.run([LINSPEC, "generate", "--checkpoint", CKPT, "--prompt", prompt, "--max-new", str(max_new),
                          *flags], capture_output=True, check=True).stdout
    return canon(out.decode("utf-8", errors="replace"))


def ascii_stop(text):
    """A two-character ASCII substring of text (past its start) to use as a stop string."""
    for i in range(3, len(text) - 1):
        if all(" " <= ch <= "~" for ch in text[i:i + 2]):
            return text[i:i + 2]
    raise AssertionError(f"no ASCII pair in {text!r} to stop at")


def sse_events(text):
    lines = [l for l in text.split("\n") if l]
    assert all(l.startswith("data: ") for l in lines), text
    assert lines[-1] == "data: [DONE]", lines[-1]
    return [json.loads(l[6:]) for l in lines[:-1]]


def check_error(status, text, want_status, param=None):
    assert status == want_status, (status, text)
    err = json.loads(text)["error"]
    assert err["message"] and err["type"], err
    if param is not None:
        assert err["param"] == param, err


def metric(base, name):
    st, text = curl(base, "/metrics")
    assert st == 200, text
    return float(next(l.split()[1] for l in text.splitlines() if l.startswith(name + " ")))


def wait_metric(base, name, want, what):
    # A deadline, not a poll count: under a loaded CI machine (ctest -j) the server can take seconds to notice a
    # disconnect, and a 10 s budget of polls once ran out there.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if metric(base, name) == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: {name} stayed {metric(base, name)}, expected {want}")


def open_request(base, body):
    """A completion request on a raw socket, left unread: the test closes it to play a client that goes away."""
    s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return s


PROMPTS = ["The model reads", "the next word", "Training can learn which token", "a line of text and",
           "in this small corpus", "comes after which", "plain english words follow", "so that the"]


def main():
    p, base = start("--max-batch", "8", "--max-prompt-tokens", "200", "--max-body-bytes", "20000")

    # ---- completions: greedy equals `linspec generate`, usage counts, models, health ----
    want = generate(PROMPTS[0], 24)
    st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 24, "temperature": 0})
    assert st == 200, text
    r = json.loads(text)
    assert r["object"] == "text_completion" and canon(r["choices"][0]["text"]) == want, (r, want)
    u = r["usage"]
    assert u["completion_tokens"] > 0 and u["prompt_tokens"] > 0 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
    st, text = curl(base, "/v1/models")
    assert st == 200 and json.loads(text)["data"][0]["id"] == "lin", text

    # ---- streaming: SSE chunks whose text adds up to the same output, then [DONE] ----
    st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 24, "temperature": 0, "stream": True,
                                              "stream_options": {"include_usage": True}}, stream=True)
    assert st == 200, text
    ev = sse_events(text)
    assert canon("".join(e["choices"][0]["text"] for e in ev if e["choices"])) == want
    assert [e["choices"][0]["finish_reason"] for e in ev if e["choices"]][-1] in ("length", "stop")
    assert ev[-1]["usage"]["completion_tokens"] == u["completion_tokens"], ev[-1]

    # ---- stop strings: the text ends before the first stop string, finish_reason stop ----
    stop = ascii_stop(want)
    st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 24, "temperature": 0, "stop": [stop]})
    c = json.loads(text)["choices"][0]
    assert canon(c["text"]) == want[:want.index(stop)] and c["finish_reason"] == "stop", (c, stop, want)

    # ---- echo + logprobs with max_tokens 0: what lm-eval's local-completions scores with ----
    st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[2], "max_tokens": 0, "echo": True, "logprobs": 1,
                                              "temperature": 0})
    c = json.loads(text)["choices"][0]
    lp = c["logprobs"]
    assert c["text"] == PROMPTS[2] and lp["token_logprobs"][0] is None, c
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) > 2 and all(x < 0 for x in lp["token_logprobs"][1:]), lp
    assert "".join(lp["tokens"]) == PROMPTS[2], lp["tokens"]

    # ---- chat with the checkpoint's template (curl and the openai client agree) ----
    msgs = [{"role": "user", "content": "the model"}]
    st, text = curl(base, "/v1/chat/completions", {"model": "lin", "messages": msgs, "max_tokens": 12, "temperature": 0})
    assert st == 200, text
    chat = json.loads(text)
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["role"] == "assistant", chat
    rendered = ("<|im_start|>system\nYou are a tiny test model<|im_end|>\n<|im_start|>user\nthe model<|im_end|>\n"
                "<|im_start|>assistant\n")
    assert canon(chat["choices"][0]["message"]["content"]) == generate(rendered, 12), chat
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)
    oc = client.chat.completions.create(model="lin", messages=msgs, max_tokens=12, temperature=0)
    assert oc.choices[0].message.content == chat["choices"][0]["message"]["content"], oc
    parts = [ch.choices[0].delta.content or "" for ch in
             client.chat.completions.create(model="lin", messages=msgs, max_tokens=12, temperature=0, stream=True)
             if ch.choices]
    assert canon("".join(parts)) == canon(oc.choices[0].message.content), parts

    # ---- 8 concurrent openai clients, each exactly its own greedy output; bad requests meanwhile get 400 ----
    lengths = [20 + 7 * i for i in range(8)]
    wants = [generate(pr, n) for pr, n in zip(PROMPTS, lengths)]
    got, errors = [None] * 8, []

    def client_run(i):
        try:
            cl = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)
            if i % 2:
                got[i] = "".join(ch.choices[0].text for ch in cl.completions.create(
                    model="lin", prompt=PROMPTS[i], max_tokens=lengths[i], temperature=0, stream=True) if ch.choices)
            else:
                got[i] = cl.completions.create(model="lin", prompt=PROMPTS[i], max_tokens=lengths[i],
                                               temperature=0).choices[0].text
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client_run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    check_error(*curl(base, "/v1/completions", raw="{not json"), 400)
    check_error(*curl(base, "/v1/completions", {"prompt": "x", "max_tokens": "many"}), 400, "max_tokens")
    check_error(*curl(base, "/v1/completions", {"prompt": "x", "temperature": [1]}), 400, "temperature")
    check_error(*curl(base, "/v1/completions", {"prompt": "word " * 400}), 400, "prompt")
    check_error(*curl(base, "/v1/completions", {"prompt": [1, 2, 10 ** 6]}), 400, "prompt")
    check_error(*curl(base, "/v1/chat/completions", {"messages": "hi"}), 400, "messages")
    check_error(*curl(base, "/v1/completions", {"prompt": "x" * 30000}), 413)
    check_error(*curl(base, "/v1/nothing", {"prompt": "x"}), 404)
    try:
        client.completions.create(model="lin", prompt="x", max_tokens=10 ** 7)
        raise AssertionError("max_tokens over the limit was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for i in range(8):
        assert canon(got[i]) == wants[i], (i, got[i], wants[i])
    st, metrics = curl(base, "/metrics")
    assert st == 200
    for name in ("linspec_requests_total", "linspec_tokens_per_second", "linspec_mean_accepted_tokens_per_step",
                 "linspec_queue_depth", "linspec_generated_tokens_total"):
        assert name in metrics, name
    batch = float(next(l.split()[1] for l in metrics.splitlines() if l.startswith("linspec_mean_batch_size ")))
    assert batch > 1.0, f"the concurrent clients never shared a decode step (mean batch {batch})"

    # ---- SIGTERM: the running stream finishes (all its tokens, [DONE]), new requests are refused, exit 0 ----
    out, started = {}, threading.Event()

    def long_stream():
        # Read the SSE stream ourselves so the signal goes out only once tokens are flowing.
        body = json.dumps({"prompt": PROMPTS[1], "max_tokens": 1000, "temperature": 0, "stream": True}).encode()
        req = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
        lines = []
        with urllib.request.urlopen(req, timeout=300) as r:
            out["status"] = r.status
            for line in r:
                lines.append(line.decode())
                if line.startswith(b"data: "):
                    started.set()
        out["text"] = "".join(lines)

    t = threading.Thread(target=long_stream)
    t.start()
    assert started.wait(timeout=120), "the stream did not start"
    p.send_signal(signal.SIGTERM)
    t.join(timeout=300)
    assert p.wait(timeout=120) == 0, f"server exited {p.returncode} after SIGTERM"
    ev = sse_events(out["text"])
    assert out["status"] == 200 and ev[-1]["choices"][0]["finish_reason"] in ("length", "stop"), out["text"][-300:]
    assert canon("".join(e["choices"][0]["text"] for e in ev)) == generate(PROMPTS[1], 1000)
    try:
        urllib.request.urlopen(base + "/health", timeout=2)
        raise AssertionError("the server still answers after draining")
    except OSError:
        pass

    # ---- API key: 401 without or with a wrong key (health stays open), 200 with it, the openai client too ----
    p, base = start("--api-key", "sekret")
    check_error(*curl(base, "/v1/completions", {"prompt": "x", "max_tokens": 2}), 401)
    check_error(*curl(base, "/v1/completions", {"prompt": "x", "max_tokens": 2}, key="wrong"), 401)
    check_error(*curl(base, "/v1/models"), 401)
    assert curl(base, "/health")[0] == 200
    assert curl(base, "/v1/completions", {"prompt": "x", "max_tokens": 2}, key="sekret")[0] == 200
    try:
        openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError:
        pass
    ok = openai.OpenAI(base_url=base + "/v1", api_key="sekret", max_retries=0)
    assert ok.completions.create(model="lin", prompt="x", max_tokens=3, temperature=0).usage.completion_tokens >= 1
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0

    # ---- a client that goes away stops its sequence: non-streamed (its reply would come only at the end), streamed
    # while still queued (no bytes written yet), streamed while tokens flow; the server keeps serving ----
    p, base = start("--max-batch", "1", "--max-tokens", "1000000")
    long = {"prompt": PROMPTS[0], "max_tokens": 1000000, "temperature": 0}  # minutes of tokens if nobody stops it
    a = open_request(base, long)
    wait_metric(base, "linspec_running_sequences", 1, "non-streamed request A")
    b = open_request(base, dict(long, stream=True))
    wait_metric(base, "linspec_queue_depth", 1, "streamed request B behind A")
    b.close()
    wait_metric(base, "linspec_cancelled_sequences_total", 1, "closing queued stream B")
    assert metric(base, "linspec_running_sequences") == 1, "A should still run"
    a.close()
    wait_metric(base, "linspec_cancelled_sequences_total", 2, "closing non-streamed A")
    wait_metric(base, "linspec_running_sequences", 0, "closing non-streamed A")
    c = open_request(base, dict(long, stream=True))
    assert c.recv(4096).startswith(b"HTTP/1.1 200"), "stream C did not start"
    c.close()
    wait_metric(base, "linspec_cancelled_sequences_total", 3, "closing flowing stream C")
    generated = metric(base, "linspec_generated_tokens_total")
    assert generated < 1000000, generated
    st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[2], "max_tokens": 8, "temperature": 0})
    assert st == 200 and canon(json.loads(text)["choices"][0]["text"]) == generate(PROMPTS[2], 8), text
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0

    # ---- speculative (an untrained 1-layer draft): greedy output still equals AR, token for token ----
    p, base = start("--speculative", "draft", "--draft", "first-layers:1", "--gamma", "3")
    for i in (0, 3):
        st, text = curl(base, "/v1/completions", {"prompt": PROMPTS[i], "max_tokens": 30, "temperature": 0})
        assert st == 200 and canon(json.loads(text)["choices"][0]["text"]) == generate(PROMPTS[i], 30), text
    st, metrics = curl(base, "/metrics")
    steps = float(next(l.split()[1] for l in metrics.splitlines() if l.startswith("linspec_steps_total ")))
    assert steps > 0, metrics
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    print("serve_client: all checks passed")


if __name__ == "__main__":
    try:
        main()
    finally:
        for s in SERVERS:
            if s.poll() is None:
                s.kill()
