"""The mutation process and the alignment it leaves between real and mutated genes.

An edit is a tuple `(kind, pos, base)`, applied to the sequence as it stands
after the edits before it (0-based `pos`):
  ('ins', p, b)   insert base b before position p (p in 0..L, so L+1 slots);
  ('del', p, '')  delete position p;
  ('sub', p, b)   replace position p by b, a different base;
  ('swap', p, '') exchange positions p and p+1, which hold different bases.

The alignment is an `origin` array over the mutated gene: origin[j] is the
position in the real gene that nucleotide j was copied from, or -1 when it is
new (inserted, substituted or swapped). From it, `changed_positions` finds the
nucleotides whose prediction an edit can change: those that are new or whose
`window` preceding nucleotides (BOS included) differ between the two genes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

BASES = "ACGT"
KINDS = ("ins", "del", "sub")          # the study's final mutation kinds
KINDS_WITH_SWAP = KINDS + ("swap",)    # its earlier version also had swaps

Edit = tuple  # (kind: str, pos: int, base: str)


def _swap_sites(seq: str) -> list[int]:
  return [p for p in range(len(seq) - 1) if seq[p] != seq[p + 1]]


def _possible(kind: str, seq: str) -> bool:
  # A deletion never empties a gene; a swap needs two different neighbours.
  if kind == "del":
    return len(seq) >= 2
  if kind == "sub":
    return len(seq) >= 1
  if kind == "swap":
    return bool(_swap_sites(seq))
  return True


def random_edit(seq: str, rng: np.random.Generator, kinds: Sequence[str]) -> Edit:
  """Draws one edit of `seq`: a kind uniformly among those possible, then its site."""
  allowed = [k for k in kinds if _possible(k, seq)]
  kind = allowed[int(rng.integers(len(allowed)))]
  if kind == "ins":
    return ("ins", int(rng.integers(len(seq) + 1)), BASES[int(rng.integers(4))])
  if kind == "del":
    return ("del", int(rng.integers(len(seq))), "")
  if kind == "sub":
    pos = int(rng.integers(len(seq)))
    others = [b for b in BASES if b != seq[pos]]
    return ("sub", pos, others[int(rng.integers(len(others)))])
  sites = _swap_sites(seq)
  return ("swap", sites[int(rng.integers(len(sites)))], "")


def apply_edit(seq: str, edit: Edit) -> str:
  kind, p, b = edit
  if kind == "ins":
    return seq[:p] + b + seq[p:]
  if kind == "del":
    return seq[:p] + seq[p + 1:]
  if kind == "sub":
    return seq[:p] + b + seq[p + 1:]
  if kind == "swap":
    return seq[:p] + seq[p + 1] + seq[p] + seq[p + 2:]
  raise ValueError(f"unknown edit kind {kind!r}")


def mutate(seq: str, num_edits: int, rng: np.random.Generator,
           swaps: bool = False) -> tuple[str, list[Edit]]:
  """Applies `num_edits` random edits one after another; returns (mutated, edits)."""
  kinds = KINDS_WITH_SWAP if swaps else KINDS
  edits = []
  for _ in range(num_edits):
    edit = random_edit(seq, rng, kinds)
    seq = apply_edit(seq, edit)
    edits.append(edit)
  return seq, edits


def apply_edits(real: str, edits: Sequence[Edit]) -> tuple[str, np.ndarray]:
  """Replays `edits` on `real`: (mutated, origin [len(mutated)] int64)."""
  seq, origin = real, list(range(len(real)))
  for edit in edits:
    kind, p, _ = edit
    seq = apply_edit(seq, edit)
    if kind == "ins":
      origin.insert(p, -1)
    elif kind == "del":
      origin.pop(p)
    elif kind == "sub":
      origin[p] = -1
    else:
      origin[p] = origin[p + 1] = -1
  return seq, np.asarray(origin, np.int64)


def origin_from_diff(real: str, mutated: str) -> np.ndarray:
  """Alignment without recorded edits: common prefix and suffix kept, the rest new.

  Returns origin [len(mutated)] int64. Exact for one edit (up to where an indel
  sits inside a run of equal bases, which changes no likelihood); for several it
  treats everything from the first to the last edit as changed.
  """
  lr, lm = len(real), len(mutated)
  prefix = 0
  limit = min(lr, lm)
  while prefix < limit and real[prefix] == mutated[prefix]:
    prefix += 1
  suffix = 0
  while suffix < limit - prefix and real[lr - 1 - suffix] == mutated[lm - 1 - suffix]:
    suffix += 1
  return np.concatenate([np.arange(prefix), np.full(lm - prefix - suffix, -1),
                         np.arange(lr - suffix, lr)]).astype(np.int64)


def changed_positions(origin: np.ndarray, real_len: int,
                      window: int) -> tuple[np.ndarray, np.ndarray]:
  """Positions whose nucleotide or `window`-nucleotide context an edit changed.

  A mutated position j is unchanged when it and its `window` predecessors were
  copied from consecutive real positions, or when the whole prefix up to j is
  the real prefix (same context back to BOS). A real position is unchanged when
  an unchanged mutated position was copied from it. An autoregressive model
  whose memory is at most `window` nucleotides gives unchanged positions the
  same log-probability in both genes.

  Args:
    origin: [Lm] int, real position of each mutated nucleotide or -1.
    real_len: Lr, length of the real gene.
    window: W >= 0, nucleotides of context an edit is taken to affect.
  Returns:
    (changed_real [Lr] bool, changed_mutated [Lm] bool).
  """
  o = np.asarray(origin, np.int64)
  j = np.arange(len(o))
  follows = np.zeros(len(o), bool)  # j continues the run of copied positions ending at j-1
  follows[1:] = (o[1:] >= 0) & (o[:-1] >= 0) & (o[1:] == o[:-1] + 1)
  start = np.maximum.accumulate(np.where(follows, 0, j)) if len(o) else j
  from_bos = (start == 0) & (len(o) > 0) & (o[:1] == 0).all()
  clean = (o >= 0) & ((j - start + 1 > window) | from_bos)
  real_clean = np.zeros(real_len, bool)
  real_clean[o[clean]] = True
  return ~real_clean, ~clean
