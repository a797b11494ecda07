#!/usr/bin/env python3
"""The linearization study: every arm of arms.yaml trained with the same recipe (recipe.yaml: corpus, held-out split,
seed, batch, schedule, 1.02M training tokens), then measured the same way.

Usage (from the repository root, after ./launch/quickstart.sh has converted SmolLM2 and prepared the corpus):
  python3 bench/linearization/study.py [--arms aug,softmax,...] [--ranks 2] [--device cpu|cuda] [--work out/study]
                                       [--out bench/results/linearization] [--redo]
On a one-GPU machine: --ranks 1 --device cuda (the same 1024 tokens per step: micro-batch 4).
  python3 bench/linearization/study.py --speed          # decode speed and state of every arm, in one sitting
  python3 bench/linearization/study.py --table          # table.md, results.json and the plot from what is recorded

An arm takes ~75 min on 2 cores, so the study spans several sittings (and machines). Each finished arm is recorded in
<out>/arms/<arm>.json and skipped afterwards (--redo trains it again); an interrupted arm continues from its newest
snapshot in <work> (train --resume auto). Per arm it records
  - held-out perplexity over training (the trainer's validation passes, against training tokens of all stages),
  - final held-out perplexity (linspec eval --ppl --ctx 256 over 16K validation tokens) and its ratio to `softmax`,
    and the same with 1024- and 4096-token windows (past the training length),
  - draft-head tokens/step (3 self-distilled heads, 100 steps, 9-node tree): a property of the trained weights,
  - per-layer RMS of the local / global / conv branches (linspec verify) for linear arms.
Decode speed depends on the architecture, not on the trained values, and machines of this kind differ ~2x, so it is
measured apart: --speed linearizes the teacher into each arm's architecture and times decode at 1K and 32K context
(eval --context-sweep) for every arm in one sitting, with the state bytes per sequence -> <out>/speed.json.
Every run rewrites <out>/results.json, <out>/table.md and <out>/ppl_vs_tokens.png (gnuplot) from the recorded files.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKENS_PER_STEP = 1024  # recipe.yaml: 2 ranks x micro_batch 2 x seq_len 256 (other rank counts: micro_batch scaled)
SEQ_LEN = 256
STAGES = ("transfer", "finetune", "heads")
SWEEP = (1024, 32768)  # the speed pass's context lengths (--sweep)
LONG_CONTEXTS = (1024, 4096)  # held-out perplexity past the training length


def read_arms(path):
    """arms.yaml is a flat mapping `name: [key=value, ...]`; parsed without a YAML library (none is required)."""
    arms, name = {}, None
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith(" "):
            name, rest = line.split(":", 1)
            arms[name.strip()] = []
            if rest.strip() not in ("", "[]"):
                sys.exit(f"{path}: arm {name}: expected a list of key=value lines")
        elif line.strip().startswith("- ") and name:
            arms[name].append(line.strip()[2:].strip())
        else:
            sys.exit(f"{path}: cannot read line: {raw.rstrip()}")
    return arms


def run(cmd, log=None):
    print("+", " ".join(cmd), flush=True)
    with open(log, "a") if log else open(os.devnull, "w") as sink:
        subprocess.run(cmd, check=True, cwd=ROOT, stderr=sink if log else None)


def sitting():
    """Where and when a measurement was taken: results from different machines are compared only as ratios."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "commit": commit}


