r"""Speed and memory of the N-gram counts against NLTK, on the same work.

  python -m dnagen_jax.ngram.bench --csv=../shared/data/human_genes/genes.csv

The work: the study's Laplace N-gram (default N=8) in its NLTK protocol
(docs/ngram.md, "The study's NLTK protocol"), fit on the train split of the
CSV (split exactly as the
`files` data set splits it: duplicates dropped, genes of 1..1000 nt, hash of
the sequence -> 80/10/10) and scored on its test split. Ours: fit and score
timed as the median of --repeats runs, peak memory by tracemalloc (numpy
reports its buffers to it). NLTK: one run, timed; its peak memory is the rise
of the process's max RSS (tracemalloc would slow it several-fold). With
--nltk_train_genes=K NLTK is fit on the first K train genes only and its time
is extrapolated per window to the full split (printed as such). The project
protocol (NGramModel, L predictions per gene) is timed too, for reference.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc

import numpy as np

from dnagen_jax.data import sequence_io
from dnagen_jax.data.gene_dataset.gene_dataset_dataset_builder import split_of
from dnagen_jax.ngram import nltk_compat
from dnagen_jax.ngram.model import NGramModel


def csv_splits(path: str, val_fraction=0.1, test_fraction=0.1, max_length=1000) -> dict:
  """The `files` data set's splits of one CSV/FASTA, without preparing TFDS."""
  out, seen = {"train": [], "validation": [], "test": []}, set()
  for rec in sequence_io.read_sequences(path):
    s = rec.sequence
    if s in seen or not 1 <= len(s) <= max_length:
      continue
    seen.add(s)
    out[split_of(s, val_fraction, test_fraction)].append(s)
  return out


def timed(fn, repeats: int):
  """(fn()'s result, the median of `repeats` wall times in seconds)."""
  times, result = [], None
  for _ in range(repeats):
    t0 = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - t0)
  return result, statistics.median(times)


def _maxrss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def nltk_run(train, test, order: int):
  """(fit seconds, score seconds, perplexity, train windows, test windows) of NLTK Laplace."""
  from nltk.lm import Laplace  # pylint: disable=g-import-not-at-top
  from nltk.util import ngrams  # pylint: disable=g-import-not-at-top
  pad = dict(pad_left=order > 1, pad_right=order > 1, left_pad_symbol="<s>", right_pad_symbol="</s>")
  t0 = time.perf_counter()
  train_windows = [list(ngrams(g, order, **pad)) for g in train]
  vocab_text = [t for g in train for t in ["<s>"] * (order - 1) + list(g) + ["</s>"] * (order - 1)]
  lm = Laplace(order)
  lm.fit(train_windows, vocabulary_text=vocab_text)
  fit_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  scored = []
  for g in test:
    w = list(ngrams(g, order, **pad))
    scored.extend(w[:len(w) - (order - 2)] if order > 2 else w)
  ppl = lm.perplexity(scored)
  score_s = time.perf_counter() - t0
  return fit_s, score_s, ppl, sum(map(len, train_windows)), len(scored)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--csv", required=True, help="study-format CSV (or FASTA) of genes")
  ap.add_argument("--order", type=int, default=8)
  ap.add_argument("--repeats", type=int, default=5, help="runs of ours; the median is reported")
  ap.add_argument("--nltk_train_genes", type=int, default=0,
                  help="fit NLTK on this many train genes and extrapolate (0 = all)")
  ap.add_argument("--no_nltk", action="store_true", help="time ours only")
  args = ap.parse_args()
  n = args.order
  sp = csv_splits(os.path.expanduser(args.csv))
  train, test = sp["train"], sp["test"]
  print(f"data: {len(train)} train genes ({sum(map(len, train)):,} nt), "
        f"{len(test)} test genes ({sum(map(len, test)):,} nt); Laplace N={n}; "
        f"{os.cpu_count()} CPUs")

  # Ours, NLTK protocol. Warm-up once (page faults, imports), then time.
  nltk_compat.NltkNGram(train[:10], n, "laplace").perplexity(test[:10])
  model, fit_s = timed(lambda: nltk_compat.NltkNGram(train, n, "laplace"), args.repeats)
  ppl, score_s = timed(lambda: model.perplexity(test), args.repeats)
  tracemalloc.start()
  nltk_compat.NltkNGram(train, n, "laplace").perplexity(test)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  train_w = sum(map(len, train)) + len(train) * (n - 1)
  test_w = sum(map(len, test)) + len(test)
  print(f"ours (NLTK protocol): fit {fit_s:.3f} s ({train_w / fit_s / 1e6:.1f}M windows/s), "
        f"score {score_s:.3f} s ({test_w / score_s / 1e6:.1f}M windows/s), "
        f"peak {peak / 2**20:.0f} MiB, perplexity {ppl:.12f}, {model.num_counts:,} counts")

  # Ours, project protocol (reference only).
  pm, pfit = timed(lambda: NGramModel.fit(train, n, "laplace"), args.repeats)
  lps, pscore = timed(lambda: pm.log_probs(test), args.repeats)
  pppl = float(np.exp(-np.concatenate(lps).mean()))
  print(f"ours (project protocol): fit {pfit:.3f} s, score {pscore:.3f} s, perplexity {pppl:.6f}")
  if args.no_nltk:
    return

  sub = train[:args.nltk_train_genes] if args.nltk_train_genes else train
  rss0 = _maxrss_bytes()
  nfit, nscore, nppl, nfit_w, nscore_w = nltk_run(sub, test, n)
  rss = _maxrss_bytes() - rss0
  extrapolated = len(sub) < len(train)
  if extrapolated:
    nfit_full = nfit * train_w / nfit_w
    same = nltk_compat.perplexity(sub, test, n, "laplace")
    note = f" (fit on {len(sub)} genes, {nfit_w:,} windows; extrapolated per window to {train_w:,})"
  else:
    nfit_full, same, note = nfit, ppl, ""
  print(f"NLTK 3.10: fit {nfit_full:.2f} s{note}, score {nscore:.2f} s ({nscore_w:,} windows), "
        f"max RSS rise {rss / 2**20:.0f} MiB, perplexity {nppl:.12f}")
  rel = abs(nppl - same) / nppl
  print(f"perplexity agreement (same training genes): ours {same:.12f} vs NLTK {nppl:.12f}, "
        f"relative difference {rel:.1e}")
  print(f"speed-up fit+score: {(nfit_full + nscore) / (fit_s + score_s):.0f}x "
        f"(fit {nfit_full / fit_s:.0f}x, score {nscore / score_s:.0f}x)")


if __name__ == "__main__":
  main()
