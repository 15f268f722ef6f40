# Sourced by the sbatch scripts here: runs one srun step so that a warning
# signal or a preemption saves a checkpoint and the job comes back.
#
# SLURM sends SIGTERM to this batch shell alone (--signal=B:TERM@SECONDS before
# the time limit); the trap passes it to every task of the job's steps with
# `scancel --signal=TERM JOBID` (not to srun, which would end the step at
# once); the tasks agree on one step, save it together and exit with status
# 143. The job is then requeued (DNAGEN_REQUEUE=0 turns
# that off) and its next start resumes from that checkpoint. On a preemption
# SLURM itself signals every task and requeues the job (--requeue).

run_preemptible() {
  local status pid
  DNAGEN_TERM=""
  srun "$@" &
  pid=$!
  trap 'DNAGEN_TERM=1; echo "sbatch: SIGTERM: asking the tasks to save a checkpoint" >&2; scancel --signal=TERM "${SLURM_JOB_ID}"' TERM
  wait "$pid"; status=$?
  while [ -n "$DNAGEN_TERM" ] && kill -0 "$pid" 2>/dev/null; do  # the trap cut `wait` short
    wait "$pid"; status=$?
  done
  trap - TERM
  if [ "$status" -eq 143 ] && [ "${DNAGEN_REQUEUE:-1}" != 0 ]; then
    echo "sbatch: the tasks saved and stopped (status 143): requeueing job ${SLURM_JOB_ID}" >&2
    scontrol requeue "${SLURM_JOB_ID}"
  fi
  return "$status"
}