def curve(arm_dir):
    """(training tokens, val ppl) over the stages that shape the model (not the heads stage)."""
    points, offset = [], 0
    for stage in STAGES[:2]:
        path = os.path.join(arm_dir, stage, "metrics.jsonl")
        if not os.path.exists(path):
            continue
        last = 0
        for line in open(path, encoding="utf-8"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            tokens = offset + d.get("step", 0) * TOKENS_PER_STEP
            # A stage's step-0 pass measures the model the previous stage ended with: one point, not two.
            if "val_ppl" in d and not (points and points[-1][0] == tokens):
                points.append((tokens, d["val_ppl"]))
            last = max(last, d.get("step", 0))
        offset += last * TOKENS_PER_STEP
    return points, offset


def is_softmax(sets):
    return "model.attention.preset=softmax" in sets


def train_arm(name, sets, args):
    """Trains one arm (resumable), measures what its trained weights decide, and records <out>/arms/<name>.json."""
    arm_dir = os.path.join(args.work, name)
    os.makedirs(arm_dir, exist_ok=True)
    log = os.path.join(arm_dir, "train.log")
    base = [f"model.init={args.model}", f"data.path={args.data}", f"checkpoint.dir={arm_dir}"]
    if args.ranks != 2:  # the budget is tokens per step x steps whatever the rank count: the micro-batch makes it up
        base.append(f"train.micro_batch={TOKENS_PER_STEP // (args.ranks * SEQ_LEN)}")
    if args.device != "cpu":
        base.append(f"train.device={args.device}")
    train = ["bash", "launch/train.sh", "-n", str(args.ranks), "bench/linearization/recipe.yaml", "--resume", "auto"]
    for kv in base + sets:
        train += ["--set", kv]
    started = datetime.datetime.now()
    run(train, log)
    serve = os.path.join(arm_dir, "serve.h5")
    if not os.path.exists(serve):
        heads = os.path.join(arm_dir, "heads")
        run([args.linspec, "export", "--checkpoint", os.path.join(heads, open(os.path.join(heads, "latest")).read().strip()),
             "--out", serve], log)
    report = os.path.join(arm_dir, "eval.json")
    if not os.path.exists(report):
        run([args.linspec, "eval", "--checkpoint", serve, "--data", args.data, "--ppl", "--ctx", "256", "--max-tokens",
             "16384", "--speculative", "heads", "--tree", "configs/trees/cpu-3heads.json", "--prompts", "4",
             "--prompt-len", "48", "--new-tokens", "64", "--json", report], log)
    long_context = {f"ppl_ctx{ctx}": long_context_ppl(serve, arm_dir, args, ctx, log) for ctx in LONG_CONTEXTS}
    verify = os.path.join(arm_dir, "verify.json")
    if not os.path.exists(verify) and not is_softmax(sets):
        subprocess.run([args.linspec, "verify", "--checkpoint", serve, "--len", "256", "--json", verify], cwd=ROOT)
    points, tokens = curve(arm_dir)
    e = json.load(open(report))
    row = {"arm": name, "sets": sets, "training_tokens": tokens, "curve": points, "ppl": e["ppl"],
           "ppl_tokens": e.get("tokens"), "tokens_per_step": e["speculative"]["mean_accepted_tokens_per_step"],
           "identical_to_ar": e["speculative"].get("identical_to_ar"),
           "wall_minutes_this_sitting": round((datetime.datetime.now() - started).total_seconds() / 60, 1),
           "sitting": sitting(), **long_context}
    if os.path.exists(verify):
        row["branches"] = [{"layer": i, **l.get("branches", {})} for i, l in enumerate(json.load(open(verify)).get("layers", []))]
    write_json(os.path.join(args.out, "arms", name + ".json"), row)


def long_context_ppl(serve, arm_dir, args, ctx, log=None):
    """Held-out perplexity with ctx-token windows (LONG_CONTEXTS: 4x and 16x the 256-token sequences every arm
    trains on). An arm that only works at its training length shows it here (aug: 17.5 at 256, 324 at 1024)."""
    report = os.path.join(arm_dir, f"eval_ctx{ctx}.json")
    if not os.path.exists(report):
        run([args.linspec, "eval", "--checkpoint", serve, "--data", args.data, "--ppl", "--ctx", str(ctx),
             "--max-tokens", "16384", "--json", report], log)
    return json.load(open(report))["ppl"]


def linearize_args(sets):
    """The arm's architecture as `linspec linearize` options (training-only keys are left out)."""
    out, preset = [], "aug"
    for kv in sets:
        key, value = kv.split("=", 1)
        if key == "model.attention.preset":
            preset = value
        elif key.startswith("model.attention."):
            out += ["--set", f"{key[len('model.attention.'):]}={value}"]
        elif key == "model.keep_softmax_layers":
            out += ["--keep-softmax", value.strip("[]").replace(" ", "")]
    return ["--attention", preset] + out


def speed_pass(arms, args):
    """Decode tokens/s and state bytes at 1K and 32K context for every arm's architecture, in one sitting."""
    work = os.path.join(args.work, "speed")
    os.makedirs(work, exist_ok=True)
    rows, measured = {}, {}  # arms of one architecture (aug with or without transfer / kd) are timed once
    for name, sets in arms.items():
        arch = tuple(linearize_args(sets)) if not is_softmax(sets) else ("softmax",)
        if arch in measured:
            rows[name] = dict(rows[measured[arch]], same_architecture_as=measured[arch])
            continue
        measured[arch] = name
        model = args.model
        if not is_softmax(sets):
            model = os.path.join(work, name + ".h5")
            run([args.linspec, "linearize", "--in", args.model, "--out", model, "--force"] + linearize_args(sets))
        report = os.path.join(work, name + ".json")
        run([args.linspec, "eval", "--checkpoint", model, "--data", args.data, "--context-sweep",
             ",".join(map(str, args.sweep)), "--json", report])
        points = {p["context"]: p for p in json.load(open(report)).get("context_sweep", {}).get("points", [])}
        rows[name] = {f"tokens_per_s_{context_name(c)}": points.get(c, {}).get("decode_tokens_per_s") for c in args.sweep}
        rows[name].update({f"state_bytes_{context_name(c)}": points.get(c, {}).get("state_bytes") for c in args.sweep})
    write_json(os.path.join(args.out, "speed.json"), {"sitting": sitting(), "arms": rows})


def context_name(tokens):
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    json.dump(value, open(tmp, "w"), indent=1)
    os.replace(tmp, path)


def mib(x):
    return f"{x / 1048576:.1f}" if isinstance(x, (int, float)) else "-"


def num(x, fmt="{:.1f}"):
    return fmt.format(x) if isinstance(x, (int, float)) else "-"


def branch_shares(layers):
    """Per branch, its RMS as a share of the summed branch RMS, averaged over the early, middle and late third of
    the layers (verify's per-layer RMS of each λ-scaled branch; output_rms is the sum's own and is left out)."""
    names = sorted({k[:-4] for l in layers for k in l if k.endswith("_rms") and k != "output_rms"})
    thirds = [layers[i * len(layers) // 3:(i + 1) * len(layers) // 3] for i in range(3)]
    shares = {}
    for n in names:
        per_third = []
        for part in thirds:
            vals = [l.get(n + "_rms", 0.0) / t for l in part if (t := sum(l.get(m + "_rms", 0.0) for m in names)) > 0]
            per_third.append(sum(vals) / len(vals) if vals else None)
        shares[n] = per_third
    return shares


def branch_lines(rows):
    """table.md's branch section: what the local, global-linear and conv branches carry per arm, by depth."""
    rows = [r for r in rows if r.get("branches")]
    if not rows:
        return []
    lines = ["", "What each branch carries (RMS of each λ-scaled branch over the summed branch RMS, per layer, averaged "
             "over the first, middle and last third of the layers; the trained model on 256 tokens, `linspec verify`):", "",
             "| arm | branch | early | middle | late |", "|---|---|---|---|---|"]
    for r in rows:
        for name, per_third in branch_shares(r["branches"]).items():
            lines.append(f"| {r['arm']} | {name} | " + " | ".join(num(x, "{:.2f}") for x in per_third) + " |")
    return lines


def write_outputs(arms, out, command):
    """results.json, table.md and the plot from the recorded arms (file order) and speed.json."""
    rows = [json.load(open(p)) for a in arms if os.path.exists(p := os.path.join(out, "arms", a + ".json"))]
    if not rows:
        print(f"no arm recorded under {out}/arms yet")
        return
    speed_path = os.path.join(out, "speed.json")
    speed = json.load(open(speed_path)) if os.path.exists(speed_path) else {"arms": {}}
    ref = next((r["ppl"] for r in rows if r["arm"] == "softmax"), None)
    for r in rows:
        r["ppl_ratio_to_softmax"] = r["ppl"] / ref if ref else None
        r.update(speed["arms"].get(r["arm"], {}))
    write_json(os.path.join(out, "results.json"), {"command": command, "tokens_per_step": TOKENS_PER_STEP,
                                                    "speed_sitting": speed.get("sitting"), "arms": rows})
    missing = [a for a in arms if a not in {r["arm"] for r in rows}]
    lines = [f"# Linearization study (SmolLM2-135M, {rows[0]['training_tokens'] / 1e6:.2f}M training tokens per arm)", "",
             f"Reproduce: `{command}` (arms), then `python3 bench/linearization/study.py --speed` (speed columns).", "",
             "Perplexity: held-out split, ctx 256 (the training length), 16K tokens; and with 1024- and 4096-token "
             "windows (\"-\": recorded before that column). "
             "Tokens/step: 3 self-distilled draft heads, 9-node tree, "
             "greedy, bonus token counted. Speed: batch 1, the arm's architecture (speed does not depend on trained "
             f"values), one sitting: {json.dumps(speed.get('sitting'))}.", "",
             "| arm | held-out ppl | / softmax | ppl, 1K windows | ppl, 4K windows | draft tokens/step | tok/s @1K "
             "| tok/s @32K | state MiB @1K | state MiB @32K |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['ppl']:.2f} | {num(r['ppl_ratio_to_softmax'], '{:.3f}')} | "
                     f"{num(r.get('ppl_ctx1024'), '{:.4g}')} | {num(r.get('ppl_ctx4096'), '{:.4g}')} | "
                     f"{r['tokens_per_step']:.2f} | {num(r.get('tokens_per_s_1k'))} | {num(r.get('tokens_per_s_32k'))} | "
                     f"{mib(r.get('state_bytes_1k'))} | {mib(r.get('state_bytes_32k'))} |")
    lines += branch_lines(rows)
    if missing:
        lines += ["", f"Not yet trained: {', '.join(missing)}."]
    open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("gnuplot not found: no plot (launch/setup.sh installs gnuplot-nox)")
        return
    data = os.path.join(out, "curves.dat")
    with open(data, "w") as f:
        for r in rows:
            f.write(f'"{r["arm"]}"\n' + "".join(f"{t} {p}\n" for t, p in r["curve"] if math.isfinite(p)) + "\n\n")
    script = ["set terminal pngcairo size 1100,700 noenhanced", f'set output "{os.path.join(out, "ppl_vs_tokens.png")}"',
              'set title "held-out perplexity vs training tokens"', 'set xlabel "training tokens"',
              'set ylabel "validation perplexity"', "set logscale y", "set key outside right", "set grid",
              f'plot for [i=0:{len(rows) - 1}] "{data}" index i using 1:2 with linespoints lw 2 title columnheader(1)']
    subprocess.run([gnuplot], input="\n".join(script), text=True, check=True)
    os.remove(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="", help="comma-separated subset of arms.yaml (default: all, in file order)")
    ap.add_argument("--ranks", type=int, default=2, help="training ranks (1, 2 or 4: 1024 tokens per step either way)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="where the arms train (cuda: one rank per GPU, e.g. --ranks 1 on a one-GPU machine)")
    ap.add_argument("--work", default="out/study")
    ap.add_argument("--model", default="out/quickstart/smollm2.h5")
    ap.add_argument("--data", default="out/quickstart/corpus_tokens.h5")
    ap.add_argument("--out", default="bench/results/linearization")
    ap.add_argument("--linspec", default=os.path.join(ROOT, "build/bin/linspec"))
    ap.add_argument("--redo", action="store_true", help="train arms again even when recorded")
    ap.add_argument("--sweep", default=",".join(map(str, SWEEP)), help="speed pass: context lengths (default %(default)s)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--speed", action="store_true", help="only the speed pass (all chosen arms, one sitting)")
    mode.add_argument("--table", action="store_true", help="only rewrite the outputs from what is recorded")
    args = ap.parse_args()
    args.sweep = [int(c) for c in args.sweep.split(",") if c]
    if args.ranks < 1 or TOKENS_PER_STEP % (args.ranks * SEQ_LEN):
        sys.exit(f"--ranks {args.ranks}: {TOKENS_PER_STEP} tokens per step must split into whole sequences of "
                 f"{SEQ_LEN} per rank (1, 2 or 4 ranks)")
    arms = read_arms(os.path.join(HERE, "arms.yaml"))
    chosen = [a for a in args.arms.split(",") if a] or list(arms)
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        sys.exit(f"unknown arm(s) {', '.join(unknown)}; arms.yaml has: {', '.join(arms)}")
    os.environ.setdefault("LINSPEC_BIN", args.linspec)
    command = "python3 bench/linearization/study.py"
    if args.speed:
        speed_pass({a: arms[a] for a in chosen}, args)
    elif not args.table:
        for a in chosen:  # the outputs are rewritten after every arm, so an interrupted study keeps its finished arms
            recorded = os.path.join(args.out, "arms", a + ".json")
            if args.redo or not os.path.exists(recorded):
                train_arm(a, arms[a], args)
                write_outputs(list(arms), args.out, command)
            else:  # recorded before a long-context column existed: measured when the arm's checkpoint is at hand
                row = json.load(open(recorded))
                serve = os.path.join(args.work, a, "serve.h5")
                todo = [c for c in LONG_CONTEXTS if f"ppl_ctx{c}" not in row]
                if todo and os.path.exists(serve):
                    row.update({f"ppl_ctx{c}": long_context_ppl(serve, os.path.join(args.work, a), args, c) for c in todo})
                    write_json(recorded, row)
    write_outputs(list(arms), args.out, command)
    if os.path.exists(os.path.join(args.out, "table.md")):
        print(open(os.path.join(args.out, "table.md")).read())


if __name__ == "__main__":
    main()
