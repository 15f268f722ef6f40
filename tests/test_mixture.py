"""Mixtures of trained models: EM, normalisation, the workdir round trip and bad input."""

import json
import os

import numpy as np
import pytest

from configs import infinigram as infinigram_config
from configs import mixture as mixture_config
from configs import ngram as ngram_config
from dnagen_jax import scoring
from dnagen_jax.errors import UserError
from dnagen_jax.mixture import model as mix
from dnagen_jax.mixture import train as mixture_train
from dnagen_jax.ngram import train as ngram_train
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.scorer import NGramScorer
from dnagen_jax.training import trainer
from dnagen_jax.workdir import load_scorer


def test_em_finds_the_best_weights_per_bucket():
  rng = np.random.default_rng(0)
  p = rng.uniform(0.05, 1.0, size=(4000, 2))
  buckets = (np.arange(4000) % 2).astype(np.int64)
  # In bucket 0 component 0 is better, in bucket 1 component 1.
  p[buckets == 0, 0] = np.minimum(1.0, p[buckets == 0, 0] * 1.6)
  p[buckets == 1, 1] = np.minimum(1.0, p[buckets == 1, 1] * 1.6)
  w, iters = mix.fit_weights(np.log(p), buckets, 3)
  assert iters > 1 and np.allclose(w.sum(1), 1.0)
  assert np.allclose(w[2], 0.5)  # an empty bucket stays uniform
  grid = np.linspace(0, 1, 2001)
  for b in (0, 1):
    pb = p[buckets == b]
    ll = [np.log(g * pb[:, 0] + (1 - g) * pb[:, 1]).sum() for g in grid]
    assert abs(w[b, 0] - grid[int(np.argmax(ll))]) < 2e-3
  assert w[0, 0] > 0.5 > w[1, 0]


def _genes(rng, n, lo=5, hi=40):
  return ["".join(rng.choice(list("ACGT"), rng.integers(lo, hi + 1))) for _ in range(n)]


@pytest.mark.parametrize("feature", ["", "longest_match"])
def test_mixture_distributions_sum_to_one(feature):
  rng = np.random.default_rng(1)
  train = _genes(rng, 40) + ["ACGTACGTTTGACCA" * 3] * 4
  ig = InfiniGram.fit(train, raw_from=3)
  comps = [NGramScorer(NGramModel.fit(train, 3, "laplace")), NGramScorer(ig)]
  edges = [2, 4, 8] if feature else []
  w = rng.dirichlet([1, 1], size=len(edges) + 1)
  scorer = mix.MixtureScorer(comps, w, edges, feature, ig if feature else None)
  prefixes = ["", "A", "ACGTACGTTTGA", train[3][:9], "GGGGTTTT"]
  for prefix in prefixes:
    total = sum(np.exp(scorer.token_log_probs([prefix + o])[0][-1]) for o in "ACGT")
    assert abs(total - 1) < 1e-12
  # The mixture of one sequence is the weighted sum of its components' probabilities.
  seq = train[0]
  lp = np.stack([np.exp(c.token_log_probs([seq])[0]) for c in comps], 1)
  b = scorer.buckets([seq])
  assert np.allclose(np.exp(scorer.token_log_probs([seq])[0]), (lp * w[b]).sum(1), rtol=1e-12)


def _tiny(config, tfds_dir):
  config.data.data_dir = tfds_dir
  config.data.synthetic_sizes = (64, 16, 16)
  config.data.max_length = 120
  return config


def _component_workdirs(tfds_dir, tmp_path):
  kn = _tiny(ngram_config.get_config(), tfds_dir)
  kn.model.ngram_order = 3
  ig = _tiny(infinigram_config.get_config(), tfds_dir)
  ig.model.infinigram_raw_from = 3
  dirs = [str(tmp_path / "kn3"), str(tmp_path / "ig")]
  trainer.train_and_evaluate(kn, dirs[0])
  trainer.train_and_evaluate(ig, dirs[1])
  return dirs


