"""Faults of long runs: damaged checkpoints, two runs on one workdir, full disks, kill -9.

Each case where a run resumes checks that its final parameters equal those of
an undisturbed run of the same config. The cases that start several
subprocesses are behind the `faults` marker (`pytest -m faults tests/test_faults.py`);
the tmpfs cases need root and `mount -t tmpfs` and skip with one line otherwise.
Damaged input files (gzip/bgzip/xz, empty records, binary .fa) are tested with
the sequence readers (docs/cluster.md, "What survives what").
"""

import contextlib
import errno
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from dnagen_jax.data import storage
from dnagen_jax.errors import UserError
from dnagen_jax.runtime import workdir_lock
from dnagen_jax.runtime import write_errors
from dnagen_jax.scoring import neural
from dnagen_jax.training import progress
from dnagen_jax.training import trainer
from tests.helpers import ROOT, overrides, tiny_config


# The longer cases: out of the default run (slow), selected together with -m faults.
FAULTS = lambda test: pytest.mark.slow(pytest.mark.faults(test))  # pylint: disable=unnecessary-lambda-assignment


def _config(tfds_dir):
  config = tiny_config(tfds_dir)
  config.train.keep_checkpoints = 2
  return config


def _params(workdir, step=None):
  """(step, model parameters) of checkpoints/<step> (the newest if None), read straight from disk."""
  steps = write_errors.complete_steps(os.path.join(workdir, "checkpoints"))
  step = steps[-1] if step is None else step
  tree = ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step), "state"))
  return step, tree["model"]


