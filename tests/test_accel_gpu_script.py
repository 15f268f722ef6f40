"""The GPU benchmark's Python part (`bench/accelerator.py`) and shell part, on the CPU in dry mode."""

import json
import os
import subprocess

import pytest

from dnagen_jax.bench import accelerator
from tests.helpers import ROOT


@pytest.mark.slow
def test_a_dry_part_writes_its_json(tmp_path):
  result = accelerator.run("gru", "float32", str(tmp_path), steps=1, warmup=0, dry_run=True,
                           with_torch=False)
  with open(tmp_path / "gru_float32.json") as f:
    written = json.load(f)
  assert written["part"] == "gru" and written["paths"] == {"recurrent": "layers"}
  assert written["jax_train_nt_per_s"] > 0 and written["jax_score_nt_per_s"] > 0
  assert result["seq_len"] == 32 and "custom_calls" in written


def test_every_part_has_a_config():
  for part in accelerator.PARTS:
    for dtype in ("float32", "bfloat16"):
      config, (batch, seq_len) = accelerator.part_config(part, dtype)
      assert config.model.dtype == dtype and batch * seq_len >= 8192
  large, _ = accelerator.part_config("transformer_large", "bfloat16")
  assert (large.model.embed_dim, large.model.num_layers) == (1024, 12)


def test_shell_script_without_a_mode_prints_its_usage():
  out = subprocess.run(["bash", os.path.join(ROOT, "launch", "gpu_bench.sh")], capture_output=True,
                       text=True, check=False)
  assert out.returncode == 2 and "prep" in out.stdout and "PART OUT_DIR" in out.stdout


@pytest.mark.slow
def test_dry_part_through_the_shell_script(tmp_path):
  """launch/gpu_bench.sh's part runner with DRY_RUN=1 (tiny sizes) on the CPU: its JSON and log."""
  env = dict(os.environ, PYTHON="python", DRY_RUN="1", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  out = subprocess.run(["bash", "launch/gpu_bench.sh", "gru_bfloat16", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
  assert out.returncode == 0 and "FAILED" not in out.stdout, out.stdout[-2000:]
  with open(tmp_path / "gru_bfloat16.json") as f:
    assert json.load(f)["dtype"] == "bfloat16"
  assert (tmp_path / "gru_bfloat16.log").exists()
