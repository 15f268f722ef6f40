"""A suffix array over training genes, and its rank tables for interval narrowing.

The text is every training gene as BOS + gene + EOS, end to end, in the
project's token ids (codes.py: BOS=1, EOS=2, A..T=3..6, N=7):

  text = BOS x^1_1 .. x^1_L1 EOS BOS x^2_1 .. EOS ...          uint8 [n]

A query (a context followed by one outcome) holds nucleotides and at most one
BOS, at its left end; EOS never occurs in a query, and BOS only after EOS, so
no match crosses a gene boundary.

`sa` (int32 [n], pydivsufsort) sorts the suffixes of the text. The suffixes
that start with a pattern P are one interval [lo, hi) of sa, and hi - lo is the
number of occurrences of P. Extending P by one symbol on the left narrows it in
O(1) per pattern (the FM-index's backward search; this is the binary search
of aP inside the sorted suffixes, read off a rank table instead of searched):

  bwt[i]     = text[sa[i] - 1]                 the symbol left of suffix i
  occ[i, a]  = #{i' < i : bwt[i'] == a}         int32 [n + 1, 8] (column = token id)
  first[a]   = #{symbols of the text < a}      int64 [9]
  interval(aP) = [first[a] + occ[lo, a], first[a] + occ[hi, a])

The same rows give the distinct left neighbours of P (columns with
occ[hi] - occ[lo] > 0): Kneser-Ney's continuation count N1+(. P).

Saved as two plain arrays, `<stem>_text.npy` and `<stem>_sa.npy`; bwt, occ and
first are derived on load (a few vector passes). Memory: 1 (text) + 4 (sa) +
1 (bwt) + 32 (occ) bytes per text symbol; sa may be memory-mapped, only occ
is read when scoring.
"""

from __future__ import annotations

import os

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes as C

SYMBOLS = 8  # token ids 0..7 (0 never occurs): one occ column each, a 32-byte row


class SuffixIndex:
  """text, sa and the derived bwt / occ / first of one set of training genes."""

  def __init__(self, text: np.ndarray, sa: np.ndarray):
    self.text = np.asarray(text, np.uint8)
    self.sa = sa
    n = self.text.size
    bwt = self.text[np.asarray(sa, np.int64) - 1]  # sa == 0 wraps to the last EOS: a gene end, as for every BOS
    self.occ = np.zeros((n + 1, SYMBOLS), np.int32)
    for a in range(SYMBOLS):
      np.cumsum(bwt == a, out=self.occ[1:, a])
    counts = np.bincount(self.text, minlength=SYMBOLS).astype(np.int64)
    self.first = np.concatenate([[0], np.cumsum(counts)])
    self.num_genes = int(counts[tokens.BOS])
    self.num_nucleotides = int(n - 2 * self.num_genes)

  @classmethod
  def build(cls, seqs) -> "SuffixIndex":
    """Indexes genes (strings over ACGTN). UserError for other characters or no nucleotide."""
    seqs = [s for s in seqs]
    if not sum(map(len, seqs)):
      raise UserError("no training nucleotides: the infinigram needs at least one gene")
    if sum(map(len, seqs)) + 2 * len(seqs) >= 2**31:
      raise UserError(f"{sum(map(len, seqs)):,} training nucleotides: the int32 suffix array "
                      f"holds at most 2^31 - 1 symbols (see docs/infinigram.md for a genome)")
    from pydivsufsort import divsufsort  # pylint: disable=g-import-not-at-top
    text, _ = C.padded_stream(seqs, 1, 1)
    return cls(text, divsufsort(text))

  @property
  def nbytes(self) -> int:
    """Bytes held: text, sa and occ (bwt is a temporary of __init__)."""
    return int(self.text.nbytes + np.asarray(self.sa).nbytes + self.occ.nbytes)

  def single(self, a) -> tuple[np.ndarray, np.ndarray]:
    """Intervals [lo, hi) of the one-symbol patterns a (int array [...])."""
    a = np.asarray(a, np.int64)
    return self.first[a], self.first[a + 1]

  def save(self, workdir: str, stem: str = "infinigram"):
    np.save(os.path.join(workdir, f"{stem}_text.npy"), self.text)
    np.save(os.path.join(workdir, f"{stem}_sa.npy"), np.asarray(self.sa, np.int32))

  @classmethod
  def load(cls, workdir: str, stem: str = "infinigram") -> "SuffixIndex":
    paths = [os.path.join(workdir, f"{stem}_{x}.npy") for x in ("text", "sa")]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
      raise UserError(f"{workdir}: no saved suffix array ({os.path.basename(missing[0])} missing)")
    text = np.load(paths[0], allow_pickle=False)
    sa = np.load(paths[1], allow_pickle=False, mmap_mode="r")
    if text.dtype != np.uint8 or sa.shape != text.shape:
      raise UserError(f"{workdir}: {stem}_text.npy and {stem}_sa.npy do not match "
                      f"({text.shape} {text.dtype} against {sa.shape})")
    return cls(text, sa)
