#!/usr/bin/env bash
# The GPU figures, offline, in parts of at most 8 minutes each (docs/accelerators.md).
#
#   launch/gpu_bench.sh prep            # where pip reaches an index: fill launch/wheels/ (git-ignored)
#   launch/gpu_bench.sh check           # on the GPU machine: what is there, what is missing; install
#                                       # the missing packages from launch/wheels/ into .gpu_site/
#   launch/gpu_bench.sh PART OUT_DIR    # one part (below), its JSON in OUT_DIR
#   launch/gpu_bench.sh all OUT_DIR     # check, then every part, one after another
#
# PARTS (each one process, under `timeout 480`): lstm_float32 lstm_bfloat16 gru_float32 gru_bfloat16
# transformer_float32 transformer_bfloat16 transformer_large_bfloat16 tests (the accelerator tests).
# Each timing part writes OUT_DIR/<part>.json (dnagen_jax/bench/accelerator.py: JAX and PyTorch
# train and score tokens/s on the same GPU, MFU, peak memory of both, the kernels the compiled
# step calls) and OUT_DIR/<part>.log. TF32 is set alike in JAX and PyTorch (TF32=0 for strict
# float32; DRY_RUN=1 for tiny sizes, to try the script on a CPU). Data: random ACGT batches made on the machine (speed does not depend on the values).
#
# The GPU machine is expected to have Python 3.12 with jax (CUDA), flax, optax, orbax-checkpoint,
# absl-py, numpy and torch (CUDA) installed, and no internet. This script never installs or
# upgrades any of those (never `pip install jax[cuda12]`): `check` only adds what is missing, from
# the wheels that `prep` downloaded, into a separate folder (.gpu_site) put on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WHEELS=$ROOT/launch/wheels
SITE=$ROOT/.gpu_site
PART_SECONDS=${PART_SECONDS:-480}
# What the project needs beyond the GPU image (../shared/docs/stack-notes.md), at tested versions.
NEEDED="tensorflow-datasets==4.9.10 grain==0.2.18 array-record==0.8.6 ml-collections==1.1.0 \
pydivsufsort tensorboardX importlib_resources"

prep() {
  # Python 3.12 manylinux x86-64 wheels of NEEDED and their requirements. promise (a requirement
  # of tensorflow-datasets) exists only as a source archive: built here into a pure-Python wheel.
  # numpy is the image's own; pyarrow (55 MB, a declared requirement of tensorflow-datasets that
  # this project's path never imports) is left out, which keeps the folder near 13 MB.
  mkdir -p "$WHEELS"
  $PY -m pip wheel -q --no-deps promise==2.3 -w "$WHEELS" || exit 1
  $PY -m pip download -q --find-links "$WHEELS" --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" $NEEDED || exit 1
  rm -f "$WHEELS"/numpy-*.whl "$WHEELS"/pyarrow-*.whl
  du -sh "$WHEELS"; ls "$WHEELS"
}

check() {
  # Never reinstalls: a wheel whose distribution is already installed is skipped.
  $PY - "$WHEELS" "$SITE" <<'EOF' || exit 1
import glob, importlib.metadata as md, os, re, subprocess, sys
wheels, site = sys.argv[1], sys.argv[2]
for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "torch"):
  try:
    print(f"{name} {md.version(name)}")
  except md.PackageNotFoundError:
    sys.exit(f"gpu_bench.sh: {name} is not installed; this script does not install it")
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {norm(d.metadata["Name"]) for d in md.distributions() if d.metadata["Name"]}
if os.path.isdir(site):  # installed by an earlier check
  have |= {norm(d.metadata["Name"]) for d in md.distributions(path=[site])}
todo = [w for w in sorted(glob.glob(os.path.join(wheels, "*.whl")))
        if norm(os.path.basename(w).split("-")[0]) not in have]
print("missing, installed from launch/wheels:", " ".join(os.path.basename(w) for w in todo) or "none")
if todo:
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                  "--no-compile", "--no-cache-dir", "--target", site, *todo], check=True)
EOF
  export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
  $PY -c "import jax, torch, tensorflow_datasets, grain, ml_collections; \
print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, \
'cuda' if torch.cuda.is_available() else 'NO CUDA')" || exit 1
}

part() {  # part NAME OUT
  local name=$1 out=$2 family dtype
  mkdir -p "$out"
  export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
  if [ "$name" = tests ]; then
    timeout "$PART_SECONDS" $PY -m pytest -q -m accelerator tests/test_accelerator.py \
      2>&1 | tee "$out/tests.log"
    return
  fi
  family=${name%_*}; dtype=${name##*_}
  local tf32=--tf32 dry=; [ "${TF32:-1}" = 0 ] && tf32=--notf32
  [ "${DRY_RUN:-0}" = 1 ] && dry=--dry_run  # tiny sizes: how the script is tested on a CPU
  timeout "$PART_SECONDS" $PY -m dnagen_jax.bench.accelerator --part="$family" --dtype="$dtype" \
    --out="$out" $tf32 $dry 2>&1 | tee "$out/$name.log"
  [ "${PIPESTATUS[0]}" = 0 ] || echo "FAILED or timed out: $name (see $out/$name.log)"
}

ALL="lstm_float32 lstm_bfloat16 gru_float32 gru_bfloat16 transformer_float32 transformer_bfloat16 \
transformer_large_bfloat16 tests"
case "${1:-}" in
  prep) prep ;;
  check) check ;;
  all)
    OUT=${2:?usage: launch/gpu_bench.sh all OUT_DIR}
    check || exit 1
    nvidia-smi > /dev/null 2>&1 && { mkdir -p "$OUT"; nvidia-smi > "$OUT/nvidia-smi.txt"; }
    for p in $ALL; do date; echo "=== $p"; part "$p" "$OUT"; done ;;
  "") sed -n '2,21p' "$0"; exit 2 ;;
  *)
    if [[ " $ALL " != *" $1 "* ]]; then
      echo "gpu_bench.sh: unknown mode or part '$1' (prep, check, all, a part: run without arguments for the list)" >&2
      exit 2
    fi
    part "$1" "${2:?usage: launch/gpu_bench.sh PART OUT_DIR}" ;;
esac
