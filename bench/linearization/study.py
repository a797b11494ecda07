#!/usr/bin/env python3
"""The linearization study: every arm of arms.yaml trained with the same recipe (recipe.yaml: corpus, held-out split,
seed, batch, schedule, 1.02M training tokens), then measured the same way.

Usage (from the repository root, after ./launch/quickstart.sh has converted SmolLM2 and prepared the corpus):
  python3 bench/linearization/study.py [--arms aug,softmax,...] [--ranks 2] [--work out/study]
                                       [--out bench/results/linearization]
Resumable: an interrupted arm continues from its newest snapshot (train --resume auto), and measurements already on
disk (<work>/<arm>/eval.json, verify.json) are kept; run the same command again. Per arm it records
  - held-out perplexity over training (the trainer's validation passes, against training tokens of all stages),
  - final held-out perplexity (linspec eval --ppl --ctx 256 over 16K validation tokens) and its ratio to `softmax`,
  - draft-head tokens/step (3 self-distilled heads, 100 steps, 9-node tree) and decode tokens/s (AR and speculative),
  - decode tokens/s and state bytes per sequence at 1K and 32K context (eval --context-sweep),
  - per-layer RMS of the local / global / conv branches (linspec verify) for aug arms,
and writes <out>/results.json, <out>/table.md and <out>/ppl_vs_tokens.png (gnuplot).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKENS_PER_STEP = 1024  # recipe.yaml: 2 ranks x micro_batch 2 x seq_len 256
STAGES = ("transfer", "finetune", "heads")


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
            if "val_ppl" in d:
                points.append((offset + d["step"] * TOKENS_PER_STEP, d["val_ppl"]))
            last = max(last, d.get("step", 0))
        offset += last * TOKENS_PER_STEP
    return points, offset


def measure_arm(name, sets, args, linspec):
    arm_dir = os.path.join(args.work, name)
    os.makedirs(arm_dir, exist_ok=True)
    log = os.path.join(arm_dir, "train.log")
    base = [f"model.init={args.model}", f"data.path={args.data}", f"checkpoint.dir={arm_dir}"]
    train = ["bash", "launch/train.sh", "-n", str(args.ranks), "bench/linearization/recipe.yaml", "--resume", "auto"]
    for kv in base + sets:
        train += ["--set", kv]
    run(train, log)
    serve = os.path.join(arm_dir, "serve.h5")
    if not os.path.exists(serve):
        heads = os.path.join(arm_dir, "heads")
        run([linspec, "export", "--checkpoint", os.path.join(heads, open(os.path.join(heads, "latest")).read().strip()),
             "--out", serve], log)
    report = os.path.join(arm_dir, "eval.json")
    if not os.path.exists(report):
        run([linspec, "eval", "--checkpoint", serve, "--data", args.data, "--ppl", "--ctx", "256", "--max-tokens", "16384",
             "--decode", "--speculative", "heads", "--tree", "configs/trees/cpu-3heads.json", "--prompts", "4",
             "--prompt-len", "48", "--new-tokens", "64", "--context-sweep", "1024,32768", "--json", report], log)
    verify = os.path.join(arm_dir, "verify.json")
    if not os.path.exists(verify) and not any(s == "model.attention.preset=softmax" for s in sets):
        subprocess.run([linspec, "verify", "--checkpoint", serve, "--len", "256", "--json", verify], cwd=ROOT)
    points, tokens = curve(arm_dir)
    e = json.load(open(report))
    sweep = {p["context"]: p for p in e.get("context_sweep", {}).get("points", [])}
    row = {"arm": name, "sets": sets, "training_tokens": tokens, "curve": points, "ppl": e["ppl"],
           "ar_tokens_per_s": e["decode"]["decode_tokens_per_s"],
           "spec_tokens_per_s": e["speculative"]["decode_tokens_per_s"],
           "tokens_per_step": e["speculative"]["mean_accepted_tokens_per_step"],
           "tokens_per_s_1k": sweep.get(1024, {}).get("decode_tokens_per_s"),
           "tokens_per_s_32k": sweep.get(32768, {}).get("decode_tokens_per_s"),
           "state_bytes_1k": sweep.get(1024, {}).get("state_bytes"),
           "state_bytes_32k": sweep.get(32768, {}).get("state_bytes")}
    if os.path.exists(verify):
        row["branches"] = json.load(open(verify)).get("layers")
    return row


def mib(x):
    return f"{x / 1048576:.1f}" if isinstance(x, (int, float)) else "-"


def num(x, fmt="{:.1f}"):
    return fmt.format(x) if isinstance(x, (int, float)) else "-"


def write_outputs(rows, out, command):
    os.makedirs(out, exist_ok=True)
    ref = next((r["ppl"] for r in rows if r["arm"] == "softmax"), None)
    for r in rows:
        r["ppl_ratio_to_softmax"] = r["ppl"] / ref if ref else None
    json.dump({"command": command, "tokens_per_step": TOKENS_PER_STEP, "arms": rows}, open(os.path.join(out, "results.json"), "w"),
              indent=1)
    lines = [f"# Linearization study (SmolLM2-135M, {rows[0]['training_tokens'] / 1e6:.2f}M training tokens per arm)", "",
             f"Reproduce: `{command}`", "",
             "| arm | held-out ppl | / softmax | draft tokens/step | AR tok/s | spec tok/s | tok/s @1K | tok/s @32K "
             "| state MiB @1K | state MiB @32K |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['ppl']:.2f} | {num(r['ppl_ratio_to_softmax'], '{:.3f}')} | "
                     f"{r['tokens_per_step']:.2f} | {r['ar_tokens_per_s']:.1f} | {r['spec_tokens_per_s']:.1f} | "
                     f"{num(r['tokens_per_s_1k'])} | {num(r['tokens_per_s_32k'])} | {mib(r['state_bytes_1k'])} | "
                     f"{mib(r['state_bytes_32k'])} |")
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
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--work", default="out/study")
    ap.add_argument("--model", default="out/quickstart/smollm2.h5")
    ap.add_argument("--data", default="out/quickstart/corpus_tokens.h5")
    ap.add_argument("--out", default="bench/results/linearization")
    ap.add_argument("--linspec", default=os.path.join(ROOT, "build/bin/linspec"))
    args = ap.parse_args()
    arms = read_arms(os.path.join(HERE, "arms.yaml"))
    chosen = [a for a in args.arms.split(",") if a] or list(arms)
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        sys.exit(f"unknown arm(s) {', '.join(unknown)}; arms.yaml has: {', '.join(arms)}")
    os.environ.setdefault("LINSPEC_BIN", args.linspec)
    command = "python3 bench/linearization/study.py " + " ".join(sys.argv[1:])
    rows = []
    for a in chosen:  # the table is rewritten after every arm, so an interrupted study still leaves its finished arms
        rows.append(measure_arm(a, arms[a], args, args.linspec))
        write_outputs(rows, args.out, command)
    print(open(os.path.join(args.out, "table.md")).read())


if __name__ == "__main__":
    main()
