"""Fitting an N-gram model on the prepared data set, like any other model.

  python -m dnagen_jax.main --config=configs/ngram.py --workdir=/tmp/ngram

`train_and_evaluate(config, workdir)` writes into `workdir`:
  config.json    the resolved config (read back by `workdir.load_scorer`);
  ngram.npz      the counts: keys_k uint64 [U_k], counts_k unsigned [U_k] per order k;
  ngram.json     header: format name and version, order, smoothing, outcomes, ...;
  results.json   perplexities and bits per nucleotide (project protocol), the
                 synthetic oracle, the NLTK-protocol test perplexity (mle,
                 laplace, add_k), counts stored, nucleotides seen, fit time.
Refitting takes seconds, so running the command again simply refits (a workdir
holding a different model or data set is refused, as for the neural models).
"""

from __future__ import annotations

import json
import math
import os
import time

from dnagen_jax import config_check
from dnagen_jax.data import storage
from dnagen_jax.ngram import nltk_compat
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.scorer import NGramScorer


def model_settings(config) -> dict:
  """NGramModel.fit keyword arguments from `config.model` (and data.unknown_policy)."""
  m = config.model
  gb = float(m.get("ngram_max_memory_gb", 0.0) or 0.0)
  return dict(order=int(m.ngram_order), smoothing=str(m.ngram_smoothing), k=float(m.ngram_k),
              # windows with data.max_n_fraction=0 hold no N: no N outcome (k-mers need none)
              with_n=config.data.unknown_policy == "n" and config.data.get("max_n_fraction", 1.0) > 0,
              max_memory_bytes=int(gb * 2**30) if gb > 0 else None,
              lower_discounts=m.get("ngram_kn_lower_discounts", "auto"),
              kmer=int(config.data.get("kmer", 1)))


def load_splits(config) -> dict[str, list[str]]:
  """{'train'|'validation'|'test': genes} of the config's prepared data set."""
  return {s: [r.sequence for r in storage.load_records(config.data, s)]
          for s in storage.SPLITS}


def fit_and_score_with(fit, splits: dict, oracle: float | None = None) -> tuple[object, dict]:
  """Fits `fit(train genes)` and scores validation and test with it.

  Returns (model, the results every count model reports: perplexities, bits/nt,
  size, nucleotides seen, times).
  """
  t0 = time.perf_counter()
  model = fit(splits["train"])
  fit_seconds = time.perf_counter() - t0
  scorer = NGramScorer(model)
  t0 = time.perf_counter()
  val = scorer.perplexity(splits["validation"])
  test = scorer.perplexity(splits["test"])
  score_seconds = time.perf_counter() - t0
  return model, {
      "model": model.name, "params": model.num_params, "nucleotides_seen": model.nucleotides_seen,
      "outcomes": model.outcomes,
      "val_perplexity": val["perplexity"], "val_bits_per_nucleotide": val["bits_per_nucleotide"],
      "test_perplexity": test["perplexity"], "test_bits_per_nucleotide": test["bits_per_nucleotide"],
      "test_nucleotides": test["nucleotides"], "oracle_test_perplexity": oracle,
      "fit_seconds": fit_seconds, "score_seconds": score_seconds,
      "score_nucleotides_per_s": (val["nucleotides"] + test["nucleotides"]) / max(score_seconds, 1e-9),
  }


def fit_and_score(settings: dict, splits: dict, oracle: float | None = None) -> tuple[NGramModel, dict]:
  """Fits on splits['train'] and scores validation and test. Returns (model, results)."""
  model, results = fit_and_score_with(lambda train: NGramModel.fit(train, **settings), splits, oracle)
  results.update(order=model.order, smoothing=model.smoothing, nltk_test_perplexity=None)
  if model.smoothing in nltk_compat.SMOOTHINGS and model.kmer == 1:
    results["nltk_test_perplexity"] = nltk_compat.perplexity(
        splits["train"], splits["test"], model.order, model.smoothing, model.k)
  return model, results


def _fmt(x) -> str:
  if x is None:
    return "-"
  if isinstance(x, float):
    return "inf" if math.isinf(x) else f"{x:.4f}"
  return str(x)


def prepare(config, workdir: str) -> tuple[dict, float | None]:
  """Checks `config`, claims `workdir` and reads the splits: (splits, synthetic oracle or None)."""
  config_check.validate(config)
  os.makedirs(workdir, exist_ok=True)
  # Refuses a workdir that holds a different model or data set; else writes config.json.
  config_check.write_or_check_workdir_config(config, workdir)
  return load_splits(config), storage.oracle_perplexity(config.data, "test")


def finish(workdir: str, model, results: dict, size_label: str, extra_rows) -> dict:
  """Saves `model` and results.json into `workdir` and prints the results table.

  The table: the rows every count model has (its size under `size_label`),
  then `extra_rows` ((label, results key), ...).
  """
  model.save(workdir)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  keys = [("model", "model"), (size_label, "params"), ("nucleotides seen", "nucleotides_seen"),
          ("val perplexity", "val_perplexity"), ("test perplexity", "test_perplexity"),
          ("test bits/nt", "test_bits_per_nucleotide"),
          ("oracle test perplexity", "oracle_test_perplexity"), *extra_rows]
  rows = [(label, results[key]) for label, key in keys]
  width = max(len(k) for k, _ in rows)
  print("\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in rows), flush=True)
  return results


def train_and_evaluate(config, workdir: str) -> dict:
  """Fits, saves and evaluates the N-gram model of `config`; returns results.json's dict."""
  splits, oracle = prepare(config, workdir)
  model, results = fit_and_score(model_settings(config), splits, oracle)
  return finish(workdir, model, results, "stored counts",
                [("NLTK-protocol test perplexity", "nltk_test_perplexity"),
                 ("fit seconds", "fit_seconds")])
