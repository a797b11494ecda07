#!/usr/bin/env python3
"""Golden token ids of SmolLM2's tokenizer on the tokenizer test corpus, from an independent
implementation: HF `tokenizers`, built from the GGUF's tokenizer.ggml.* data (read with gguf-py) and
configured as SmolLM2's own tokenizer.json is: no normalizer, pre-tokenizer Sequence[Digits
(individual_digits), ByteLevel(add_prefix_space=False, use_regex=True)], BPE without unk/dropout, the
17 control tokens as special added tokens, no post-processor (tokenizer.ggml.add_bos_token is false).
(transformers' GGUF loader does not know the "smollm" pre-tokenizer, so the tokenizer is assembled here.)

Corpus (>= 1 MB): reST sources of the Debian package python3.11-doc (tutorial, howto, faq, reference,
whatsnew/3.11), some Python 3.11 standard-library modules, and tests/reference/tokenizer_unicode_sample.txt.

Writes tests/reference/golden/tokenizer_smollm2.json with, per file: path, bytes, text_xxh64, n_ids,
xxh64_of_ids (xxh64 of the ids as little-endian u32), block_xxh64 (the same per block of 1024 ids, to
locate a mismatch) and the first 64 ids.

Usage: python3 tests/reference/make_tokenizer_goldens.py            # write the golden file
       python3 tests/reference/make_tokenizer_goldens.py --compare FILE IDS.u32
           # first difference between HF's ids for FILE and ids dumped by the C++ test
Needs: apt python3.11-doc (launch/setup.sh); pip install gguf tokenizers xxhash
"""
import json
import os
import sys
from array import array
from pathlib import Path

import xxhash
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests/reference/golden/tokenizer_smollm2.json"
DOC_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
DOC_DIRS = ["tutorial", "howto", "faq", "reference"]
DOC_FILES = ["whatsnew/3.11.rst.txt"]
STDLIB = Path("/usr/lib/python3.11")
STDLIB_FILES = ["argparse.py", "dataclasses.py", "difflib.py", "fractions.py", "textwrap.py", "json/encoder.py"]
UNICODE_SAMPLE = "tests/reference/tokenizer_unicode_sample.txt"
BLOCK = 1024
CONTROL = 3


def default_gguf() -> Path:
    cache = Path(os.environ.get("LINSPEC_CACHE", Path.home() / ".cache" / "linspec"))
    return cache / "SmolLM2-135M-Instruct.Q4_1.gguf"


