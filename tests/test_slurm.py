"""The sbatch templates under a real SLURM: a private one-node cluster on this machine.

Skipped with one line where it cannot start (not root, or slurm-wlm not
installed: `apt-get install -y slurm-wlm`). The training job runs 2 tasks x 2
simulated CPU devices and must equal one process with 4 devices (the same
loss at every step, the same final parameters), through a SIGTERM to the
batch shell (what --signal=B:TERM@120 sends before the time limit), an
agreed save, a requeue and a resumed second start. The job array trains two
sweep points, one per array task.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from tests import cluster_runs
from tests import slurm_cluster
from tests.helpers import ROOT

pytestmark = pytest.mark.scheduler


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
  reason = slurm_cluster.why_unavailable()
  if reason:
    pytest.skip(f"no SLURM here: {reason}")
  cluster = slurm_cluster.Cluster(str(tmp_path_factory.mktemp("slurm")))
  try:
    cluster.start()
  except (RuntimeError, subprocess.CalledProcessError) as e:
    cluster.stop()
    pytest.skip(f"cannot start a one-node SLURM: {e}")
  yield cluster
  cluster.stop()


def _job_env(devices: int) -> dict:
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", DNAGEN_PYTHON=sys.executable,
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  for var in [v for v in env if v.startswith("SLURM_")]:  # a test run inside a job
    del env[var]
  return env


def _wait_for(path: str, pattern: str, timeout: float = 240) -> None:
  t0 = time.time()
  while time.time() - t0 < timeout:
    if os.path.exists(path) and re.search(pattern, open(path).read(), re.M):
      return
    time.sleep(0.3)
  raise AssertionError(f"{path}: no line matching {pattern!r} in {timeout:.0f} s:\n"
                       + (open(path).read()[-3000:] if os.path.exists(path) else "(no file)"))


def _batch_shell_pid(cluster, job_id: str) -> int:
  out = subprocess.run(["pgrep", "-f", f"job{int(job_id):05d}/slurm_script"], capture_output=True,
                       text=True).stdout.split()
  assert out, f"no batch shell of job {job_id}"
  return int(out[0])


def test_sbatch_2_tasks_equal_1_process_through_a_requeue(slurm, tmp_path, tmp_path_factory):
  reference = cluster_runs.reference_workdir(tmp_path_factory)
  workdir, log = str(tmp_path / "run"), str(tmp_path / "job.out")
  job = slurm.sbatch(["--ntasks-per-node=2", "--cpus-per-task=1", f"--output={log}",
                      os.path.join(ROOT, "launch", "slurm", "train.sbatch"),
                      *cluster_runs.tiny_flags(workdir, cluster_runs.shared_data_dir(tmp_path_factory))],
                     env=_job_env(2))
  _wait_for(log, r"^step 3/")
  os.kill(_batch_shell_pid(slurm, job), 15)  # as --signal=B:TERM@120 does
  _wait_for(log, r"requeueing job")
  # SLURM holds a requeued job about two minutes (BeginTime); start it as soon
  # as the first run's allocation is released (earlier, its credential is revoked).
  t0 = time.time()
  while time.time() - t0 < 60 and not (slurm.state(job) == ["PENDING"] and slurm.node_idle()):
    time.sleep(0.5)
  time.sleep(3)
  subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm.env, check=True)
  assert slurm.wait(job) == ["COMPLETED"], open(log).read()[-3000:]

  out = open(log).read()
  stops = re.findall(r"process (\d) of 2: interrupted by signal 15 at step (\d+)", out)
  assert sorted(p for p, _ in stops) == ["0", "1"] and stops[0][1] == stops[1][1], out[-3000:]
  assert f"resuming from step {stops[0][1]}" in out
  assert "(restart 1)" in out and "process 1 of 2: 2 local of 4 devices" in out
  cluster_runs.assert_same_run(workdir, reference)


SWEEP = """
BASE = "configs/default.py"
_TINY = {{"model.embed_dim": 8, "data.synthetic_sizes": (96, 16, 16), "data.max_length": 200,
         "data.length_buckets": (64, 128, 256), "data.data_dir": {data_dir!r},
         "train.batch_size": 8, "train.max_steps": 12, "train.eval_every": 12,
         "train.warmup_steps": 2}}
