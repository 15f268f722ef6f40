"""Fitting an infinigram on the prepared data set, like any other model.

  python -m dnagen_jax.main --config=configs/infinigram.py --workdir=/tmp/infinigram

`train_and_evaluate(config, workdir)` writes into `workdir`:
  config.json            the resolved config (read back by `workdir.load_scorer`);
  infinigram_text.npy    uint8 [n] the indexed training text (suffix_array.py);
  infinigram_sa.npy      int32 [n] its suffix array;
  infinigram.json        header: format, cap, raw_from, above, discounts and their search;
  results.json           perplexities and bits per nucleotide (project protocol), fit,
                         build and scoring times, peak memory, mean longest match.
Refitting takes seconds, so running the command again refits (a workdir
holding a different model or data set is refused).
"""

from __future__ import annotations

import resource
import time

import numpy as np

from dnagen_jax.ngram import train as ngram_train
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.suffix_array import SuffixIndex


def model_settings(config) -> dict:
  """InfiniGram.fit keyword arguments from `config.model` (and data.unknown_policy)."""
  m = config.model
  return dict(cap=int(m.infinigram_max_order), raw_from=int(m.infinigram_raw_from),
              above=str(m.infinigram_above), with_n=config.data.unknown_policy == "n",
              lower_discounts=m.get("ngram_kn_lower_discounts", "auto"))


def peak_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def fit_and_score(settings: dict, splits: dict, oracle: float | None = None):
  """Fits on splits['train'] and scores validation and test. Returns (model, results)."""
  t0 = time.perf_counter()
  SuffixIndex.build(splits["train"])
  build_seconds = time.perf_counter() - t0  # the suffix array alone (fit builds it again)
  model, results = ngram_train.fit_and_score_with(
      lambda train: InfiniGram.fit(train, **settings), splits, oracle)
  longest = np.concatenate(model.longest_match(splits["test"]) or [np.zeros(0)])
  results.update(
      cap=model.cap, raw_from=model.raw_from, above=model.above,
      test_mean_longest_match=float(longest.mean()) if longest.size else None,
      index_bytes=model.index.nbytes, build_seconds=build_seconds,
      peak_rss_bytes=peak_rss_bytes())
  return model, results


def train_and_evaluate(config, workdir: str) -> dict:
  """Fits, saves and evaluates the infinigram of `config`; returns results.json's dict."""
  splits, oracle = ngram_train.prepare(config, workdir)
  model, results = fit_and_score(model_settings(config), splits, oracle)
  results["peak_memory_mib"] = results["peak_rss_bytes"] / 2**20
  return ngram_train.finish(workdir, model, results, "indexed symbols",
                            [("test mean longest match", "test_mean_longest_match"),
                             ("suffix array build seconds", "build_seconds"),
                             ("fit seconds", "fit_seconds"),
                             ("scoring nt/s", "score_nucleotides_per_s"),
                             ("peak memory MiB", "peak_memory_mib")])