def test_mixture_trains_saves_and_scores_like_its_components(tfds_dir, tmp_path):
  dirs = _component_workdirs(tfds_dir, tmp_path)
  config = _tiny(mixture_config.get_config(), tfds_dir)
  config.model.mixture_workdirs = ",".join(dirs)
  config.model.mixture_buckets = "2,4"
  workdir = str(tmp_path / "mix")
  results = trainer.train_and_evaluate(config, workdir)
  saved = json.load(open(os.path.join(workdir, "results.json")))
  assert np.array(saved["weights"]).shape == (3, 2)
  assert np.allclose(np.array(saved["weights"]).sum(1), 1)
  comp_val = [c["val_perplexity"] for c in saved["components"]]
  assert saved["val_perplexity"] <= min(comp_val) + 1e-9  # EM on validation: never worse than a component
  scorer = load_scorer(workdir)
  test = ngram_train.load_splits(config)["test"]
  assert scorer.perplexity(test)["perplexity"] == pytest.approx(results["test_perplexity"], rel=1e-12)


def test_bad_input_is_one_line(tfds_dir, tmp_path):
  dirs = _component_workdirs(tfds_dir, tmp_path)
  config = _tiny(mixture_config.get_config(), tfds_dir)
  workdir = str(tmp_path / "mix")
  config.model.mixture_workdirs = dirs[0]
  with pytest.raises(UserError, match="at least two"):
    trainer.train_and_evaluate(config, workdir)
  # A component trained on another data set (here: other split fractions).
  other = _tiny(ngram_config.get_config(), tfds_dir)
  other.model.ngram_order = 2
  other.data.synthetic_seed = 7
  trainer.train_and_evaluate(other, str(tmp_path / "other"))
  config.model.mixture_workdirs = f"{dirs[0]},{tmp_path / 'other'}"
  with pytest.raises(UserError, match="different data set or tokenization.*synthetic_seed"):
    trainer.train_and_evaluate(config, workdir)
  # A component with another tokenization (a field a k-mer model would carry).
  cfg_path = os.path.join(dirs[1], "config.json")
  original = open(cfg_path).read()
  cfg = json.loads(original)
  cfg["model"]["kmer_size"] = 3
  open(cfg_path, "w").write(json.dumps(cfg))
  config.model.mixture_workdirs = ",".join(dirs)
  with pytest.raises(UserError, match="different tokenization"):
    trainer.train_and_evaluate(config, workdir)
  cfg["data"]["tokenizer"] = "kmer"
  open(cfg_path, "w").write(json.dumps(cfg))
  with pytest.raises(UserError, match="data set or tokenization.*tokenizer"):
    trainer.train_and_evaluate(config, workdir)
  open(cfg_path, "w").write(original)
  # A component workdir without a model: config.json but no saved counts.
  os.remove(os.path.join(dirs[0], "ngram.npz"))
  config.model.mixture_workdirs = ",".join(dirs)
  with pytest.raises(UserError, match=f"mixture component {dirs[0]} has no model"):
    trainer.train_and_evaluate(config, workdir)
  config.model.mixture_workdirs = f"{dirs[1]},{tmp_path / 'nowhere'}"
  with pytest.raises(UserError, match="no such workdir"):
    trainer.train_and_evaluate(config, workdir)
  assert not os.path.exists(workdir)  # nothing written before the checks


def test_missing_validation_split_is_one_line(tfds_dir, tmp_path, monkeypatch):
  dirs = _component_workdirs(tfds_dir, tmp_path)
  config = _tiny(mixture_config.get_config(), tfds_dir)
  config.model.mixture_workdirs = ",".join(dirs)
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  real = storage.load_records
  monkeypatch.setattr(storage, "load_records",
                      lambda data, split: [] if split == "validation" else real(data, split))
  with pytest.raises(UserError, match="validation split"):
    trainer.train_and_evaluate(config, str(tmp_path / "mix"))
  assert not os.path.exists(tmp_path / "mix")


def test_command_line_bad_component_is_one_line(tmp_path):
  from tests.helpers import run_main  # pylint: disable=g-import-not-at-top
  out = run_main("--config=configs/mixture.py", f"--workdir={tmp_path / 'mix'}",
                 f"--config.model.mixture_workdirs={tmp_path / 'a'},{tmp_path / 'b'}")
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: mixture component") and "no such workdir" in lines[0]