def read_gguf_tokenizer(path: Path) -> dict:
    """The tokenizer.ggml.* metadata, read with gguf-py (not linspec's reader)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    get = lambda key, default=None: fields[key].contents() if key in fields else default  # noqa: E731
    if get("tokenizer.ggml.model") != "gpt2":
        raise SystemExit(f"{path}: expected a byte-level BPE (tokenizer.ggml.model gpt2)")
    return {
        "type": "bpe",
        "vocab": list(get("tokenizer.ggml.tokens")),
        "merges": list(get("tokenizer.ggml.merges")),
        "token_types": [int(t) for t in get("tokenizer.ggml.token_type")],
        "add_bos": bool(get("tokenizer.ggml.add_bos_token", False)),
        "pre": get("tokenizer.ggml.pre", "default"),
    }


def corpus_paths() -> list[str]:
    paths = []
    for d in DOC_DIRS:
        paths += sorted(str(p) for p in (DOC_SOURCES / d).rglob("*.txt"))
    paths += [str(DOC_SOURCES / f) for f in DOC_FILES]
    paths += [str(STDLIB / f) for f in STDLIB_FILES]
    paths.append(UNICODE_SAMPLE)
    return paths


def resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def hf_tokenizer(data: dict) -> Tokenizer:
    if data["pre"] != "smollm" or data["add_bos"]:
        raise SystemExit(f"expected pre-tokenizer 'smollm' without BOS, got {data['pre']}, add_bos {data['add_bos']}")
    vocab = {}
    for i, t in enumerate(data["vocab"]):
        vocab.setdefault(t, i)
    merges = [tuple(m.split(" ")) for m in data["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None, fuse_unk=False,
                               byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [t for t, ty in zip(data["vocab"], data["token_types"]) if ty == CONTROL]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def u32_bytes(ids) -> bytes:
    a = array("I", ids)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def encode_file(tok: Tokenizer, path: str) -> tuple[bytes, list[int]]:
    raw = resolve(path).read_bytes()
    ids = tok.encode(raw.decode("utf-8"), add_special_tokens=True).ids
    assert tok.decode(ids, skip_special_tokens=False) == raw.decode("utf-8"), f"HF round trip fails on {path}"
    return raw, ids


def write_goldens(tok: Tokenizer) -> None:
    files, total_bytes, total_ids = [], 0, 0
    for path in corpus_paths():
        raw, ids = encode_file(tok, path)
        files.append({
            "path": path,
            "bytes": len(raw),
            "text_xxh64": xxhash.xxh64(raw).hexdigest(),
            "n_ids": len(ids),
            "xxh64_of_ids": xxhash.xxh64(u32_bytes(ids)).hexdigest(),
            "block_xxh64": [xxhash.xxh64(u32_bytes(ids[i:i + BLOCK])).hexdigest() for i in range(0, len(ids), BLOCK)],
            "first_ids": ids[:64],
        })
        total_bytes += len(raw)
        total_ids += len(ids)
    import tokenizers
    golden = {
        "generator": "tests/reference/make_tokenizer_goldens.py",
        "reference": f"HF tokenizers {tokenizers.__version__}",
        "model": default_gguf().name,
        "block_ids": BLOCK,
        "total_bytes": total_bytes,
        "total_ids": total_ids,
        "files": files,
    }
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    # One line per file keeps the file small and its diffs readable.
    head = json.dumps({k: v for k, v in golden.items() if k != "files"}, indent=1)[:-2]
    body = ",\n  ".join(json.dumps(f) for f in files)
    GOLDEN.write_text(f'{head},\n "files": [\n  {body}\n ]\n}}\n', encoding="utf-8")
    json.loads(GOLDEN.read_text(encoding="utf-8"))
    print(f"wrote {GOLDEN.relative_to(REPO)}: {len(files)} files, {total_bytes / 1e6:.2f} MB, {total_ids} ids")


def compare(tok: Tokenizer, path: str, ids_file: str) -> None:
    _, ref = encode_file(tok, path)
    ours = array("I")
    ours.frombytes(Path(ids_file).read_bytes())
    ours = list(ours)
    n = next((i for i, (a, b) in enumerate(zip(ref, ours)) if a != b), min(len(ref), len(ours)))
    if n == len(ref) == len(ours):
        print(f"identical: {n} ids")
        return
    lo, hi = max(0, n - 8), n + 8
    show = lambda ids: [(i, tok.id_to_token(i)) for i in ids]  # noqa: E731
    print(f"first difference at id {n} (HF {len(ref)} ids, ours {len(ours)})")
    print("HF  :", show(ref[lo:hi]))
    print("ours:", show(ours[lo:hi]))
    print("text:", repr(tok.decode(ref[lo:hi])))


def main() -> None:
    gguf = default_gguf()
    if not gguf.is_file():
        raise SystemExit(f"{gguf} is missing: run launch/setup.sh")
    if not DOC_SOURCES.is_dir():
        raise SystemExit(f"{DOC_SOURCES} is missing: run launch/setup.sh (Debian package python3.11-doc)")
    tok = hf_tokenizer(read_gguf_tokenizer(gguf))
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        compare(tok, sys.argv[2], sys.argv[3])
    else:
        write_goldens(tok)


if __name__ == "__main__":
    main()
