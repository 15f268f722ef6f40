#!/usr/bin/env bash
# The GPU figures in one run of about 12 minutes on one GPU: the fixed-shape step table (each paper
# config, float32 against PyTorch on the same GPU, and bfloat16) and the end-to-end loop benchmark on real
# genes (the project's trainer against the PyTorch loop with cuDNN's nn.LSTM, and the transformers).
#
#   launch/gpu_bench.sh OUT_DIR GENES [LOOP_MINUTES]
#
#   OUT_DIR       where the figures go: gpu_bench.log (everything printed), steps.json (one entry per
#                 step-table row), loop_<model>.json and loop_<model>.png (the loop benchmark), nvidia-smi.txt
#   GENES         a CSV or FASTA of genes (e.g. ../shared/data/human_genes/genes.csv)
#   LOOP_MINUTES  each library's training time in each loop benchmark (default 1.5)
#
# On a machine without internet, set WHEELS=DIR to a folder of wheels for what its Python lacks (made
# elsewhere with `pip download --no-deps --python-version X.Y --only-binary=:all: ...`, see BUILD.md);
# the project is then installed from there without an index. Workdirs go to a temporary folder; only
# the files above are kept. A step that fails is logged and the next one runs.
set -uo pipefail
OUT=${1:?usage: launch/gpu_bench.sh OUT_DIR GENES [LOOP_MINUTES]}
GENES=${2:?usage: launch/gpu_bench.sh OUT_DIR GENES [LOOP_MINUTES]}
MINUTES=${3:-1.5}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -f "$GENES" ] || { echo "gpu_bench.sh: no genes file at $GENES" >&2; exit 2; }
GENES=$(cd "$(dirname "$GENES")" && pwd)/$(basename "$GENES")
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/gpu_bench.log") 2>&1

if [ -n "${WHEELS:-}" ]; then  # offline: what the image lacks comes from the wheel folder
  $PY -m pip install -q --no-index --find-links "$WHEELS" --no-build-isolation -e . || exit 1
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
$PY -c "import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, \
'cuda' if torch.cuda.is_available() else 'NO CUDA')" || exit 1

date
echo "=== step table: batch 64 x 1024, JAX and PyTorch alternating"
for spec in "lstm configs/paper_lstm.py" "gru configs/paper_lstm.py --config.model.name=gru" \
            "transformer configs/paper_transformer.py"; do
  set -- $spec
  name=$1; cfg=$2; shift 2
  for dtype in float32 bfloat16; do
    echo "--- $name $dtype"
    torch_flag=--torch; [ $dtype = bfloat16 ] && torch_flag=--notorch  # the twins run float32 only
    $PY -m dnagen_jax.bench --config="$cfg" "$@" --config.model.dtype=$dtype --steps=10 --warmup=2 \
      --nopipeline $torch_flag --workdir="$WORK/step_${name}_$dtype" || echo "FAILED: step table $name $dtype"
  done
done
$PY - "$WORK" "$OUT/steps.json" <<'EOF'
import glob, json, os, sys
rows = {os.path.basename(os.path.dirname(p)): json.load(open(p))
        for p in sorted(glob.glob(os.path.join(sys.argv[1], "step_*", "bench.json")))}
json.dump(rows, open(sys.argv[2], "w"), indent=2)
print(f"steps.json: {len(rows)} rows")
EOF

date
echo "=== loop benchmark on $GENES: $MINUTES minutes each library, validation 5%, test 2%"
LOOP_DATA="--config.data.source=files --config.data.files=$GENES --config.data.val_fraction=0.05 \
--config.data.test_fraction=0.02"
for spec in "lstm configs/paper_lstm.py --config.model.hidden_dim=256 --config.model.num_layers=3 \
--config.model.position_embedding=False" "transformer configs/paper_transformer.py"; do
  set -- $spec
  name=$1; cfg=$2; shift 2
  echo "--- $name"
  $PY -m dnagen_jax.bench --loop --minutes="$MINUTES" --config="$cfg" "$@" $LOOP_DATA \
    --workdir="$WORK/loop_$name" || echo "FAILED: loop benchmark $name"
  cp "$WORK/loop_$name/loop.json" "$OUT/loop_$name.json" 2>/dev/null
  cp "$WORK/loop_$name/loop.png" "$OUT/loop_$name.png" 2>/dev/null
done
date
rm -rf "$WORK"
