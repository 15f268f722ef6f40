"""The score of a variant under a model: ln p(alternative window) - ln p(reference window).

Each window is scored as a sequence of its own (BOS, then its nucleotides;
`scoring.Scorer.token_log_probs`). Every family here is causal: the
log-probability of a nucleotide depends only on the ones before it in the
window. The flank read before the variant is the same in both windows, so its
nucleotides get the same log-probabilities in both and cancel in the
difference; they are left out of both sums (which removes their rounding
noise, not their effect: they are the context that the variant and the flank
after it are predicted from). So with `skip` the prefix length,
    score = sum(lp_alt[skip:]) - sum(lp_ref[skip:])
in nats; below 0 the model finds the alternative less likely. `--strands=both`
averages the forward score and the reverse-complement one (whose prefix is the
right flank, reverse-complemented).

Variants are sorted by position (so the scores do not depend on the input's
order) and scored in chunks; within a chunk every distinct window (a reference
window shared by several variants, an allele given twice) is scored once, and
the scorer sorts the windows by length and batches them on every device.
Neural models pad every window to one shape (`width`), so a run compiles once.

A model whose context is bounded (an N-gram of order n reads the n - 1
nucleotides before each one) gives the same log-probabilities to every
position more than n - 1 past the variant in both windows, and to every
position of the prefix: its windows are cut to n - 1 nucleotides on each side
of the variant before scoring, which changes no score (a test) and makes its
speed independent of the window.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Sequence

import numpy as np

from dnagen_jax import scoring
from dnagen_jax.errors import UserError
from dnagen_jax.variants.windows import Window

STRANDS = {"forward": ("+",), "reverse": ("-",), "both": ("+", "-")}


def window_limit(scorer: scoring.Scorer) -> int | None:
  """The longest window (nucleotides) `scorer` reads whole, or None for no limit.

  Transformers (and models with learned positions) stop at model.max_len
  tokens; a mixture at its most limited component.
  """
  parts = getattr(scorer, "components", None)
  if parts:
    limits = [l for l in (window_limit(c) for c in parts) if l is not None]
    return min(limits) if limits else None
  config = getattr(scorer, "config", None)
  if config is not None and (config.model.name == "transformer" or config.model.position_embedding):
    return int(config.model.max_len) * int(config.data.get("kmer", 1))
  return None


def check_window(scorer: scoring.Scorer, width: int, where: str):
  limit = window_limit(scorer)
  if limit is not None and width > limit:
    raise UserError(f"--window={width} is longer than the model of {where} reads "
                    f"(max_len {limit} nucleotides); use --window={limit} or less")


def context_limit(scorer: scoring.Scorer) -> int | None:
  """Nucleotides before a position that `scorer` reads (None: all of them).

  N-grams of single nucleotides: order - 1; the synthetic oracle: its order;
  a mixture without a feature: its longest component's; anything else: None.
  """
  parts = getattr(scorer, "components", None)
  if parts:
    limits = [context_limit(c) for c in parts]
    if getattr(scorer, "feature", "") or any(l is None for l in limits):
      return None
    return max(limits)
  model = getattr(scorer, "model", None)
  if type(model).__name__ == "NGramModel" and getattr(model, "kmer", 1) == 1:
    return int(model.order) - 1
  source = getattr(scorer, "source", None)
  if type(source).__name__ == "MarkovSource":
    return int(source.order)
  return None


@contextlib.contextmanager
def one_shape(scorer: scoring.Scorer, width: int):
  """Neural scorers (and a mixture's) pad every window to `width` tokens while inside."""
  saved = []
  for s in [scorer] + list(getattr(scorer, "components", None) or []):
    data = getattr(getattr(s, "config", None), "data", None)
    if data is not None and "num_buckets" in data:
      saved.append((data, data.num_buckets, data.length_buckets))
      data.num_buckets, data.length_buckets = 0, (width,)
  try:
    yield
  finally:
    for data, num, lengths in saved:
      data.num_buckets, data.length_buckets = num, lengths


def _strand_windows(w: Window, strand: str, context: int | None) -> tuple[str, str, int]:
  """(reference, alternative, prefix) on `strand`, cut to `context` around the variant if given."""
  ref, alt, skip = w.strand(strand)
  if context is None:
    return ref, alt, skip
  tail = w.right if strand == "+" else w.left  # the flank after the variant on this strand
  cut_before, cut_after = skip - min(skip, context), tail - min(tail, context)
  return (ref[cut_before:len(ref) - cut_after], alt[cut_before:len(alt) - cut_after],
          skip - cut_before)


def score_windows(scorer: scoring.Scorer, windows: Sequence[Window], strands: str = "both",
                  chunk: int = 2048, label: str = "", out=sys.stdout,
                  cut: bool = True) -> dict[str, np.ndarray]:
  """Scores of each variant, from its windows.

  Args:
    scorer: any model (`workdir.load_scorer`).
    windows: n variants' windows (`windows.make_window`).
    strands: 'forward', 'reverse' or 'both'.
    chunk: at most this many variants per call of the scorer, and at most 2**20
      window nucleotides (bounds memory; one progress line each).
    cut: cut windows to a bounded-context model's context (the same scores, faster).
  Returns:
    {'score': [n], and 'forward' / 'reverse' [n] for each strand scored}, float64
    nats; plus 'seconds', 'cpu_seconds' (0-d arrays) and 'windows' (distinct windows scored).
  """
  if strands not in STRANDS:
    raise UserError(f"--strands={strands!r} is not one of {', '.join(STRANDS)}")
  n = len(windows)
  order = sorted(range(n), key=lambda i: (windows[i].chrom, windows[i].start, windows[i].end,
                                          windows[i].alt))
  names = {"+": "forward", "-": "reverse"}
  result = {names[s]: np.zeros(n) for s in STRANDS[strands]}
  context = context_limit(scorer) if cut else None
  width = max((len(w.ref) for w in windows), default=1) + max((len(w.alt) for w in windows), default=1)
  chunk = max(1, min(chunk, (1 << 20) // (width * len(STRANDS[strands]))))
  longest = max(max(len(w.ref), len(w.alt)) for w in windows) if windows else 1
  t0, cpu0, distinct = time.time(), time.process_time(), 0
  for c0 in range(0, n, chunk):
    idx = order[c0:c0 + chunk]
    pairs = [(i, s, _strand_windows(windows[i], s, context)) for i in idx for s in STRANDS[strands]]
    unique = list(dict.fromkeys(seq for _, _, (r, a, _) in pairs for seq in (r, a)))
    with one_shape(scorer, longest):
      lps = dict(zip(unique, scorer.token_log_probs(unique)))
    distinct += len(unique)
    for i, s, (r, a, skip) in pairs:
      result[names[s]][i] = float(np.sum(lps[a][skip:]) - np.sum(lps[r][skip:]))
    done, dt = min(c0 + chunk, n), time.time() - t0
    print(f"variants{label}: {done:,}/{n:,} | {distinct:,} windows | "
          f"{done / max(dt, 1e-9):,.1f} variants/s", file=out, flush=True)
  result["score"] = np.mean([result[names[s]] for s in STRANDS[strands]], axis=0)
  result["seconds"] = np.asarray(time.time() - t0)
  result["cpu_seconds"] = np.asarray(time.process_time() - cpu0)  # all threads: a figure less bent by other load
  result["windows"] = np.asarray(distinct)
  return result