def _assert_same(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


@pytest.fixture(scope="module")
def reference(tfds_dir, tmp_path_factory):
  """An undisturbed run of the tiny config (6 steps): the parameters every resumed run must reach."""
  workdir = str(tmp_path_factory.mktemp("reference") / "run")
  trainer.train_and_evaluate(_config(tfds_dir), workdir)
  return workdir


@pytest.fixture(scope="module")
def halted(tfds_dir, tmp_path_factory):
  """The same run halted at step 4: complete checkpoints 2 and 4, best 3. Copy before changing."""
  workdir = str(tmp_path_factory.mktemp("halted") / "run")
  config = _config(tfds_dir)
  config.train.halt_after_steps = 4
  assert trainer.train_and_evaluate(config, workdir) == {}
  assert write_errors.complete_steps(os.path.join(workdir, "checkpoints")) == [2, 4]
  return workdir


def _copy(src, tmp_path, name="run"):
  dst = str(tmp_path / name)
  shutil.copytree(src, dst)
  return dst


def _cut_array_files(step_dir):
  """What a torn write leaves: every array data file of the checkpoint cut to 10 bytes."""
  files = (glob.glob(os.path.join(step_dir, "state", "ocdbt.process_*", "d", "*"))
           + glob.glob(os.path.join(step_dir, "state", "d", "*")))  # Orbax may merge them here
  assert files
  for path in files:
    with open(path, "r+b") as f:
      f.truncate(10)


# ---- 1. Restore falls back -------------------------------------------------------------------

def test_damaged_latest_checkpoint_falls_back_and_matches_an_undisturbed_run(
    tfds_dir, halted, tmp_path, capsys):
  workdir = _copy(halted, tmp_path)
  _, undisturbed = _params(halted, 4)                                # the run's own step 4, intact
  _cut_array_files(os.path.join(workdir, "checkpoints", "4"))
  config = _config(tfds_dir)
  config.train.halt_after_steps = 2                                  # from step 2 to step 4 again
  capsys.readouterr()
  trainer.train_and_evaluate(config, workdir)
  out, err = capsys.readouterr()
  said = [l for l in err.splitlines() if "does not restore" in l]
  assert len(said) == 1 and "checkpoint 4 " in said[0] and "using step 2" in said[0], out + err
  assert "resuming from step 2" in out
  aside = glob.glob(os.path.join(workdir, "checkpoints", "4.damaged-*"))
  assert len(aside) == 1 and os.listdir(os.path.join(aside[0], "state"))  # moved, not deleted
  step, params = _params(workdir)
  assert step == 4
  _assert_same(params, undisturbed)


@pytest.mark.parametrize("damage", ["meta", "state"])
def test_no_checkpoint_restores_is_one_line_and_moves_nothing(tfds_dir, halted, tmp_path, damage):
  workdir = _copy(halted, tmp_path)
  for step in (2, 4):
    step_dir = os.path.join(workdir, "checkpoints", str(step))
    if damage == "meta":
      with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
        f.write("{not json")
    else:
      _cut_array_files(step_dir)
  with pytest.raises(UserError) as e:
    trainer.train_and_evaluate(_config(tfds_dir), workdir)
  message = str(e.value)
  assert "\n" not in message and "no checkpoint restores" in message
  assert "step 4:" in message and "step 2:" in message and "nothing was moved" in message
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
  assert not os.path.exists(os.path.join(workdir, "run.lock"))  # released on the error path


def test_damaged_best_falls_back_when_scoring(halted, tmp_path, capsys):
  workdir = _copy(halted, tmp_path)
  best = os.path.join(workdir, "best")
  (step,) = [int(n) for n in os.listdir(best)]
  expected = neural.NeuralScorer.load(workdir).perplexity(["ACGTACGTTTGA"])["perplexity"]
  shutil.copytree(os.path.join(best, str(step)), os.path.join(best, str(step + 100)))
  _cut_array_files(os.path.join(best, str(step + 100)))               # a newer best, damaged
  capsys.readouterr()
  got = neural.NeuralScorer.load(workdir).perplexity(["ACGTACGTTTGA"])["perplexity"]
  assert got == pytest.approx(expected, rel=1e-6)
  err = capsys.readouterr().err
  assert f"checkpoint {step + 100} " in err and f"using step {step}" in err
  _cut_array_files(os.path.join(best, str(step)))                     # now none restores
  with pytest.raises(UserError) as e:
    neural.NeuralScorer.load(workdir)
  assert "\n" not in str(e.value) and "no checkpoint restores" in str(e.value)


# ---- 2. One run per workdir ------------------------------------------------------------------

def _write_lock(workdir, **fields):
  os.makedirs(workdir, exist_ok=True)
  now = time.time()
  info = {"host": socket.gethostname(), "pid": os.getppid(),
          "pid_start": workdir_lock._process_start(os.getppid()),  # pylint: disable=protected-access
          "started": now - 60, "heartbeat": now, "token": "other"}
  info.update(fields)
  with open(os.path.join(workdir, workdir_lock.LOCK_NAME), "w") as f:
    json.dump(info, f)
  return info


def test_a_second_run_on_a_locked_workdir_stops_in_one_line(tfds_dir, tmp_path):
  workdir = str(tmp_path / "run")
  info = _write_lock(workdir)                                       # a live process holds it
  with pytest.raises(workdir_lock.Locked) as e:
    trainer.train_and_evaluate(_config(tfds_dir), workdir)
  message = str(e.value)
  assert "\n" not in message and "in use by another run" in message
  assert f"pid {info['pid']}" in message and socket.gethostname() in message
  assert sorted(os.listdir(workdir)) == [workdir_lock.LOCK_NAME]    # nothing written
  assert json.load(open(os.path.join(workdir, workdir_lock.LOCK_NAME)))["token"] == "other"


@pytest.mark.parametrize("case, stale", [
    ("dead pid, this host", True),
    ("reused pid, this host", True),
    ("old heartbeat, other host", True),
    ("fresh heartbeat, other host", False),
    ("unreadable file", True),
])
def test_stale_locks_are_taken_over_and_live_ones_refused(tmp_path, capsys, case, stale):
  workdir = str(tmp_path / "run")
  path = os.path.join(workdir, workdir_lock.LOCK_NAME)
  if case == "dead pid, this host":
    child = subprocess.Popen(["true"])
    child.wait()
    _write_lock(workdir, pid=child.pid, pid_start=None)
  elif case == "reused pid, this host":
    _write_lock(workdir, pid_start="1")                              # the pid's process started later
  elif case == "old heartbeat, other host":
    _write_lock(workdir, host="node-elsewhere", heartbeat=time.time() - workdir_lock.STALE_S - 5)
  elif case == "fresh heartbeat, other host":
    _write_lock(workdir, host="node-elsewhere")
  else:
    os.makedirs(workdir)
    open(path, "w").write("{cut sh")
  if not stale:
    with pytest.raises(workdir_lock.Locked, match="node-elsewhere"):
      with workdir_lock.hold(workdir):
        pass
    return
  with workdir_lock.hold(workdir):
    mine = json.load(open(path))
    assert mine["pid"] == os.getpid() and mine["token"] != "other"
  assert not os.path.exists(path)                                   # released
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "taking over the lock" in err[0]


def test_a_holder_on_another_host_that_missed_its_heartbeats_is_waited_for(tmp_path, monkeypatch,
                                                                          capsys):
  monkeypatch.setattr(workdir_lock, "HEARTBEAT_S", 0.1)
  monkeypatch.setattr(workdir_lock, "STALE_S", 1.0)
  workdir = str(tmp_path / "run")
  _write_lock(workdir, host="node-elsewhere", heartbeat=time.time() - 0.5)   # a lost node, then a requeue
  t0 = time.time()
  with workdir_lock.hold(workdir):
    assert json.load(open(os.path.join(workdir, workdir_lock.LOCK_NAME)))["pid"] == os.getpid()
  assert 0.3 < time.time() - t0 < 5
  err = capsys.readouterr().err
  assert "missed its heartbeats; waiting" in err and "taking over the lock" in err


def test_lock_heartbeat_release_reentry_and_loss(tmp_path, monkeypatch):
  monkeypatch.setattr(workdir_lock, "HEARTBEAT_S", 0.05)
  workdir = str(tmp_path / "run")
  path = os.path.join(workdir, workdir_lock.LOCK_NAME)
  with pytest.raises(RuntimeError):
    with workdir_lock.hold(workdir):
      first = json.load(open(path))["heartbeat"]
      with workdir_lock.hold(workdir):                              # re-entrant in one process
        time.sleep(0.3)
      assert json.load(open(path))["heartbeat"] > first             # refreshed while running
      raise RuntimeError("any failure")
  assert not os.path.exists(path)                                   # released on an exception
  with workdir_lock.hold(workdir):
    _write_lock(workdir, host="node-elsewhere")                     # taken over by another run
    time.sleep(0.3)
    with pytest.raises(UserError, match="took over"):
      workdir_lock.check(workdir)
  assert json.load(open(path))["host"] == "node-elsewhere"          # its lock is left alone


def test_sigterm_outside_training_releases_the_lock(tmp_path):
  workdir = str(tmp_path / "run")
  code = ("import sys, time; from dnagen_jax.runtime import workdir_lock\n"
          "with workdir_lock.hold(sys.argv[1]):\n  print('held', flush=True); time.sleep(60)\n")
  proc = subprocess.Popen([sys.executable, "-c", code, workdir], cwd=ROOT, stdout=subprocess.PIPE,
                          env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"), text=True)
  assert proc.stdout.readline().strip() == "held"
  assert os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=30) == 128 + signal.SIGTERM
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))