SWEEP = {{"h16": dict(_TINY, **{{"model.hidden_dim": 16}}),
         "h24": dict(_TINY, **{{"model.hidden_dim": 24}})}}
"""


def test_job_array_trains_one_sweep_point_per_task(slurm, tmp_path):
  sweep = tmp_path / "tiny_sweep.py"
  sweep.write_text(SWEEP.format(data_dir=str(tmp_path / "tfds")))
  workdir = str(tmp_path / "sweep")
  job = slurm.sbatch(["--array=0-1", "--cpus-per-task=1", f"--output={tmp_path}/array-%a.out",
                      os.path.join(ROOT, "launch", "slurm", "sweep_array.sbatch"), str(sweep), workdir],
                     env=_job_env(1))
  states = slurm.wait(job)
  logs = "".join(open(tmp_path / f"array-{i}.out").read() for i in range(2))
  assert states == ["COMPLETED", "COMPLETED"], logs[-3000:]
  for i, entry in enumerate(("h16", "h24")):
    assert f"array task {i}: entry {entry}" in logs
    assert os.path.exists(os.path.join(workdir, entry, "results.json")), logs[-3000:]


def test_array_index_past_the_sweep_is_one_line(tmp_path):
  sweep = tmp_path / "tiny_sweep.py"
  sweep.write_text(SWEEP.format(data_dir=str(tmp_path / "tfds")))
  env = dict(_job_env(1), SLURM_ARRAY_TASK_ID="5", DNAGEN_ROOT=ROOT)
  proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "slurm", "sweep_array.sbatch"),
                         str(sweep), str(tmp_path / "sweep")], env=env, capture_output=True,
                        text=True, timeout=60)
  assert proc.returncode == 2
  assert proc.stderr.strip() == f"error: array index 5: {sweep} has 2 entries (0..1)"


STUDY = """import ml_collections
def get_config():
  study = ml_collections.ConfigDict()
  study.name = "array-test"
  study.data = ml_collections.ConfigDict({{"data_dir": "{data_dir}"}})
  study.fractions = (0.5, 1.0)
  study.nucleotides = ()
  study.target_losses = (1.6,)
  study.bootstrap = 10
  study.fit_seed = 0
  study.families = ml_collections.ConfigDict({{"laplace": dict(
      config="configs/ngram.py", overrides={{"model": {{"ngram_smoothing": "laplace", "ngram_order": 3}}}},
      kmers=(1,), seeds=(0,), budget="", ngram_orders=())}})
  return study
"""


def _study_file(tmp_path) -> str:
  path = tmp_path / "tiny_study.py"
  path.write_text(STUDY.format(data_dir=str(tmp_path / "tfds")))
  return str(path)


def test_job_array_trains_one_study_point_per_task(slurm, tmp_path):
  study, workdir = _study_file(tmp_path), str(tmp_path / "study")
  job = slurm.sbatch(["--array=0-1", "--cpus-per-task=1", f"--output={tmp_path}/study-%a.out",
                      os.path.join(ROOT, "launch", "slurm", "study_array.sbatch"), study, workdir],
                     env=_job_env(1))
  states = slurm.wait(job)
  logs = "".join(open(tmp_path / f"study-{i}.out").read() for i in range(2))
  assert states == ["COMPLETED", "COMPLETED"], logs[-3000:]
  points = sorted(os.listdir(os.path.join(workdir, "points")))
  assert len(points) == 2 and all(f"point {p} of {study}" in logs for p in points), logs[-3000:]
  assert all(os.path.exists(os.path.join(workdir, "points", p, "results.json")) for p in points)


def test_array_index_past_the_study_is_one_line(tmp_path):
  study = _study_file(tmp_path)
  env = dict(_job_env(1), SLURM_ARRAY_TASK_ID="7", DNAGEN_ROOT=ROOT)
  proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "slurm", "study_array.sbatch"),
                         study, str(tmp_path / "study")], env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == f"error: array index 7: {study} has 2 points (0..1)"
