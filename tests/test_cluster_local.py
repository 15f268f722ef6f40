"""launch/local.py, 2 processes x 2 CPU devices: preemption, a dead peer, who writes.

Every run is compared with one uninterrupted process of 4 devices on the same
tiny config (tests/cluster_runs.py): the same training loss at every step and
the same final parameters.
"""

import os
import re
import shutil
import signal
import sys
import textwrap
import time

import pytest

from tests import cluster_runs

# Records every Python open() for writing under $AUDIT_WORKDIR, with the
# --process_id of the process, into $AUDIT_LOG (one line per open).
AUDIT_HOOK = textwrap.dedent("""
  import os, sys
  _workdir, _log = os.environ.get("AUDIT_WORKDIR"), os.environ.get("AUDIT_LOG")
  _id = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--process_id=")), "single")
  def _hook(event, args):
    if event != "open" or not _workdir or not isinstance(args[0], str):
      return
    mode = args[1] if isinstance(args[1], str) else ""
    path = os.path.abspath(args[0])
    if any(c in mode for c in "wax+") and path.startswith(_workdir + os.sep):
      with open(_log, "a") as f:
        f.write(f"{_id} {os.path.relpath(path, _workdir)}\\n")
  sys.addaudithook(_hook)
""")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Workdir of one uninterrupted process with 4 devices."""
  return cluster_runs.reference_workdir(tmp_path_factory)


def _audited_env(tmp_path, workdir: str) -> dict:
  hook_dir = tmp_path / "hook"
  hook_dir.mkdir(exist_ok=True)
  (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
  env = dict(os.environ, AUDIT_WORKDIR=os.path.abspath(workdir), AUDIT_LOG=str(tmp_path / "audit.log"))
  # launch/local.py puts the project first and keeps this path for its processes.
  env["PYTHONPATH"] = str(hook_dir)
  return env


@pytest.mark.slow  # about 56 s on 2 cores (the default suite keeps its 10 minutes); -m slow runs it
def test_sigterm_to_one_process_or_ctrl_c_stops_both_at_one_step_and_resumes(
    tmp_path, tmp_path_factory, reference):
  workdir, data_dir = str(tmp_path / "run"), cluster_runs.shared_data_dir(tmp_path_factory)
  command = cluster_runs.local_command(2, 2, cluster_runs.tiny_flags(workdir, data_dir))
  env = _audited_env(tmp_path, workdir)
  proc = cluster_runs.start(command, env)
  lines = cluster_runs.wait_for_line(proc, r"^step 3/")
  os.kill(cluster_runs.child_pids(lines)[1], signal.SIGTERM)  # process 1 only
  code, out = cluster_runs.finish(proc)
  assert code == 128 + signal.SIGTERM, out[-3000:]
  stops = re.findall(r"process (\d) of 2: interrupted by signal 15 at step (\d+)", out)
  assert sorted(p for p, _ in stops) == ["0", "1"], out[-3000:]
  step = int(stops[0][1])
  assert stops[1][1] == str(step) and 3 <= step < cluster_runs.STEPS
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(step)))

  # Ctrl-C to the launcher: it passes SIGTERM to both, which stop at one later step.
  proc = cluster_runs.start(command, env)
  lines = cluster_runs.wait_for_line(proc, rf"^step {step + 5}/")
  proc.send_signal(signal.SIGINT)
  code, out = cluster_runs.finish(proc)
  out = "".join(lines) + out
  assert code == 128 + signal.SIGTERM, out[-3000:]
  assert f"resuming from step {step}" in out
  later = re.findall(r"process (\d) of 2: interrupted by signal 15 at step (\d+)", out)
  assert len(later) == 2 and later[0][1] == later[1][1] and int(later[0][1]) > step, out[-3000:]

  out = cluster_runs.run(command, env)
  assert f"resuming from step {later[0][1]}" in out
  cluster_runs.assert_same_run(workdir, reference)

  # Only process 0 wrote the run's files, and it wrote each of them.
  writes = open(tmp_path / "audit.log").read().split("\n")
  writers = {}
  for line in filter(None, writes):
    who, path = line.split(" ", 1)
    writers.setdefault(path, set()).add(who)
  for name in ("config.json.tmp", "metrics.jsonl", "results.json"):
    assert writers.get(name) == {"0"}, writers


@pytest.mark.slow  # 35-45 s of the default suite's 10 minutes; -m slow (and -m faults' kill -9 cases) run it
def test_kill_9_of_one_process_ends_the_other_and_relaunch_resumes(
    tmp_path, tmp_path_factory, reference):
  workdir, data_dir = str(tmp_path / "run"), cluster_runs.shared_data_dir(tmp_path_factory)
  command = cluster_runs.local_command(2, 2, cluster_runs.tiny_flags(workdir, data_dir))
  proc = cluster_runs.start(command)
  lines = cluster_runs.wait_for_line(proc, r"^step 1[1-9]/")
  t0 = time.time()  # the checkpoint of step 10 commits in the background: wait for it
  while not os.path.isdir(os.path.join(workdir, "checkpoints", "10")) and time.time() - t0 < 60:
    time.sleep(0.05)
  os.kill(cluster_runs.child_pids(lines)[1], signal.SIGKILL)
  t0 = time.time()
  code, out = cluster_runs.finish(proc)
  waited = time.time() - t0
  assert code != 0, out[-3000:]
  assert waited < 40, f"the survivor took {waited:.0f} s (heartbeat timeout 10 s)"
  assert re.search(r"\[process 0\] .*(another process has probably died|another task died)", out), \
      out[-3000:]

  # A checkpoint cut off mid-write (no commit) must never be the one restored.
  ckpt_dir = os.path.join(workdir, "checkpoints")
  steps = sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  assert steps and steps[-1] >= 10
  partial = os.path.join(ckpt_dir, f"{cluster_runs.STEPS - 1}.orbax-checkpoint-tmp-1234567890")
  shutil.copytree(os.path.join(ckpt_dir, str(steps[-1])), partial)
  os.remove(os.path.join(partial, "commit_success.txt"))

  out = cluster_runs.run(command)
  assert f"resuming from step {steps[-1]}" in out
  cluster_runs.assert_same_run(workdir, reference)


def test_launcher_needs_a_command():
  code, out = cluster_runs.finish(cluster_runs.start(
      [sys.executable, os.path.join(cluster_runs.ROOT, "launch", "local.py"), "--processes=2"]))
  assert code == 2 and "error: give the command after --" in out


def test_distributed_flags_bad_input_is_one_line():
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  from dnagen_jax.runtime import distributed  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="go together"):
    distributed.initialize(None, None, 2, None)
  with pytest.raises(UserError, match=r"--process_id=2 must be in 0\.\.1"):
    distributed.initialize(None, "127.0.0.1:1", 2, 2)
  assert distributed.initialize(None, "127.0.0.1:1", 1, 0) is False  # one process: nothing to start
  # srun/mpirun with several tasks starts it; a bare sbatch shell (no step) does not.
  assert distributed.detected_cluster({"SLURM_STEP_NUM_TASKS": "2"}) == "SLURM"
  assert distributed.detected_cluster({"OMPI_COMM_WORLD_SIZE": "4"}) == "Open MPI"
  assert distributed.detected_cluster({"SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "1"}) is None
  assert distributed.detected_cluster({}) is None


def test_distributed_without_a_cluster_exits_2(tmp_path):
  env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_"))}
  code, out = cluster_runs.finish(cluster_runs.start(
      [sys.executable, "-m", "dnagen_jax.main", "--distributed", "--config=configs/default.py",
       f"--workdir={tmp_path}/run"], env))
  assert code == 2
  assert out.strip().splitlines()[-1].startswith("error: cannot start jax.distributed (")
  # Flags that do not go together: the same exit path, checked in-process above ("go together").