def test_a_study_point_held_by_another_task_is_not_trained(tmp_path):
  from dnagen_jax.study import runner  # pylint: disable=g-import-not-at-top
  point_dir = str(tmp_path / "points" / "p")
  _write_lock(point_dir)
  with pytest.raises(workdir_lock.Locked):
    runner.train_point(None, point_dir)                             # stops before it reads the point
  assert sorted(os.listdir(point_dir)) == [workdir_lock.LOCK_NAME]


# ---- 4. Writes that fail ---------------------------------------------------------------------

@FAULTS
def test_metrics_line_that_cannot_be_written_stops_in_one_line_and_resumes(
    tfds_dir, reference, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  write = progress.Logger._write                                     # pylint: disable=protected-access

  def full_disk(self, record):
    if record["step"] >= 4:
      with open(self.path, "ab") as f:
        f.write(b'{"step": 4, "spl')                                 # half a line, then the disk is full
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
    write(self, record)

  monkeypatch.setattr(progress.Logger, "_write", full_disk)
  with pytest.raises(UserError) as e:
    trainer.train_and_evaluate(_config(tfds_dir), workdir)
  message = str(e.value)
  assert "\n" not in message and "no space left" in message and "metrics.jsonl" in message
  assert "last complete checkpoint is step 2" in message
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))
  monkeypatch.setattr(progress.Logger, "_write", write)
  trainer.train_and_evaluate(_config(tfds_dir), workdir)
  for line in open(os.path.join(workdir, "metrics.jsonl")):
    json.loads(line)                                                # the half line was cut off
  _assert_same(_params(workdir)[1], _params(reference)[1])


@contextlib.contextmanager
def _small_fs(path, size="4m"):
  """A tmpfs of `size` at `path` (root only); skips the test with one line where it cannot mount."""
  if os.geteuid() != 0:
    pytest.skip("needs root to mount a small tmpfs (a full disk); the injected write failure is "
                "tested without it")
  os.makedirs(path, exist_ok=True)
  done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                        capture_output=True, text=True)
  if done.returncode:
    pytest.skip(f"mount -t tmpfs failed here ({done.stderr.strip()[:100]})")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", path], check=False)


def _fill(fs, leave):
  """Fills the filesystem `fs` up to `leave` free bytes; returns the filler's path."""
  st = os.statvfs(fs)
  filler = os.path.join(fs, "filler")
  with open(filler, "wb") as f:
    f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
  return filler


