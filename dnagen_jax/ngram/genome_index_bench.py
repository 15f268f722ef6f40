r"""Time and memory of the infinigram's suffix array over a genome FASTA (runs of N cut out).

  nice -n 10 python -m dnagen_jax.ngram.genome_index_bench \
    --fasta=../shared/data/genomes/human_chrX_grch37_first70Mb.fa.gz

Reads the FASTA (IUPAC codes as N), cuts every record at its runs of N
(`--min_n_run`, default 1: the index then holds only A, C, G, T), and builds
`SuffixIndex` over the pieces, as `InfiniGram.fit` does. Reports the time of
each phase (read, cut, divsufsort, the rank table `occ`) and the process's
peak resident memory after each (the high-water mark, `ru_maxrss`, so each
figure includes the phases before it). With --score_nt=M it also scores M
nucleotides taken from the end of the last piece against an index of
everything before them (held out), with textbook discounts (no discount
search: it would fit a 21-gram on the whole genome, see docs/infinigram.md),
and reports the rate and the mean longest match (not a
perplexity: the discounts are not fitted).
"""

from __future__ import annotations

import argparse
import re
import resource
import time

import numpy as np

from dnagen_jax.data import sequence_io
from dnagen_jax.ngram import codes as C
from dnagen_jax.ngram.infinigram import distributions
from dnagen_jax.ngram.suffix_array import SuffixIndex


def peak_mib() -> float:
  """The process's peak resident memory so far, MiB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def cut_at_n(seqs, min_run: int = 1) -> list[str]:
  """The pieces of `seqs` between runs of at least `min_run` N (pieces still holding shorter N runs keep them)."""
  pattern = re.compile("N{%d,}" % max(1, min_run))
  return [p for s in seqs for p in pattern.split(s) if p]


class Clock:
  """Wall and CPU seconds (this process, all threads) since start: CPU time does not depend on load."""

  def __init__(self):
    self.wall, self.cpu = time.perf_counter(), time.process_time()

  def read(self) -> tuple[float, float]:
    return time.perf_counter() - self.wall, time.process_time() - self.cpu

  def text(self) -> str:
    wall, cpu = self.read()
    return f"{wall:.1f} s wall, {cpu:.1f} s CPU"


def build_phases(pieces: list[str]) -> tuple[SuffixIndex, dict]:
  """SuffixIndex.build, phase by phase: (index, {phase: 'wall, CPU' text})."""
  from pydivsufsort import divsufsort  # pylint: disable=g-import-not-at-top
  times = {}
  clock = Clock()
  text, _ = C.padded_stream(pieces, 1, 1)
  times["text"] = clock.text()
  clock = Clock()
  sa = divsufsort(text)
  times["divsufsort"] = clock.text()
  clock = Clock()
  index = SuffixIndex(text, sa)
  times["occ"] = clock.text()
  return index, times


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--fasta", required=True, help="genome FASTA (.fa/.fa.gz)")
  ap.add_argument("--min_n_run", type=int, default=1, help="cut records at runs of at least this many N")
  ap.add_argument("--score_nt", type=int, default=0, help="also score this many held-out nucleotides")
  args = ap.parse_args()
  clock = Clock()
  records = sequence_io.read_sequences(args.fasta, "n")
  total = sum(len(r.sequence) for r in records)
  print(f"read {len(records)} record(s), {total:,} nt in {clock.text()}; peak {peak_mib():.0f} MiB",
        flush=True)
  clock = Clock()
  pieces = cut_at_n([r.sequence for r in records], args.min_n_run)
  del records
  held = ""
  if args.score_nt:
    held, pieces[-1] = pieces[-1][-args.score_nt:], pieces[-1][:-args.score_nt]
  n = sum(map(len, pieces))
  print(f"cut at N runs: {len(pieces):,} pieces, {n:,} nt ({total - n - len(held):,} N dropped) in "
        f"{clock.text()}; peak {peak_mib():.0f} MiB", flush=True)
  clock = Clock()
  index, times = build_phases(pieces)
  build, cpu = clock.read()
  print(f"suffix index: {build:.1f} s wall, {cpu:.1f} s CPU ({n / cpu / 1e6:.2f}M nt per CPU second; "
        f"text {times['text']}, divsufsort {times['divsufsort']}, occ {times['occ']}); index "
        f"{index.nbytes / 2**20:.0f} MiB ({index.nbytes / index.text.size:.0f} B/symbol); "
        f"peak {peak_mib():.0f} MiB", flush=True)
  if held:
    discounts = np.array([[0.5, 1.0, 1.5]] * 22)  # textbook-like, not searched
    clock = Clock()
    probs, targets, longest = distributions(index, [held], False, 0, discounts, 21, "longest")
    score, cpu = clock.read()
    print(f"scored {len(held):,} held-out nt in {score:.1f} s wall, {cpu:.1f} s CPU "
          f"({len(held) / cpu:,.0f} nt per CPU second), "
          f"mean longest match {longest.mean():.1f}, "
          f"max {longest.max()}; peak {peak_mib():.0f} MiB", flush=True)


if __name__ == "__main__":
  main()
