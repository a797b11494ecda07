#!/usr/bin/env python3
"""Perplexity golden for `linspec eval --ppl` on the real SmolLM2-135M-Instruct, from independent implementations:
HF `tokenizers` (the tokenizer rebuilt from the GGUF, as in make_tokenizer_goldens.py) and HF transformers'
LlamaForCausalLM on gguf-py's dequantised weights (as in make_llama_goldens.py).

Protocol (the one eval documents): the file is tokenized as one document (SmolLM2 adds no BOS); windows of CTX tokens,
non-overlapping; every token but the first of each window is scored; ppl = exp(mean NLL). Only the first MAX_TOKENS
tokens are used so the test stays fast.

    /usr/bin/python3 tests/reference/make_ppl_golden.py   (needs the tf4 dir described in make_llama_goldens.py)
The tokenization step runs in the `python3` on PATH (new gguf + tokenizers, as make_tokenizer_goldens.py needs); the
model runs in Debian's python3 with torch 1.13 and transformers 4.44.
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if sys.argv[1:2] != ["--tokenize"]:
    sys.path.insert(0, os.environ.get("LINSPEC_TF4", "/root/.cache/linspec/tf4"))

import subprocess  # noqa: E402

TEXT = "/usr/share/doc/python3.11/html/_sources/tutorial/interpreter.rst.txt"
CTX = 128
MAX_TOKENS = 640


def tokenize(gguf_path):
    import make_tokenizer_goldens as tokgold
    tok = tokgold.hf_tokenizer(tokgold.read_gguf_tokenizer(gguf_path))
    with open(TEXT, "rb") as f:
        text = f.read().decode("utf-8")
    print(json.dumps(tok.encode(text).ids))


def main():
    gguf_path = os.environ.get("LINSPEC_SMOLLM2_GGUF", "/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf")
    if sys.argv[1:2] == ["--tokenize"]:
        return tokenize(gguf_path)
    env = dict(os.environ, PYTHONPATH="")
    ids = json.loads(subprocess.run(["python3", os.path.abspath(__file__), "--tokenize"], env=env, check=True,
                                    capture_output=True, text=True).stdout)
    import torch
    import make_llama_goldens as llama
    total = len(ids)
    ids = ids[:MAX_TOKENS]
    model = llama.load_smollm2(gguf_path)
    torch.set_num_threads(2)
    nll, scored = 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(ids), CTX):
            window = ids[begin:begin + CTX]
            if len(window) < 2:
                break
            logits = model(input_ids=torch.tensor([window[:-1]])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            target = torch.tensor(window[1:])
            nll += float(-logp[torch.arange(len(target)), target].sum())
            scored += len(target)
    out = {"source": "HF tokenizers (rebuilt from the GGUF) + transformers %s LlamaForCausalLM float32 on gguf-py "
                     "dequantised weights" % __import__("transformers").__version__,
           "text": TEXT, "text_tokens": total, "ctx": CTX, "max_tokens": MAX_TOKENS, "scored_tokens": scored,
           "ppl": math.exp(nll / scored), "first_ids": ids[:16]}
    with open(os.path.join(HERE, "golden", "smollm2_ppl.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