@FAULTS
def test_full_disk_and_read_only_disk_during_checkpoints(tfds_dir, reference, tmp_path):
  with _small_fs(str(tmp_path / "fs")) as fs:
    workdir = os.path.join(fs, "run")
    config = _config(tfds_dir)
    config.train.halt_after_steps = 2
    trainer.train_and_evaluate(config, workdir)                     # checkpoint 2
    config.train.halt_after_steps = 0
    filler = _fill(fs, leave=20_000)                                # too little for the next one
    with pytest.raises(UserError) as e:
      trainer.train_and_evaluate(config, workdir)
    message = str(e.value)
    assert "\n" not in message and "no space left" in message, message
    assert "last complete checkpoint is step 2" in message
    assert write_errors.complete_steps(os.path.join(workdir, "checkpoints")) == [2]
    os.remove(filler)
    subprocess.run(["mount", "-o", "remount,ro", fs], check=True)  # no permission to write
    try:
      with pytest.raises(UserError) as e:
        trainer.train_and_evaluate(config, workdir)
      assert "\n" not in str(e.value) and "read-only" in str(e.value).lower(), str(e.value)
    finally:
      subprocess.run(["mount", "-o", "remount,rw", fs], check=True)
    trainer.train_and_evaluate(config, workdir)                     # space again: resumes from 2
    _assert_same(_params(workdir)[1], _params(reference)[1])


@FAULTS
def test_full_disk_while_preparing_data(tfds_dir, tmp_path):
  config = _config(tfds_dir)
  expected = [(r.record_id, r.sequence) for r in storage.load_records(config.data, "train")]
  with _small_fs(str(tmp_path / "fs"), size="4m") as fs:
    config.data.data_dir = os.path.join(fs, "data")
    filler = _fill(fs, leave=8_000)
    with pytest.raises(UserError) as e:
      trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert "\n" not in str(e.value) and "no space left" in str(e.value), str(e.value)
    os.remove(filler)
    got = [(r.record_id, r.sequence) for r in storage.load_records(config.data, "train")]
  assert got == expected                                            # prepared again, the same


def test_write_errors_are_recognised_through_causes():
  inner = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x/metrics.jsonl")
  try:
    try:
      raise inner
    except OSError as e:
      raise ValueError("wrapped") from e
  except ValueError as e:
    assert write_errors.describe(e) == "cannot write: no space left on the device (/x/metrics.jsonl)"
  text = ValueError('RESOURCE_EXHAUSTED: Error writing local file "/c/4/_sharding": '
                    'No space left on device [os_error_code=\'28\']')
  assert write_errors.reason(text) == "no space left on the device (/c/4/_sharding)"
  assert write_errors.describe(ValueError("a shape does not match")) is None


# ---- 5. kill -9, two runs, the command line (subprocesses) -----------------------------------

_CHILD = """
import os, signal, sys
KILL = sys.argv[1]
{patch}
from absl import app
from dnagen_jax import main
sys.argv = ["dnagen_jax.main"] + sys.argv[2:]
app.run(main.main, flags_parser=main.parse_flags)
"""

# Killed after the checkpoint's files are written, just before Orbax renames its folder.
_KILL_IN_CHECKPOINT = """
from orbax.checkpoint._src.path import atomicity
finalize = atomicity.AtomicRenameTemporaryPath.finalize
async def killing_finalize(self, *args, **kwargs):
  if str(self._final_path).endswith(os.sep + os.path.join("checkpoints", KILL)):
    os.kill(os.getpid(), signal.SIGKILL)
  return await finalize(self, *args, **kwargs)
atomicity.AtomicRenameTemporaryPath.finalize = killing_finalize
"""

# Killed while the data set's examples are being written (the KILL-th example).
_KILL_IN_PREPARE = """
from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb
generate = gdb.Builder._generate_examples
count = [0]
def killing_generate(self, genes):
  for item in generate(self, genes):
    count[0] += 1
    if count[0] == int(KILL):
      os.kill(os.getpid(), signal.SIGKILL)
    yield item
gdb.Builder._generate_examples = killing_generate
"""


def _run_child(patch, kill, args, timeout=300):
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-c", _CHILD.format(patch=patch), kill, *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


def _cli(*args, timeout=300):
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "dnagen_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


@FAULTS
def test_kill_9_during_a_checkpoint_write_resumes_from_a_complete_one(tfds_dir, reference, tmp_path):
  workdir = str(tmp_path / "run")
  args = ["--config=configs/default.py", f"--workdir={workdir}"] + overrides(_config(tfds_dir))
  killed = _run_child(_KILL_IN_CHECKPOINT, "4", args)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  names = os.listdir(os.path.join(workdir, "checkpoints"))
  assert "2" in names and "4" not in names and any(n.startswith("4.orbax-checkpoint-tmp") for n in names)
  assert os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))   # left by the dead run
  done = _cli(*args)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "resuming from step 2" in done.stdout and "taking over the lock" in done.stderr
  assert not any("orbax-checkpoint-tmp" in n for n in os.listdir(os.path.join(workdir, "checkpoints")))
  _assert_same(_params(workdir)[1], _params(reference)[1])


