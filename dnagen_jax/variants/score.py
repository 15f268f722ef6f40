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
"""

from __future__ import annotations

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


def score_windows(scorer: scoring.Scorer, windows: Sequence[Window], strands: str = "both",
                  chunk: int = 2048, label: str = "", out=sys.stdout) -> dict[str, np.ndarray]:
  """Scores of each variant, from its windows.

  Args:
    scorer: any model (`workdir.load_scorer`).
    windows: n variants' windows (`windows.make_window`).
    strands: 'forward', 'reverse' or 'both'.
    chunk: variants per call of the scorer (bounds memory; one progress line each).
  Returns:
    {'score': [n], and 'forward' / 'reverse' [n] for each strand scored}, float64
    nats; plus 'seconds' (a 0-d array) and 'windows' (distinct windows scored).
  """
  if strands not in STRANDS:
    raise UserError(f"--strands={strands!r} is not one of {', '.join(STRANDS)}")
  n = len(windows)
  order = sorted(range(n), key=lambda i: (windows[i].chrom, windows[i].start, windows[i].end,
                                          windows[i].alt))
  names = {"+": "forward", "-": "reverse"}
  result = {names[s]: np.zeros(n) for s in STRANDS[strands]}
  t0, distinct = time.time(), 0
  for c0 in range(0, n, chunk):
    idx = order[c0:c0 + chunk]
    pairs = [(i, s, windows[i].strand(s)) for i in idx for s in STRANDS[strands]]
    unique = list(dict.fromkeys(seq for _, _, (r, a, _) in pairs for seq in (r, a)))
    lps = dict(zip(unique, scorer.token_log_probs(unique)))
    distinct += len(unique)
    for i, s, (r, a, skip) in pairs:
      result[names[s]][i] = float(np.sum(lps[a][skip:]) - np.sum(lps[r][skip:]))
    done, dt = min(c0 + chunk, n), time.time() - t0
    print(f"variants{label}: {done:,}/{n:,} | {distinct:,} windows | "
          f"{done / max(dt, 1e-9):,.1f} variants/s", file=out, flush=True)
  result["score"] = np.mean([result[names[s]] for s in STRANDS[strands]], axis=0)
  result["seconds"] = np.asarray(time.time() - t0)
  result["windows"] = np.asarray(distinct)
  return result
