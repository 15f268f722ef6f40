"""Nested training subsets: the same genes on any machine, every smaller one inside every larger one.

The train split's genes are ranked once by a salted hash of their sequence
(ties, i.e. duplicated sequences, by gene id, then stored position), which
depends on the genes alone: not on the machine, the stored order or the
number of genes asked for. A subset of D nucleotides is the shortest prefix
of that ranking holding at least D nucleotides. Prefixes of one ranking are
nested by construction: the subset for D1 <= D2 lies inside the one for D2.
Validation and test splits are never subset.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dnagen_jax.errors import UserError

_SALT = b"dnagen_jax.subsets\0"  # a different hash from the split's (which uses sha1(sequence) unsalted)


def rank(gene_ids, sequences) -> np.ndarray:
  """int64 [n] positions of the genes in subset order (first = in every subset)."""
  keys = [(hashlib.sha1(_SALT + s.encode()).digest(), str(g), i)
          for i, (g, s) in enumerate(zip(gene_ids, sequences))]
  return np.asarray([i for _, _, i in sorted(keys)], np.int64)


def prefix_indices(gene_ids, sequences, nucleotides: int, where: str = "data.train_nucleotides") -> np.ndarray:
  """Stored positions (sorted ascending) of the subset of at least `nucleotides` nucleotides.

  Args:
    gene_ids, sequences: the n train genes, in stored order.
    nucleotides: D > 0; the shortest prefix of `rank` with >= D nucleotides.
  Raises:
    UserError when D exceeds the split's nucleotides.
  """
  order = rank(gene_ids, sequences)
  lengths = np.fromiter((len(sequences[i]) for i in order), np.int64, len(order))
  total = int(lengths.sum())
  if nucleotides > total:
    raise UserError(f"{where}={nucleotides:,} is larger than the train split "
                    f"({total:,} nucleotides in {len(order):,} genes)")
  count = int(np.searchsorted(np.cumsum(lengths), nucleotides) + 1)
  return np.sort(order[:count])


class SubsetSource:
  """A random-access source restricted to `indices` of `src` (len and [i], like tfds's)."""

  def __init__(self, src, indices: np.ndarray):
    self.src, self.indices = src, np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return int(self.indices.size)

  def __getitem__(self, i: int):
    return self.src[int(self.indices[i])]


def block_prefix_indices(block_keys, lengths, nucleotides: int,
                         where: str = "data.train_nucleotides") -> np.ndarray:
  """Windowed data: positions (ascending) of the windows of the shortest prefix of ranked blocks.

  Blocks (the `block_keys` [n] strings of the windows, e.g. 'chrX<0>12') are
  ranked by a salted hash of their key alone; a subset of D nucleotides is
  every window of the first blocks whose windows hold at least D
  nucleotides, so subsets are made of whole blocks and nested.
  """
  lengths = np.asarray(lengths, np.int64)
  total = int(lengths.sum())
  if nucleotides > total:
    raise UserError(f"{where}={nucleotides:,} is larger than the train split "
                    f"({total:,} nucleotides in {len(lengths):,} windows)")
  keys, inverse = np.unique(np.asarray(block_keys, dtype=object).astype(str), return_inverse=True)
  order = sorted(range(len(keys)), key=lambda b: (hashlib.sha1(_SALT + keys[b].encode()).digest(), keys[b]))
  rank = np.empty(len(keys), np.int64)
  rank[np.asarray(order, np.int64)] = np.arange(len(keys))
  per_block = np.bincount(rank[inverse], weights=lengths, minlength=len(keys))
  count = int(np.searchsorted(np.cumsum(per_block), nucleotides) + 1)
  return np.flatnonzero(rank[inverse] < count)