@FAULTS
def test_kill_9_during_data_preparation_prepares_again_the_same_data(tmp_path):
  rng = np.random.default_rng(0)
  fasta = tmp_path / "genes.fa"
  fasta.write_text("".join(f">g{i}\n{''.join(rng.choice(list('ACGT'), rng.integers(30, 90)))}\n"
                           for i in range(120)))
  def config_for(data_dir):
    config = tiny_config(data_dir)
    config.data.source = "files"
    config.data.files = str(fasta)
    return config
  expected = {s: [(r.record_id, r.sequence) for r in storage.load_records(
      config_for(str(tmp_path / "data_ref")).data, s)] for s in ("train", "validation", "test")}
  config = config_for(str(tmp_path / "data"))
  args = ["--config=configs/default.py", f"--workdir={tmp_path / 'run'}"] + overrides(config)
  killed = _run_child(_KILL_IN_PREPARE, "60", args)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  got = {s: [(r.record_id, r.sequence) for r in storage.load_records(config.data, s)]
         for s in ("train", "validation", "test")}
  assert got == expected


@FAULTS
def test_two_runs_on_one_workdir_the_second_stops_naming_the_first(tfds_dir, tmp_path):
  config = _config(tfds_dir)
  config.train.max_steps = config.train.num_epochs = 100000          # runs until stopped
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  workdir = str(tmp_path / "run")
  args = ["--config=configs/default.py", f"--workdir={workdir}"] + overrides(config)
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  first = subprocess.Popen([sys.executable, "-m", "dnagen_jax.main", *args], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    lock = os.path.join(workdir, workdir_lock.LOCK_NAME)
    deadline = time.time() + 180
    while not os.path.exists(lock):
      assert first.poll() is None and time.time() < deadline, first.communicate()
      time.sleep(0.02)
    second = _cli(*args)
    assert first.poll() is None                                     # still training
  finally:
    first.send_signal(signal.SIGTERM)
    _, first_err = first.communicate(timeout=300)
  assert first.returncode == 128 + signal.SIGTERM, first_err[-2000:]
  assert second.returncode == 2, second.stderr[-2000:]
  errors = [l for l in second.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and f"pid {first.pid}" in errors[0] and "Traceback" not in second.stderr
  assert not os.path.exists(lock)                                   # the first removed it
  metrics = os.path.join(workdir, "metrics.jsonl")
  lines = [json.loads(l) for l in open(metrics)] if os.path.exists(metrics) else []
  keys = [(l["step"], l["split"]) for l in lines]
  assert len(keys) == len(set(keys))                               # every line once


@FAULTS
def test_full_disk_on_the_command_line_is_one_line(tfds_dir, tmp_path):
  with _small_fs(str(tmp_path / "fs")) as fs:
    workdir = os.path.join(fs, "run")
    config = _config(tfds_dir)
    config.train.halt_after_steps = 2
    args = ["--config=configs/default.py", f"--workdir={workdir}"]
    assert _cli(*args, *overrides(config)).returncode == 0
    config.train.halt_after_steps = 0
    _fill(fs, leave=20_000)
    done = _cli(*args, *overrides(config))
  assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
  errors = [l for l in done.stderr.splitlines() if "rror" in l]
  assert len(errors) == 1 and "no space left" in errors[0], done.stderr[-3000:]


@FAULTS
def test_damaged_best_on_the_command_line_is_one_line(halted, tmp_path):
  workdir = _copy(halted, tmp_path)
  best = os.path.join(workdir, "best")
  (step,) = [int(n) for n in os.listdir(best)]
  shutil.copytree(os.path.join(best, str(step)), os.path.join(best, str(step + 100)))
  _cut_array_files(os.path.join(best, str(step + 100)))
  fasta = tmp_path / "x.fa"
  fasta.write_text(">a\nACGTACGTTTGA\n")
  done = _cli("--mode=eval", f"--workdir={workdir}", f"--eval_file={fasta}")
  assert done.returncode == 0 and "perplexity" in done.stdout, done.stderr[-3000:]
  said = [l for l in done.stderr.splitlines() if l.strip() and not l.startswith(("W", "I"))]
  assert len(said) == 1 and f"checkpoint {step + 100} " in said[0], done.stderr[-3000:]
