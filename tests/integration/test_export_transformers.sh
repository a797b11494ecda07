#!/usr/bin/env bash
# `linspec export --hf-dir` read by transformers (AutoTokenizer + AutoModelForCausalLM, tests/reference/hf_transformers.py
# in the venv launch/setup.sh makes from tests/reference/requirements-hf.txt):
#  1. the tiny random LLaMA (tiny_hf_model.py), as converted and with add_bos_token (a BOS post-processor): transformers'
#     token ids equal those of the source tokenizer.json (HF tokenizers) on the corpus and a Unicode sample, and
#     linspec's on short texts (specials, digits, spaces, emoji); greedy generate gives linspec generate's ids; the same
#     with a SentencePiece tokenizer (tests/reference/spm_tiny.model: tokenizer.model, LlamaTokenizer);
#  2. SmolLM2-135M-Instruct converted from its GGUF: the exported tokenizer encodes the tokenizer golden corpus
#     (tests/reference/golden/tokenizer_smollm2.json, HF tokenizers on the GGUF's vocabulary) to the golden ids; the
#     chat template and the special tokens are the GGUF's (read with gguf-py); chat and plain prompts rendered by
#     transformers' apply_chat_template greedy-generate linspec's tokens, EOS stop included.
# Usage: test_export_transformers.sh LINSPEC_BINARY SOURCE_DIR   (SmolLM2: $LINSPEC_SMOLLM2_GGUF)
source "$(dirname "$0")/tiny_model_common.sh" "$1" "$2"
export OMP_NUM_THREADS=2
PY="${LINSPEC_CACHE:-$HOME/.cache/linspec}/venv-hf/bin/python"
REF="$SRC/tests/reference/hf_transformers.py"
GGUF=${LINSPEC_SMOLLM2_GGUF:-${LINSPEC_CACHE:-$HOME/.cache/linspec}/SmolLM2-135M-Instruct.Q4_1.gguf}
"$PY" -c "import transformers, torch, gguf, xxhash" 2>/dev/null || fail "the transformers venv $PY is missing: run launch/setup.sh"
[[ -f $GGUF ]] || fail "SmolLM2 GGUF not found at $GGUF (run launch/setup.sh or set LINSPEC_SMOLLM2_GGUF)"

