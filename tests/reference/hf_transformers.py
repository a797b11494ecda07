#!/usr/bin/env python3
"""transformers as the independent implementation for `linspec export --hf-dir` directories: loads a directory with
AutoTokenizer + AutoModelForCausalLM exactly as a user would, and reports what they make of it, for
tests/integration/test_export_transformers.sh to compare with linspec.

  hf_transformers.py encode DIR TEXTS.json OUT.json
      TEXTS.json: a list of strings, or of {"path": FILE} (the file's text).
      OUT: per entry {"ids", "n_ids", "xxh64"}: tokenizer(text)["input_ids"], xxh64 of the ids as little-endian u32.
  hf_transformers.py generate DIR REQUESTS.json OUT.json
      REQUESTS.json: a list of {"prompt": TEXT} or {"messages": [...]} (rendered with the directory's chat template,
      add_generation_prompt), each with "max_new_tokens". Greedy model.generate with the directory's
      generation_config (its EOS stops it). OUT: per request {"prompt", "max_new_tokens", "prompt_ids", "ids"}.

Runs in the venv launch/setup.sh makes ($LINSPEC_CACHE/venv-hf, tests/reference/requirements-hf.txt).
"""
import json
import sys
from array import array


def load_texts(spec):
    # newline="": the file's bytes as they are (text mode would turn \r\n into \n)
    return [open(t["path"], encoding="utf-8", newline="").read() if isinstance(t, dict) else t for t in spec]


def encode(directory, texts_path, out_path):
    import xxhash
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory)
    tok.model_max_length = 1 << 30  # long files are encoded whole; no length warning
    out = []
    for text in load_texts(json.load(open(texts_path, encoding="utf-8"))):
        ids = tok(text)["input_ids"]
        out.append({"ids": ids, "n_ids": len(ids), "xxh64": xxhash.xxh64(array("I", ids).tobytes()).hexdigest()})
    json.dump({"tokenizer_class": type(tok).__name__, "results": out}, open(out_path, "w"))


def generate(directory, requests_path, out_path):
    import torch
    import transformers.generation.utils as generation_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Debian's torch 1.13 cannot import torch.distributed.fsdp under Python 3.11 (a dataclass default it declares is
    # refused), and generate() imports it only to ask whether the model is FSDP-wrapped, which it never is here.
    generation_utils.is_fsdp_managed_module = lambda module: False
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32)
    model.eval()
    out = []
    for r in json.load(open(requests_path, encoding="utf-8")):
        if "messages" in r:
            prompt = tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
        else:
            prompt = r["prompt"]
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            seq = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=r["max_new_tokens"], pad_token_id=tok.pad_token_id or 0)
        out.append({"prompt": prompt, "max_new_tokens": r["max_new_tokens"], "prompt_ids": ids[0].tolist(),
                    "ids": seq[0, ids.shape[1]:].tolist()})
    json.dump(out, open(out_path, "w"))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("encode", "generate"):
        sys.exit(__doc__)
    {"encode": encode, "generate": generate}[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
