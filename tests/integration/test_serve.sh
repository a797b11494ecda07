#!/usr/bin/env bash
# `linspec serve` end to end on the tiny random LLaMA linearized to aug, driven with curl and with the official openai
# Python client (launch/setup.sh installs it into $LINSPEC_CACHE/venv-serve): completions and chat equal to
# `linspec generate`, streaming (SSE ending in [DONE]), stop strings, echo logprobs, 8 concurrent clients each getting
# exactly its own greedy output while bad requests get 400, API key on/off, speculative (draft) output equal to AR,
# SIGTERM draining a running stream then exit 0, clients that disconnect (non-streamed, queued stream, flowing stream)
# stopping their sequences, and a chat template linspec cannot render refused at startup (exit 2).
# Usage: test_serve.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$1" "$2"
export OMP_NUM_THREADS=2
PY="${LINSPEC_CACHE:-$HOME/.cache/linspec}/venv-serve/bin/python"
[[ -x $PY ]] && "$PY" -c "import openai" 2>/dev/null || fail "the openai client is missing: run launch/setup.sh"
command -v curl >/dev/null || fail "curl is missing"

# The tiny tokenizer gets SmolLM2's ChatML template (its default system message included), converted again so the
# checkpoint carries it; a Llama-3 style template goes into a second checkpoint that serve must refuse.
python3 - hf/tokenizer_config.json <<'PY'
import json, sys
p = sys.argv[1]
cfg = json.load(open(p))
cfg["chat_template"] = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] "
    "+ '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}")
json.dump(cfg, open(p, "w"))
PY
"$LINSPEC" convert --from hf --out chat.h5 2>/dev/null
"$LINSPEC" linearize --in chat.h5 --attention aug --set group_size=8 --set conv_taps=4 --out lin.h5 2>/dev/null
python3 - hf/tokenizer_config.json <<'PY'
import json, sys
p = sys.argv[1]
cfg = json.load(open(p))
cfg["chat_template"] = "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>' }}{% endfor %}"
json.dump(cfg, open(p, "w"))
PY
"$LINSPEC" convert --from hf --out llama3.h5 2>/dev/null

set +e
timeout 60 "$LINSPEC" serve --checkpoint llama3.h5 --port 0 >/dev/null 2>refused.log
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "serve with an unrenderable chat template exited $rc, expected 2: $(cat refused.log)"
grep -q "chat template" refused.log || fail "the refusal does not name the chat template: $(cat refused.log)"

# A speculative batch limit that is neither auto nor a count: refused at startup, naming the flag.
set +e
timeout 60 "$LINSPEC" serve --checkpoint lin.h5 --port 0 --speculative heads --speculative-max-batch many \
  >/dev/null 2>limit.log
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "serve --speculative-max-batch many exited $rc, expected 2: $(cat limit.log)"
grep -q -- "--speculative-max-batch" limit.log || fail "the refusal does not name the flag: $(cat limit.log)"

"$PY" "$SRC/tests/integration/serve_client.py" "$LINSPEC" lin.h5 || fail "serve_client.py failed"
echo "test_serve: OK"