# linspec_ids CHECKPOINT REQUESTS.json OUT.json: `linspec generate --json` for each {"prompt", "max_new_tokens"} (argv
# carries the prompt byte for byte; a shell $(...) would drop its trailing newlines).
linspec_ids() {
  python3 - "$LINSPEC" "$@" <<'PY'
import json, subprocess, sys
linspec, ckpt, reqs, out = sys.argv[1:]
res = []
for i, r in enumerate(json.load(open(reqs))):
    subprocess.run([linspec, "generate", "--checkpoint", ckpt, "--prompt", r["prompt"], "--max-new",
                    str(r["max_new_tokens"]), "--json", f"ids{i}.json"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    res.append(json.load(open(f"ids{i}.json")))
json.dump(res, open(out, "w"))
PY
}
# same_ids WHAT HF.json LINSPEC.json: prompt ids and generated ids equal, request by request.
same_ids() {
  python3 - "$@" <<'PY'
import json, sys
what, hf, ls = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
assert len(hf) == len(ls)
for i, (h, l) in enumerate(zip(hf, ls)):
    for key in ("prompt_ids", "ids"):
        if h[key] != l[key]:
            at = next((j for j, (a, b) in enumerate(zip(h[key], l[key])) if a != b), min(len(h[key]), len(l[key])))
            sys.exit(f"FAIL: {what} request {i} ({h['prompt'][:40]!r}): {key} differ at {at}: transformers "
                     f"{h[key][at:at + 6]} (of {len(h[key])}), linspec {l[key][at:at + 6]} (of {len(l[key])})")
n = sum(len(h["ids"]) for h in hf)
if n == 0: sys.exit(f"FAIL: {what}: nothing generated, the comparison is empty")
print(f"ok: {what}: {len(hf)} prompts, {n} greedy tokens, transformers == linspec")
PY
}

# ---- 1. tiny model ----
python3 - hf/tokenizer_config.json bos_hf <<'PY'
import json, os, shutil, sys
shutil.copytree("hf", sys.argv[2])
cfg = json.load(open(sys.argv[1]))
cfg["add_bos_token"] = True
json.dump(cfg, open(os.path.join(sys.argv[2], "tokenizer_config.json"), "w"))
PY
"$LINSPEC" convert --from bos_hf --out bos.h5 2>/dev/null
for m in tiny bos; do
  "$LINSPEC" export --checkpoint $m.h5 --hf-dir ${m}_export 2> export.log || fail "export $m: $(cat export.log)"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json \
           generation_config.json; do
    [[ -s ${m}_export/$f ]] || fail "export --hf-dir $m.h5 wrote no $f"
  done
done
python3 - "$SRC" <<'PY'
import json, sys
texts = ["the model reads a line", "  leading and  double spaces ", "digits 1234567 and 3.14159",
         "<|endoftext|>special<|endoftext|> inside", "tabs\tand\nnewlines\n\n", "Unicode: café naïve 你好 😀👍🏽",
         "It's they'll we've I'M", "x"]
texts += [l for l in open("corpus.txt").read().split(". ")[:6]]
json.dump(texts, open("texts.json", "w"))
json.dump([{"path": "corpus.txt"}, {"path": sys.argv[1] + "/tests/reference/tokenizer_unicode_sample.txt"}],
          open("files.json", "w"))
json.dump([{"prompt": t, "max_new_tokens": 0} for t in texts], open("encode_reqs.json", "w"))
json.dump([{"prompt": p, "max_new_tokens": 24} for p in
           ["the model reads", "Which token comes after", "training can learn", "A"]], open("gen_reqs.json", "w"))
PY
for m in tiny bos; do
  "$PY" "$REF" encode ${m}_export files.json hf_files_$m.json || fail "transformers encode ($m)"
  "$PY" "$REF" encode ${m}_export texts.json hf_texts_$m.json || fail "transformers encode ($m)"
  linspec_ids $m.h5 encode_reqs.json ls_texts_$m.json
  "$PY" "$REF" generate ${m}_export gen_reqs.json hf_gen_$m.json 2>/dev/null || fail "transformers generate ($m)"
  linspec_ids $m.h5 gen_reqs.json ls_gen_$m.json
  same_ids "tiny ($m) greedy generate" hf_gen_$m.json ls_gen_$m.json
done
"$PY" - "$SRC" <<'PY'
import json, sys
from tokenizers import Tokenizer
src = Tokenizer.from_file("hf/tokenizer.json")  # the source model's own file, read by HF tokenizers
files = [json.load(open(f"hf_files_{m}.json")) for m in ("tiny", "bos")]
for i, spec in enumerate(json.load(open("files.json"))):
    want = src.encode(open(spec["path"], encoding="utf-8", newline="").read()).ids
    got, got_bos = files[0]["results"][i]["ids"], files[1]["results"][i]["ids"]
    if got != want: sys.exit(f"FAIL: {spec['path']}: exported tokenizer {len(got)} ids != source tokenizer.json {len(want)}")
    if got_bos != [265] + want: sys.exit(f"FAIL: {spec['path']}: add_bos_token export does not prepend BOS once")
    print(f"ok: {spec['path'].split('/')[-1]}: {len(want)} ids equal to the source tokenizer.json's (and BOS + them)")
texts = json.load(open("texts.json"))
for m in ("tiny", "bos"):
    hf, ls = json.load(open(f"hf_texts_{m}.json"))["results"], json.load(open(f"ls_texts_{m}.json"))
    for t, h, l in zip(texts, hf, ls):
        if h["ids"] != l["prompt_ids"]: sys.exit(f"FAIL: ({m}) {t!r}: transformers {h['ids']} != linspec {l['prompt_ids']}")
    print(f"ok: ({m}) {len(texts)} texts: transformers ids == linspec ids ({files[0]['tokenizer_class']})")
PY

# ---- 1b. the tiny model with a SentencePiece tokenizer (tests/reference/spm_tiny.model, BOS added) ----
python3 "$SRC/tests/integration/tiny_hf_model.py" spm_hf spm_corpus.txt --spm "$SRC/tests/reference/spm_tiny.model"
"$LINSPEC" convert --from spm_hf --out spm.h5 2>/dev/null
"$LINSPEC" export --checkpoint spm.h5 --hf-dir spm_export 2> export.log || fail "export spm: $(cat export.log)"
cmp -s spm_hf/tokenizer.model spm_export/tokenizer.model || fail "the exported tokenizer.model is not the source's"
python3 - "$SRC" <<'PY'
import json, sys
golden = json.load(open(sys.argv[1] + "/tests/reference/golden/spm_tiny.json"))["samples"]
texts = [s["text"] for s in golden if s["text"]] + json.load(open("texts.json"))
json.dump(texts, open("spm_texts.json", "w"))
json.dump([{"prompt": t, "max_new_tokens": 0} for t in texts], open("spm_encode_reqs.json", "w"))
PY
"$PY" "$REF" encode spm_export spm_texts.json hf_spm_texts.json || fail "transformers encode (spm)"
linspec_ids spm.h5 spm_encode_reqs.json ls_spm_texts.json
python3 - "$SRC" <<'PY'
import json, sys
golden = {s["text"]: s["ids"] for s in json.load(open(sys.argv[1] + "/tests/reference/golden/spm_tiny.json"))["samples"]}
hf, ls = json.load(open("hf_spm_texts.json")), json.load(open("ls_spm_texts.json"))
for t, h, l in zip(json.load(open("spm_texts.json")), hf["results"], ls):
    if h["ids"] != l["prompt_ids"]: sys.exit(f"FAIL: (spm) {t!r}: transformers {h['ids']} != linspec {l['prompt_ids']}")
    # sentencepiece's own ids (the golden) with BOS, where the text holds no special token text
    if t in golden and "<" not in t and h["ids"] != [1] + golden[t]: sys.exit(f"FAIL: (spm) {t!r}: not BOS + golden")
print(f"ok: (spm) {len(ls)} texts: transformers ids == linspec ids ({hf['tokenizer_class']}), BOS + sentencepiece's")
PY
"$PY" "$REF" generate spm_export gen_reqs.json hf_gen_spm.json 2>/dev/null || fail "transformers generate (spm)"
linspec_ids spm.h5 gen_reqs.json ls_gen_spm.json
same_ids "tiny (SentencePiece) greedy generate" hf_gen_spm.json ls_gen_spm.json

# ---- 2. SmolLM2-135M-Instruct ----
"$LINSPEC" convert --from "$GGUF" --out smollm2.h5 2>/dev/null
"$LINSPEC" export --checkpoint smollm2.h5 --hf-dir smollm2_hf 2> export.log || fail "export SmolLM2: $(cat export.log)"
"$PY" - "$GGUF" "$SRC" <<'PY'
import json, os, sys
import xxhash
from array import array
from gguf import GGUFReader
gguf_path, src = sys.argv[1:]
r = GGUFReader(gguf_path)
field = lambda key: r.fields[key].contents()
cfg = json.load(open("smollm2_hf/tokenizer_config.json"))
vocab = field("tokenizer.ggml.tokens")
for key, gkey in (("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id")):
    want = vocab[field(gkey)]
    if cfg[key] != want: sys.exit(f"FAIL: tokenizer_config.json {key} {cfg[key]!r}, GGUF {want!r}")
if cfg.get("chat_template") != field("tokenizer.chat_template"):
    sys.exit("FAIL: tokenizer_config.json chat_template is not the GGUF's tokenizer.chat_template")
golden = json.load(open(os.path.join(src, "tests/reference/golden/tokenizer_smollm2.json")))
specs = []
for f in golden["files"]:
    path = f["path"] if os.path.isabs(f["path"]) else os.path.join(src, f["path"])
    data = open(path, "rb").read()
    if xxhash.xxh64(data).hexdigest() != f["text_xxh64"]: sys.exit(f"FAIL: {path} changed since the golden was made")
    specs.append({"path": path})
json.dump(specs, open("golden_files.json", "w"))
print(f"ok: SmolLM2 export: bos/eos and the chat template are the GGUF's; {len(specs)} golden corpus files present")
PY
"$PY" "$REF" encode smollm2_hf golden_files.json hf_golden.json || fail "transformers encode (SmolLM2)"
python3 - "$SRC" <<'PY'
import json, os, sys
golden = json.load(open(os.path.join(sys.argv[1], "tests/reference/golden/tokenizer_smollm2.json")))["files"]
got = json.load(open("hf_golden.json"))["results"]
for g, h in zip(golden, got):
    if (h["n_ids"], h["xxh64"]) != (g["n_ids"], g["xxh64_of_ids"]):
        sys.exit(f"FAIL: {g['path']}: exported tokenizer gives {h['n_ids']} ids (xxh64 {h['xxh64']}), golden "
                 f"{g['n_ids']} ({g['xxh64_of_ids']}); first ids {h['ids'][:12]} vs {g['first_ids'][:12]}")
print(f"ok: SmolLM2 exported tokenizer: {sum(g['n_ids'] for g in golden)} ids over {len(golden)} files equal the golden")
PY
cat > sm_reqs.json <<'JSON'
[{"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_new_tokens": 24},
 {"messages": [{"role": "system", "content": "You answer in one short sentence."},
               {"role": "user", "content": "Why is the sky blue?"}], "max_new_tokens": 20},
 {"prompt": "The Python tutorial explains how", "max_new_tokens": 16}]
JSON
"$PY" "$REF" generate smollm2_hf sm_reqs.json hf_sm.json 2>/dev/null || fail "transformers generate (SmolLM2)"
linspec_ids smollm2.h5 hf_sm.json ls_sm.json
same_ids "SmolLM2 greedy generate (chat template rendered by transformers)" hf_sm.json ls_sm.json
python3 -c "
import json, sys
hf = json.load(open('hf_sm.json'))
if hf[0]['ids'][-1] != 2: sys.exit(f'FAIL: the chat answer did not end at EOS <|im_end|>: {hf[0][\"ids\"]}')
if '<|im_start|>assistant' not in hf[0]['prompt']: sys.exit('FAIL: the chat template was not applied')"
echo "PASS: test_export_transformers"
