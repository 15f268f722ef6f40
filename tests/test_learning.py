"""Learning: the default config reaches the oracle; an LSTM beats a unigram on real genes.

These are the suite's two longest tests (a few minutes together on 2 cores):
they run the real entry point, end to end, on one device.
"""

import collections
import json
import math
import os

import pytest

from configs import default, transformer
from dnagen_jax.data import storage
from tests.helpers import overrides, run_main


@pytest.mark.slow  # 45 s; its 400-step twin is a claims test (-m claims); training is guarded by test_train's runs
def test_default_lstm_reaches_oracle(tmp_path, tfds_dir):
  """configs/default.py cut from 400 to 250 steps (its cosine with it), else unchanged but for
  where data is written: within 3% of the oracle (measured +2.0%; at 150 steps +6.8%). The full
  400 steps' README figure (2.9050, +0.8%) is tests/test_claims.py::test_quick_start_lstm."""
  workdir = tmp_path / "default"
  proc = run_main("--config=configs/default.py", f"--workdir={workdir}",
                  f"--config.data.data_dir={tfds_dir}", "--config.train.max_steps=250",
                  "--config.train.eval_every=250", "--config.train.checkpoint_every=250", timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.load(open(workdir / "results.json"))
  assert results["model"] == "lstm"
  assert results["test_perplexity"] <= 1.03 * results["oracle_test_perplexity"], results
  assert "nt/s" in proc.stdout and "left" in proc.stdout  # progress was shown


@pytest.mark.slow
def test_transformer_reaches_oracle(tmp_path, tfds_dir):
  workdir = tmp_path / "transformer"
  proc = run_main("--config=configs/transformer.py", f"--workdir={workdir}",
                  f"--config.data.data_dir={tfds_dir}", timeout=3600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.load(open(workdir / "results.json"))
  assert results["test_perplexity"] <= 1.03 * results["oracle_test_perplexity"], results


def unigram_perplexity(train_seqs, test_seqs) -> float:
  counts = collections.Counter("".join(train_seqs))
  total = sum(counts.values())
  test = collections.Counter("".join(test_seqs))
  nll = -sum(n * math.log(counts[c] / total) for c, n in test.items())
  return math.exp(nll / sum(test.values()))


@pytest.mark.slow  # 35 s on 2 cores; the synthetic learning test covers the loop by default
def test_small_lstm_beats_unigram_on_real_genes(tmp_path, tfds_dir, genes_csv):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.source = "files"
  config.data.files = genes_csv
  config.data.length_buckets = (128, 256, 512, 1024)
  config.model.hidden_dim = 64
  config.model.embed_dim = 16
  config.train.batch_size = 32
  config.train.learning_rate = 1e-2
  config.train.max_steps = 150
  config.train.eval_every = 150
  config.train.checkpoint_every = 150
  workdir = tmp_path / "real"
  proc = run_main("--config=configs/default.py", f"--workdir={workdir}", *overrides(config),
                  timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.load(open(workdir / "results.json"))
  train_seqs = [r.sequence for r in storage.load_records(config.data, "train")]
  test_seqs = [r.sequence for r in storage.load_records(config.data, "test")]
  baseline = unigram_perplexity(train_seqs, test_seqs)
  assert results["test_perplexity"] < baseline, (results["test_perplexity"], baseline)
