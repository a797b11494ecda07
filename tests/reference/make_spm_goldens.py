#!/usr/bin/env python3
"""A tiny SentencePiece model with LLaMA-2's tokenizer settings (BPE, identity normalisation, byte
fallback, dummy prefix, whitespace kept) and its token ids for a few sample strings, from the PyPI
`sentencepiece` package: the reference for tests/unit/test_spm_tokenizer.cpp.

Trains on the reST sources of the Python tutorial (Debian python3.11-doc) and writes
  tests/reference/spm_tiny.model          (the model, ~10 KB)
  tests/reference/golden/spm_tiny.json    (per sample: text, ids without BOS, pieces)
Usage: python3 tests/reference/make_spm_goldens.py     Needs: pip install sentencepiece
"""
import io
import json
from pathlib import Path

import sentencepiece as spm

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests/reference/spm_tiny.model"
GOLDEN = REPO / "tests/reference/golden/spm_tiny.json"
TRAIN_DIR = Path("/usr/share/doc/python3.11/html/_sources/tutorial")

SAMPLES = [
    "Hello world! This is a tiny SentencePiece model.",
    "  leading spaces, double  spaces and a trailing space ",
    "Numbers: 3.14159, 1,000,000 and 2024-01-31.",
    "def f(x):\n    return x ** 2  # tabs\tand newlines\n",
    "Unicode: café naïve, 你好世界, مرحبا, emoji 😀👍🏽 (byte fallback).",
    "Literal <s> and </s> and <unk> are just text to SentencePiece.",
    "",
    " ",
    "The Python tutorial: classes, modules, exceptions and the standard library.",
]


def main() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(TRAIN_DIR.glob("*.txt")))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()), model_writer=model, vocab_size=600, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True, num_threads=1,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=100000, minloglevel=2)
    MODEL.write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    golden = {
        "generator": "tests/reference/make_spm_goldens.py",
        "reference": f"sentencepiece {spm.__version__}",
        "model": str(MODEL.relative_to(REPO)),
        "vocab_size": sp.get_piece_size(),
        "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
        "samples": [{"text": s, "ids": sp.encode(s), "pieces": sp.encode(s, out_type=str)} for s in SAMPLES],
    }
    for s in golden["samples"]:
        assert sp.decode(s["ids"]) == s["text"], s["text"]
    GOLDEN.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {MODEL.relative_to(REPO)} ({MODEL.stat().st_size} bytes) and {GOLDEN.relative_to(REPO)}")


if __name__ == "__main__":
    main()
