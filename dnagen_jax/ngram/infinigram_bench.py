r"""Build time, scoring rate and memory of the infinigram against the Kneser-Ney 21-gram, in one run.

  python -m dnagen_jax.ngram.infinigram_bench --csv=../shared/data/human_genes/genes.csv

Both are fitted on the train split of the CSV (split as the `files` data set
splits it, as in ngram/bench.py) and score its test split in the project
protocol. Times are the median of --repeats runs; memory is the peak that
tracemalloc sees (numpy reports its buffers to it) during each step, and the
process's max RSS at the end. With --scale_to=N the suffix array is also built
on N training nucleotides (the train genes repeated, each copy with 1% of its
bases changed at random, so that the copies are near-identical like paralogs)
and scores the same test split with the genes.csv model's discounts: the
build and scoring figures at the study's size (13.4M).
"""

from __future__ import annotations

import argparse
import os
import resource
import tracemalloc

import numpy as np

from dnagen_jax.ngram.bench import csv_splits
from dnagen_jax.ngram.bench import timed
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.infinigram import distributions
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.suffix_array import SuffixIndex


def _peak(fn):
  """(result, peak bytes tracemalloc saw while fn ran)."""
  tracemalloc.start()
  try:
    result = fn()
    return result, tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()


def _ppl(lps) -> float:
  return float(np.exp(-np.concatenate(lps).mean()))


def scaled_train(train: list[str], target: int, seed: int = 0) -> list[str]:
  """Copies of `train` up to `target` nucleotides, each copy after the first with 1% of bases changed."""
  rng = np.random.default_rng(seed)
  out, total, copy = [], 0, 0
  lut = np.frombuffer(b"ACGT", np.uint8)
  while total < target:
    for g in train:
      if total >= target:
        break
      if copy:
        b = np.frombuffer(g.encode(), np.uint8).copy()
        hit = rng.random(b.size) < 0.01
        b[hit] = lut[rng.integers(0, 4, int(hit.sum()))]
        g = b.tobytes().decode()
      out.append(g)
      total += len(g)
    copy += 1
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--csv", required=True, help="study-format CSV (or FASTA) of genes")
  ap.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
  ap.add_argument("--scale_to", type=int, default=0, help="also build and score at this many training nt")
  args = ap.parse_args()
  sp = csv_splits(os.path.expanduser(args.csv))
  train, test = sp["train"], sp["test"]
  n_train, n_test = sum(map(len, train)), sum(map(len, test))
  print(f"data: {len(train)} train genes ({n_train:,} nt), {len(test)} test genes ({n_test:,} nt); "
        f"{os.cpu_count()} CPUs")

  kn, kn_fit = timed(lambda: NGramModel.fit(train, 21, "kneser_ney"), args.repeats)
  kn_lp, kn_score = timed(lambda: kn.log_probs(test), args.repeats)
  _, kn_peak = _peak(lambda: NGramModel.fit(train, 21, "kneser_ney"))
  print(f"KN 21-gram: fit {kn_fit:.2f} s, score {kn_score:.2f} s ({n_test / kn_score:,.0f} nt/s), "
        f"fit peak {kn_peak / 2**20:.0f} MiB ({kn_peak / n_train:.0f} B/nt), "
        f"{kn.num_params:,} counts, test perplexity {_ppl(kn_lp):.4f}")
  del kn

  index, build = timed(lambda: SuffixIndex.build(train), args.repeats)
  _, build_peak = _peak(lambda: SuffixIndex.build(train))
  ig, ig_fit = timed(lambda: InfiniGram.fit(train), 1)
  _, fit_peak = _peak(lambda: InfiniGram.fit(train))
  ig_lp, ig_score = timed(lambda: distributions(index, test, False, ig.cap, ig.discounts,
                                                 ig.raw_from, ig.above), args.repeats)
  _, score_peak = _peak(lambda: ig.log_probs(test + ["A"]))  # (a new key: not the kept result)
  probs, targets, _ = ig_lp
  ppl = float(np.exp(-np.log(probs[np.arange(targets.size), targets]).mean()))
  print(f"infinigram: suffix array {build:.2f} s ({n_train / build / 1e6:.1f}M nt/s, peak "
        f"{build_peak / 2**20:.0f} MiB), index {index.nbytes / 2**20:.0f} MiB "
        f"({index.nbytes / index.text.size:.0f} B/nt); whole fit with the discount searches "
        f"{ig_fit:.2f} s (peak {fit_peak / 2**20:.0f} MiB); score {ig_score:.2f} s "
        f"({n_test / ig_score:,.0f} nt/s, peak {score_peak / 2**20:.0f} MiB); test perplexity {ppl:.4f}")
  print(f"against the KN 21-gram: build {kn_fit / build:.0f}x faster (whole fit {kn_fit / ig_fit:.2f}x), "
        f"scoring {kn_score / ig_score:.2f}x its rate, index memory "
        f"{index.nbytes / kn_peak:.2f}x its fit peak")
  del index

  if args.scale_to:
    big = scaled_train(train, args.scale_to)
    n_big = sum(map(len, big))
    bindex, bbuild = timed(lambda: SuffixIndex.build(big), 1)
    _, bpeak = _peak(lambda: SuffixIndex.build(big))
    (bp, bt, bl), bscore = timed(lambda: distributions(bindex, test, False, ig.cap, ig.discounts,
                                                        ig.raw_from, ig.above), 1)
    print(f"scaled to {n_big:,} train nt ({len(big)} genes): suffix array {bbuild:.2f} s "
          f"(peak {bpeak / 2**20:.0f} MiB), index {bindex.nbytes / 2**20:.0f} MiB "
          f"({bindex.nbytes / bindex.text.size:.0f} B/nt); score the test split {bscore:.2f} s "
          f"({n_test / bscore:,.0f} nt/s), mean longest match {bl.mean():.1f}")
  print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
  main()
