"""Training: data parallelism, resume (also after SIGTERM), NaN, workdir checks."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh

from dnagen_jax.runtime import checkpoints
from dnagen_jax.data import batching
from dnagen_jax.runtime import mesh_utils
from dnagen_jax import models
from dnagen_jax.training import trainer
from dnagen_jax.runtime import steps
from dnagen_jax.errors import UserError
from tests.helpers import ROOT, overrides, run_main, tiny_config


def _one_step(config, mesh):
  model = models.create_model(config.model, 0)
  optimizer = nnx.Optimizer(model, steps.make_optimizer(config.train, 10), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  state = jax.device_put(state, mesh_utils.replicated(mesh))
  step = steps.jit_train_step(graphdef, mesh)
  batch = next(batching.TrainBatches(config.data, 8, 0).iterator())
  state, metrics = step(state, mesh_utils.put_batch(batch, mesh))
  return jax.tree.map(np.asarray, nnx.to_pure_dict(state)), float(metrics["nll"])


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_eight_devices_match_one(tfds_dir, name):
  assert jax.device_count() == 8, "conftest sets 8 simulated devices"
  config = tiny_config(tfds_dir, name)
  params8, nll8 = _one_step(config, mesh_utils.make_mesh())
  params1, nll1 = _one_step(config, Mesh(np.asarray(jax.devices()[:1]), ("data",)))
  assert nll8 == pytest.approx(nll1, rel=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), params8, params1)


def _final_params(workdir):
  tree = checkpoints.Checkpoints(workdir, keep=2)
  step = tree.latest_step()
  path = os.path.join(workdir, "checkpoints", str(step))
  tree.close()
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  restored = ocp.StandardCheckpointer().restore(os.path.join(path, "state"))
  return step, restored["model"]


def test_train_writes_results_and_resumes_to_the_same_parameters(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  full = str(tmp_path / "full")
  results = trainer.train_and_evaluate(config, full)
  for key in ("model", "params", "nucleotides_seen", "val_perplexity", "test_perplexity",
              "test_bits_per_nucleotide", "oracle_test_perplexity"):
    assert key in json.load(open(os.path.join(full, "results.json")))
  # Against independent computations: the scorer API over the test split (not the trainer's
  # evaluation loop), and the true source's per-token probabilities.
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  test = [r.sequence for r in storage.load_records(config.data, "test")]
  assert results["test_perplexity"] == pytest.approx(
      neural.NeuralScorer.load(full).perplexity(test)["perplexity"], rel=1e-5)
  oracle_lp = np.concatenate([storage.oracle_source(config.data).token_log_probs(s) for s in test])
  assert results["oracle_test_perplexity"] == pytest.approx(np.exp(-oracle_lp.mean()), rel=1e-9)
  lines = [json.loads(l) for l in open(os.path.join(full, "metrics.jsonl"))]
  # 6 warm-up steps of a 16-unit LSTM learn little, but they learn: validation falls at each
  # evaluation (measured 8.01 -> 7.48), and test is near validation (the same source).
  val = [l["perplexity"] for l in lines if l.get("split") == "validation"]
  assert len(val) == 2 and val[1] < val[0] - 0.1
  assert results["test_perplexity"] == pytest.approx(results["val_perplexity"], rel=0.03)
  assert {"loss", "perplexity", "bits_per_nucleotide", "nucleotides_seen",
          "nucleotides_per_s"} <= set(lines[-2] if lines[-2]["split"] == "train" else lines[-3])

  parts = str(tmp_path / "parts")
  config.train.halt_after_steps = 3
  assert trainer.train_and_evaluate(config, parts) == {}        # halted at step 3
  trainer.train_and_evaluate(config, parts)                       # resumes 3 -> 6
  step_a, a = _final_params(full)
  step_b, b = _final_params(parts)
  assert step_a == step_b == 6
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), a, b)


def test_sigterm_saves_and_resume_matches(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  config.train.max_steps = 40
  config.train.log_every = 1
  config.train.eval_every = 40
  config.train.checkpoint_every = 40
  reference = str(tmp_path / "ref")
  trainer.train_and_evaluate(config, reference)

  workdir = str(tmp_path / "term")
  args = ["--config=configs/default.py", f"--workdir={workdir}"] + overrides(config)
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT)
  proc = subprocess.Popen([sys.executable, "-m", "dnagen_jax.main", *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while not (os.path.exists(metrics) and len(open(metrics).readlines()) >= 3):
    assert proc.poll() is None and time.time() < deadline, proc.communicate()
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err
  assert "run the same command to resume" in err and "Traceback" not in err
  stopped_at, _ = _final_params(workdir)
  assert 0 < stopped_at < 40
  done = run_main(*args)
  assert done.returncode == 0, done.stderr
  assert f"resuming from step {stopped_at}" in done.stdout
  step_a, a = _final_params(reference)
  step_b, b = _final_params(workdir)
  assert step_a == step_b == 40
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7), a, b)


def test_nan_loss_stops_keeps_last_good_checkpoint(tfds_dir, tmp_path, monkeypatch):
  config = tiny_config(tfds_dir)
  config.train.max_steps = 12
  config.train.halt_after_steps = 4
  workdir = str(tmp_path / "nan")
  trainer.train_and_evaluate(config, workdir)                      # good checkpoint at step 4
  good = steps.train_step

  def diverging_step(graphdef, state, batch):                    # as if the loss blew up
    state, metrics = good(graphdef, state, batch)
    return state, dict(metrics, nll=metrics["nll"] * jnp.nan)

  monkeypatch.setattr(steps, "train_step", diverging_step)
  config.train.halt_after_steps = 0
  with pytest.raises(UserError) as e:
    trainer.train_and_evaluate(config, workdir)
  message = str(e.value)
  assert "\n" not in message and "loss became nan" in message and "checkpoint: step 4" in message
  assert _final_params(workdir)[0] == 4


def test_workdir_of_another_model_is_refused(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  config.train.halt_after_steps = 2
  workdir = str(tmp_path / "w")
  trainer.train_and_evaluate(config, workdir)
  config.model.hidden_dim = 32
  with pytest.raises(UserError, match="holds a run of a different model .*hidden_dim: 16 -> 32"):
    trainer.train_and_evaluate(config, workdir)


def test_resume_allows_settings_that_do_not_change_what_is_learned(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  config.train.halt_after_steps = 2
  workdir = str(tmp_path / "w")
  trainer.train_and_evaluate(config, workdir)
  # Another node / tighter memory: new storage, remat, buckets, batching noise, eval batch.
  config.data.data_dir = str(tmp_path / "tfds_elsewhere")
  config.model.remat = True
  config.model.cpu_kernel = False
  config.data.length_buckets = (64, 128)
  config.data.sort_noise = 0.0
  config.train.eval_batch_size = 16
  assert trainer.train_and_evaluate(config, workdir) == {}   # resumed 2 -> 4, halted again
  assert _final_params(workdir)[0] == 4
  assert json.load(open(os.path.join(workdir, "config.json")))["model"]["remat"] is True


def test_workdir_from_before_the_new_fields_resumes_and_scores(tfds_dir, tmp_path):
  """A config.json without model.init / data.sort_noise reads as the values those runs used."""
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  config = tiny_config(tfds_dir)
  config.model.init = "flax"
  config.data.sort_noise = 0.0
  config.train.halt_after_steps = 2
  workdir = str(tmp_path / "old")
  trainer.train_and_evaluate(config, workdir)
  before = neural.NeuralScorer.load(workdir).perplexity(["ACGTTGCA" * 5])["perplexity"]
  path = os.path.join(workdir, "config.json")
  old = json.load(open(path))
  del old["model"]["init"], old["data"]["sort_noise"]
  json.dump(old, open(path, "w"))                           # as an older version wrote it
  scorer = neural.NeuralScorer.load(workdir)                # the same model as before the edit
  assert scorer.perplexity(["ACGTTGCA" * 5])["perplexity"] == pytest.approx(before, rel=1e-6)
  fresh = tiny_config(tfds_dir)                             # init='pytorch': another model
  with pytest.raises(UserError, match=r"model.init: 'flax' -> 'pytorch'"):
    trainer.train_and_evaluate(fresh, workdir)
  assert trainer.train_and_evaluate(config, workdir) == {}    # the same settings resume
  assert _final_params(workdir)[0] == 4
