"""Shared by the cluster tests: a tiny training config, its runs as processes, their outputs.

The config trains a 1,800-parameter LSTM for 60 steps of 8 genes on 96
synthetic genes (seconds), logging every step and checkpointing every 10,
so a run can be interrupted at a known step and its losses compared step by
step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np

from tests.helpers import ROOT

STEPS = 60


def tiny_flags(workdir: str, data_dir: str) -> list[str]:
  """main.py flags of the tiny run in `workdir` (global batch 8: 2 rows per device of 4)."""
  return [
      "--config=configs/default.py", f"--workdir={workdir}",
      "--config.model.embed_dim=8", "--config.model.hidden_dim=16",
      "--config.data.synthetic_sizes=(96,16,16)", "--config.data.max_length=200",
      "--config.data.length_buckets=(64,128,256)", f"--config.data.data_dir={data_dir}",
      "--config.train.batch_size=8", f"--config.train.max_steps={STEPS}",
      "--config.train.eval_every=30", "--config.train.checkpoint_every=10",
      "--config.train.log_every=1", "--config.train.warmup_steps=5", "--config.train.patience=0",
      "--heartbeat_timeout_s=10",
  ]


def local_command(processes: int, devices: int, flags: list[str]) -> list[str]:
  """launch/local.py running main.py with `flags` as `processes` x `devices`."""
  return [sys.executable, os.path.join(ROOT, "launch", "local.py"), f"--processes={processes}",
          f"--devices_per_process={devices}", "--grace_s=30", "--",
          sys.executable, "-m", "dnagen_jax.main", *flags]


def start(command: list[str], env: dict | None = None) -> subprocess.Popen:
  env = dict(os.environ if env is None else env)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  env.pop("XLA_FLAGS", None)  # the launcher sets the device count of each process
  return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def wait_for_line(proc: subprocess.Popen, pattern: str, timeout: float = 240) -> list[str]:
  """Reads `proc`'s output until a line matches `pattern`; returns the lines read."""
  lines, t0 = [], time.time()
  for line in proc.stdout:
    lines.append(line)
    if re.search(pattern, line):
      return lines
    assert time.time() - t0 < timeout, "".join(lines[-30:])
  raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(lines[-40:]))


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
  out, _ = proc.communicate(timeout=timeout)
  return proc.returncode, out


def run(command: list[str], env: dict | None = None) -> str:
  """Runs to the end; asserts success; returns the output."""
  code, out = finish(start(command, env))
  assert code == 0, out[-4000:]
  return out


def child_pids(lines: list[str]) -> dict[int, int]:
  """{process index: pid} from launch/local.py's '[launch] process i: pid P' lines."""
  return {int(m.group(1)): int(m.group(2))
          for m in (re.search(r"\[launch\] process (\d+): pid (\d+)", l) for l in lines) if m}


def train_losses(workdir: str) -> dict[int, float]:
  """{step: training loss} from metrics.jsonl (a step logged twice: its last line)."""
  losses = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      if r["split"] == "train":
        losses[r["step"]] = r["loss"]
  return losses


def final_params(workdir: str, step: int = STEPS) -> list[np.ndarray]:
  """The model parameters of checkpoint `step`, as host arrays (any saving topology)."""
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.abspath(workdir), "checkpoints", str(step), "state")
  checkpointer = ocp.StandardCheckpointer()
  metadata = checkpointer.metadata(path)
  tree = getattr(metadata, "item_metadata", metadata)
  tree = getattr(tree, "tree", tree)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
  restored = checkpointer.restore(path, abstract)
  return [np.asarray(x) for x in jax.tree.leaves(restored["model"])]


def assert_same_run(workdir: str, reference: str) -> None:
  """Same losses at every step and the same final parameters, to float tolerance."""
  got, want = train_losses(workdir), train_losses(reference)
  assert sorted(got) == sorted(want) == list(range(1, STEPS + 1))
  np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)],
                             rtol=1e-5)
  for a, b in zip(final_params(workdir), final_params(reference), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def shared_data_dir(tmp_path_factory) -> str:
  """One TFDS folder for every tiny run of the session: the data set is prepared once."""
  return str(tmp_path_factory.getbasetemp() / "cluster_tfds")


def reference_workdir(tmp_path_factory) -> str:
  """One uninterrupted process of 4 devices on the tiny config; run once per test session."""
  workdir = str(tmp_path_factory.getbasetemp() / "cluster_reference")
  if not os.path.exists(os.path.join(workdir, "results.json")):
    run(local_command(1, 4, tiny_flags(workdir, shared_data_dir(tmp_path_factory))))
  return workdir
