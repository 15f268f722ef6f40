#!/usr/bin/env bash
# dnagen_jax on a Cloud TPU VM or pod slice: the same command on every worker.
#
#   launch/tpu_vm.sh TPU_NAME ZONE [setup|train|stop] -- --config=configs/paper_lstm.py \
#     --workdir=/mnt/shared/runs/paper_lstm
#
#   setup  copies this checkout to every worker (gcloud ... scp --worker=all)
#          and installs it there with the TPU extra (pip install -e ".[tpu]")
#   train  starts `python -m dnagen_jax.main --distributed ARGS` on every
#          worker at once (gcloud ... ssh --worker=all --command=...); JAX
#          reads the slice's metadata to find process 0 and the process ids,
#          and the mesh spans every chip of every worker
#   stop   sends SIGTERM to the training process on every worker: they agree
#          on one step, save it and exit; `train` again resumes
#
# The workdir must be one folder every worker mounts at the same path (for
# example Filestore over NFS): Orbax writes one checkpoint from all workers and
# process 0 writes the rest with plain file writes (gs:// paths do not work). Preemptible
# (spot) slices send SIGTERM before they go, which saves the same way.
# Needs the gcloud CLI, logged in, with a TPU VM already created, e.g.
#   gcloud compute tpus tpu-vm create TPU_NAME --zone=ZONE \
#     --accelerator-type=v5litepod-16 --version=v2-alpha-tpuv5-lite
# Not run in this repository's tests (no TPU and no cloud access there).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 TPU_NAME ZONE setup|train|stop [-- MAIN_PY_ARGS...]" >&2
  exit 2
fi
TPU=$1 ZONE=$2 ACTION=$3
shift 3
[ "${1:-}" = "--" ] && shift
REMOTE_DIR=${DNAGEN_REMOTE_DIR:-dnagen_jax}
ssh_all() { gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="$1"; }

case "$ACTION" in
  setup)
    root=$(cd "$(dirname "$0")/.." && pwd)
    tar -C "$root" --exclude=.venv --exclude=.git --exclude=.jax_cache -czf /tmp/dnagen_jax.tgz .
    gcloud compute tpus tpu-vm scp /tmp/dnagen_jax.tgz "$TPU":/tmp/ --zone="$ZONE" --worker=all
    ssh_all "mkdir -p $REMOTE_DIR && tar -C $REMOTE_DIR -xzf /tmp/dnagen_jax.tgz && cd $REMOTE_DIR \
      && python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[tpu]'"
    ;;
  train)
    args=$(printf '%q ' "$@")
    # nohup: the job outlives the ssh session; each worker logs to its own file.
    ssh_all "cd $REMOTE_DIR && . .venv/bin/activate && nohup python -m dnagen_jax.main --distributed \
      $args > train-\$(hostname).log 2>&1 < /dev/null & echo \$! > train.pid; echo started on \$(hostname)"
    ;;
  stop)
    ssh_all "cd $REMOTE_DIR && kill -TERM \$(cat train.pid) && echo SIGTERM sent on \$(hostname)"
    ;;
  *)
    echo "error: unknown action $ACTION (setup, train or stop)" >&2
    exit 2
    ;;
esac
